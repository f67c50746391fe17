"""The loss network: a frozen VGG that returns named activations from one pass."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from styletrans.weights import (
    ARCHS,
    CHANNELS,
    NORMALIZATIONS,
    VGGWeights,
    WeightsError,
    layer_names,
    load_weights,
)


class Normalize(nn.Module):
    """RGB in [0, 1] -> the input convention of a weight source."""

    def __init__(self, normalization: str) -> None:
        super().__init__()
        spec = NORMALIZATIONS[normalization]
        self.normalization = normalization
        self.scale = float(spec["scale"])
        self.register_buffer("mean", torch.tensor(spec["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec["std"]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x * self.scale - self.mean) / self.std


class VGGFeatures(nn.Module):
    """Multi-layer VGG feature extractor.

    Built only up to the deepest requested layer, frozen and always in eval mode.
    ``forward`` takes RGB images in [0, 1] of shape (B, 3, H, W) and returns
    ``{layer_name: activation}`` for the requested layers, from a single pass.

    >>> vgg = VGGFeatures(["relu1_2", "relu3_3"], weights="random")
    >>> feats = vgg(torch.rand(1, 3, 32, 32))
    >>> sorted(feats), tuple(feats["relu3_3"].shape)
    (['relu1_2', 'relu3_3'], (1, 256, 8, 8))
    """

    def __init__(
        self,
        layers: Iterable[str],
        weights: str | VGGWeights = "vgg16-caffe",
        pooling: str = "max",
    ) -> None:
        super().__init__()
        if isinstance(weights, str):
            weights = load_weights(weights)
        self.source = weights.source
        self.arch = weights.arch
        self.layers = tuple(dict.fromkeys(layers))
        if not self.layers:
            raise ValueError("VGGFeatures needs at least one layer name")
        order = [name for name, _ in layer_names(weights.arch)]
        unknown = [name for name in self.layers if name not in order]
        if unknown:
            raise ValueError(f"unknown {weights.arch} layer(s) {unknown}; valid names: {order}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")

        deepest = max(order.index(name) for name in self.layers)
        self.normalize = Normalize(weights.normalization)
        self.body = nn.Sequential()
        in_ch = 3
        for name, kind in layer_names(weights.arch)[: deepest + 1]:
            if kind == "conv":
                out_ch = CHANNELS[int(name[4]) - 1]
                self.body.add_module(name, nn.Conv2d(in_ch, out_ch, 3, padding=1))
                in_ch = out_ch
            elif kind == "relu":
                self.body.add_module(name, nn.ReLU(inplace=False))
            else:
                pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
                # ceil_mode, as Caffe pools: with floor, an odd size drops its last row or column
                # from every deeper layer, and the optimizer leaves that line of pixels unconstrained.
                self.body.add_module(name, pool(2, 2, ceil_mode=True))
        needed = {k: v for k, v in weights.state_dict.items() if k.split(".")[0] in self.body._modules}
        missing = sorted({k.split(".")[0] for k in self.body.state_dict()} - {k.split(".")[0] for k in needed})
        if missing:  # a truncated file (see train/device_bundle.py) asked for deeper layers
            raise WeightsError(f"{weights.source} has no weights for {', '.join(missing)}, "
                               f"needed for layer(s) {', '.join(self.layers)}")
        self.body.load_state_dict(needed, strict=True)
        self.requires_grad_(False)
        super().train(False)

    @property
    def normalization(self) -> str:
        return self.normalize.normalization

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stays in eval mode: a loss network has nothing to train."""
        return super().train(False)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        wanted = set(self.layers)
        out: dict[str, Tensor] = {}
        x = self.normalize(image)
        for name, module in self.body.named_children():
            x = module(x)
            if name in wanted:
                out[name] = x
        return out


def available_layers(arch: str = "vgg16") -> list[str]:
    """Every layer name of ``arch`` that can be requested."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; one of {sorted(ARCHS)}")
    return [name for name, _ in layer_names(arch)]
