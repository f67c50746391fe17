"""1. ``filters``: what the convolution kernels look like.

First-layer filters act on RGB, so each is one small colour image; deeper filters act
on feature channels, so each is a row of greyscale kernels, one per input channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch import Tensor, nn

from styletrans.diagnostics.base import Context, Method, Result, Tile, option
from styletrans.diagnostics.networks import Network
from styletrans.diagnostics.plot import mosaic, normalized


def conv_layers(net: Network) -> list[str]:
    return [name for name, m in net.body.named_modules() if isinstance(m, nn.Conv2d)]


def rgb_filter_grid(weight: Tensor) -> np.ndarray:
    """(out, 3, k, k) kernels -> one mosaic, each kernel min-max scaled to its own range."""
    tiles = [normalized(w.permute(1, 2, 0)) for w in weight.detach().float().cpu()]
    return mosaic(tiles, columns=int(np.ceil(np.sqrt(len(tiles)))))


def channel_filter_grid(weight: Tensor, count: int, channels: int) -> np.ndarray:
    """(out, in, k, k) kernels -> rows of filters, columns of input channels, grey around
    zero: each filter is scaled by its own largest magnitude so signs stay visible."""
    w = weight.detach().float().cpu()[:count, :channels]
    scaled = 0.5 + 0.5 * w / (w.flatten(1).abs().amax(1).view(-1, 1, 1, 1) + 1e-12)
    return mosaic([kernel.numpy() for row in scaled for kernel in row], columns=scaled.shape[1])


@dataclass
class Filters(Method):
    """First-layer filters as an RGB grid; a deeper layer's filters per input channel."""

    name: ClassVar[str] = "filters"
    summary: ClassVar[str] = "convolution filters: RGB first layer, greyscale per-channel deeper layer"

    network: str = option("features", "which network: features or classifier", choices=("features", "classifier"))
    first: str | None = option(None, "the RGB layer (default: the first convolution)")
    deeper: str | None = option(None, "the deeper layer (default: the next convolution with kernels above 1x1)")
    count: int = option(16, "deeper filters shown (rows)")
    channels: int = option(16, "input channels shown per deeper filter (columns)")

    def run(self, context: Context) -> Result:
        net = context.network(self.network)
        convs = conv_layers(net)
        if not convs:
            raise ValueError(f"{net.source} has no nn.Conv2d layers")
        first = self.first or convs[0]
        first_weight = net.layer(first).weight
        if first_weight.shape[1] != 3:
            raise ValueError(f"{first} takes {first_weight.shape[1]} channels, not RGB: pick the first layer")
        deeper = self.deeper or next(
            (name for name in convs[1:] if net.layer(name).weight.shape[-1] > 1), None)
        rows = [[Tile(rgb_filter_grid(first_weight), f"{first}: {first_weight.shape[0]} filters "
                      f"{first_weight.shape[-2]}x{first_weight.shape[-1]} (RGB)")]]
        layers = {first: _stats(first_weight)}
        if deeper is not None:
            weight = net.layer(deeper).weight
            grid = channel_filter_grid(weight, self.count, self.channels)
            shown = (min(self.count, weight.shape[0]), min(self.channels, weight.shape[1]))
            rows[0].append(Tile(grid, f"{deeper}: {shown[0]} filters x {shown[1]} input channels", cmap="gray"))
            layers[deeper] = _stats(weight)
        summary = {"network": net.source, "layers": layers}
        return self.result(summary, rows, f"filters of {net.source}", tile_inches=4.5)


def _stats(weight: Tensor) -> dict[str, object]:
    w = weight.detach().float()
    return {"shape": list(w.shape), "mean": float(w.mean()), "std": float(w.std()),
            "mean_filter_norm": float(w.flatten(1).norm(dim=1).mean())}
