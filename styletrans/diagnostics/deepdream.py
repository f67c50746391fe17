"""10. ``deepdream``: amplify whatever a layer already sees in the photo (Mordvintsev et
al. 2015). The objective ``-||a||^2 / 2`` makes the gradient at the layer equal to its
activation ``a``; steps are L1-normalized (``normalized-sgd``), the image is jittered
before and clipped after each step, and the work runs over octaves from small to full
size, carrying the added detail up each time. Each octave is one ``optimize_image``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from styletrans.diagnostics.base import Context, Method, Result, Terms, Tile, fit_longest, option
from styletrans.diagnostics.networks import Network
from styletrans.diagnostics.plot import rgb
from styletrans.images import resize_tensor
from styletrans.optimize.engine import Clamp, Jitter, PixelImage, optimize_image


class AmplifyLayer:
    """Objective: minus half the mean squared activation of ``layer``."""

    def __init__(self, net: Network, layer: str) -> None:
        self.net, self.layer = net, layer

    def __call__(self, image: Tensor) -> Terms:
        act = self.net.activations(image, [self.layer])[self.layer]
        energy = act.pow(2).mean() / 2
        return Terms(-energy, {"energy": float(energy.detach())})


def octave_sizes(hw: tuple[int, int], octaves: int, scale: float) -> list[tuple[int, int]]:
    """Sizes from the smallest octave to ``hw``."""
    return [(max(16, round(hw[0] / scale**k)), max(16, round(hw[1] / scale**k))) for k in reversed(range(octaves))]


def deepdream(net: Network, layer: str, image: Tensor, *, octaves: int, scale: float, iterations: int,
              lr: float, jitter: int, progress: bool = False) -> tuple[Tensor, list[dict[str, float]]]:
    """Dream on a (1, 3, H, W) image; returns the dreamed image and the history."""
    objective = AmplifyLayer(net, layer)
    sizes = octave_sizes(tuple(image.shape[-2:]), octaves, scale)
    detail = torch.zeros_like(resize_tensor(image, sizes[0]))
    history: list[dict[str, float]] = []
    for index, size in enumerate(sizes):
        base = resize_tensor(image, size)
        detail = resize_tensor(detail, size)
        result = optimize_image(PixelImage((base + detail).clamp(0, 1)), objective,
                                regularizers=[Jitter(jitter), Clamp()], optimizer="normalized-sgd",
                                iterations=iterations, lr=lr, progress=progress,
                                desc=f"deepdream octave {index + 1}/{len(sizes)}")
        detail = result.image - base  # what the dream added, carried to the next octave
        history += result.history
    return result.image, history


@dataclass
class DeepDream(Method):
    """Amplify a layer's activations on the photo, over octaves."""

    name: ClassVar[str] = "deepdream"
    summary: ClassVar[str] = "amplify a layer's activations: jitter, L1-normalized steps, clipping, octaves"
    needs: ClassVar[tuple[str, ...]] = ("image",)

    # The classifier by default: on vgg16-caffe the dream collapses into saturated magenta and
    # green blobs at every layer tried (relu3_3 to relu5_3), while EfficientNet's blocks give
    # the familiar swirls and eyes.
    network: str = option("classifier", "which network: features or classifier", choices=("features", "classifier"))
    layer: str = option("blocks.4", "layer whose activations are amplified")
    size: int = option(320, "longest side of the dream")
    octaves: int = option(4, "number of scales")
    octave_scale: float = option(1.4, "size ratio between octaves")
    iterations: int = option(20, "steps per octave")
    lr: float = option(0.008, "step size (mean absolute change per step, pixels in [0, 1])")
    jitter: int = option(16, "random shift in pixels before each step")

    def run(self, context: Context) -> Result:
        net = context.network(self.network)
        image = fit_longest(context.image, self.size)[None]
        dream, history = deepdream(net, self.layer, image, octaves=self.octaves, scale=self.octave_scale,
                                   iterations=self.iterations, lr=self.lr, jitter=self.jitter,
                                   progress=context.progress)
        with torch.no_grad():
            before, after = (float(AmplifyLayer(net, self.layer)(x).parts["energy"]) for x in (image, dream))
        rows = [[Tile(rgb(image), context.image_name),
                 Tile(rgb(dream), f"{self.layer} dream: energy x{after / max(before, 1e-12):.1f}")]]
        summary = {"network": net.source, "layer": self.layer, "size": list(dream.shape[-2:]),
                   "octave_sizes": [list(s) for s in octave_sizes(tuple(image.shape[-2:]), self.octaves,
                                                                  self.octave_scale)],
                   "energy_before": before, "energy_after": after, "steps": len(history)}
        return self.result(summary, rows, f"DeepDream: {net.source} {self.layer}", tile_inches=4.0)

