"""11. ``invert``: what a layer keeps of the photo (Mahendran and Vedaldi 2015): an image
reconstructed from noise to match one layer's features, with a total-variation prior,
for several layers. Shallow layers keep nearly everything; deep ones keep the layout
and the parts, not the exact colours and textures. Reuses ``invert_features``."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar

import torch

from styletrans.diagnostics.base import Context, Method, Result, Tile, fit_longest, option
from styletrans.diagnostics.plot import rgb
from styletrans.optimize.gatys import GatysSettings, invert_features


@dataclass
class Invert(Method):
    """Feature inversion from each of several VGG layers."""

    name: ClassVar[str] = "invert"
    summary: ClassVar[str] = "images reconstructed from one layer's features, across layers"
    needs: ClassVar[tuple[str, ...]] = ("image",)

    layers: tuple[str, ...] = option(("relu2_2", "relu3_3", "relu4_3", "relu5_3"), "VGG layers to invert")
    size: int = option(160, "longest side of the photo and the reconstructions")
    iterations: int = option(100, "L-BFGS iterations per layer and scale")
    scales: int = option(3, "coarse-to-fine scales (1/4, 1/2, full size): deep layers need them for the layout")
    tv_weight: float = option(1.0, "total-variation weight (the feature loss is relative, so about 1)")

    def run(self, context: Context) -> Result:
        net = context.vgg_features(self.name)
        image = fit_longest(context.image, self.size)[None]
        tiles = [Tile(rgb(image), context.image_name)]
        found = []
        for layer in self.layers:
            with torch.no_grad():
                target = net.activations(image, [layer])[layer]
            # A relative error: features differ in scale by orders of magnitude across layers,
            # and one TV weight should mean the same for all of them.
            scale = 1.0 / max(float(target.pow(2).mean()), 1e-12)
            # Order-1 terms: [0, 1] pixels (L-BFGS's first step of 1 fits them), clipped every step.
            settings = GatysSettings(loss_network=net.vgg_source, content_weight=scale, tv_weight=self.tv_weight,
                                     iterations=self.iterations, pixel_scale=1.0, clip_every_step=True,
                                     max_step=math.inf, coarse_iterations=(self.iterations,) * (self.scales - 1))
            start = time.perf_counter()
            result = invert_features(image, layer, settings, seed=context.seed,
                                     device=context.device, progress=context.progress)
            with torch.no_grad():
                error = float((net.activations(result.image, [layer])[layer] - target).pow(2).mean()) * scale
            tiles.append(Tile(rgb(result.image), f"from {layer} (rel. error {error:.2f})"))
            found.append({"layer": layer, "relative_feature_error": error,
                          "pixel_rmse": float((result.image - image).pow(2).mean().sqrt()),
                          "iterations": len(result.history), "seconds": round(time.perf_counter() - start, 2)})
        summary = {"network": net.source, "size": list(image.shape[-2:]), "layers": found}
        return self.result(summary, [tiles], f"feature inversion: {net.source}, {self.scales} scales x "
                           f"{self.iterations} L-BFGS steps")
