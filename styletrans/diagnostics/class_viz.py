"""8. ``class-viz``: an image the classifier finds maximally of a class, by gradient
ascent on the class score from grey (Simonyan et al. 2014), kept natural-looking by
L2 decay and the Yosinski et al. 2015 regularizers: jitter, periodic Gaussian blur,
and clipping of pixels with small values or small contributions; plus a small random
rescaling before each step and coarse-to-fine octaves, which give large structures.

Everything here is an objective and regularizers for ``optimize_image``, called once
per octave.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from styletrans.diagnostics.base import Context, Method, Result, Terms, Tile, option
from styletrans.diagnostics.deepdream import octave_sizes
from styletrans.diagnostics.networks import Network
from styletrans.diagnostics.plot import rgb
from styletrans.images import resize_tensor
from styletrans.optimize.engine import (
    L2,
    Clamp,
    ClipSmallContributions,
    ClipSmallValues,
    GaussianBlur,
    Jitter,
    PixelImage,
    Regularizer,
    optimize_image,
)


class ClassScore:
    """Objective: the negative unnormalized score of ``target`` (minimized), recording
    the score and the class probability."""

    def __init__(self, net: Network, target: int) -> None:
        self.net, self.target = net, target

    def __call__(self, image: Tensor) -> Terms:
        logits = self.net(image)[0]
        score = logits[self.target]
        probability = logits.detach().softmax(-1)[self.target]
        return Terms(-score, {"score": float(score.detach()), "probability": float(probability)})


@dataclass
class RandomScale(Regularizer):
    """Rescale the image by a random factor in ``[1 - amount, 1 + amount]`` before the
    network sees it: features must survive small changes of scale."""

    amount: float

    def transform(self, image: Tensor) -> Tensor:
        if self.amount <= 0:
            return image
        factor = float(torch.empty(()).uniform_(1 - self.amount, 1 + self.amount))
        return F.interpolate(image, scale_factor=factor, mode="bilinear", align_corners=False)


def stretched(image: Tensor) -> np.ndarray:
    """The 1st-99th percentile range of an image stretched to [0, 1], for display
    (regularized class images are low in contrast)."""
    arr = rgb(image)
    low, high = np.percentile(arr, (1, 99))
    return np.clip((arr - low) / max(high - low, 1e-6), 0, 1)


@dataclass
class ClassViz(Method):
    """Class visualization by regularized gradient ascent on the class score."""

    name: ClassVar[str] = "class-viz"
    summary: ClassVar[str] = "images maximizing a class score, with L2, jitter, blur and clipping regularizers"

    classes: tuple[str, ...] = option(("flamingo", "goldfinch", "tarantula"), "class names or indices")
    size: int = option(224, "image side")
    octaves: int = option(3, "coarse-to-fine scales, each upsampled as the next one's start")
    octave_scale: float = option(1.4, "size ratio between octaves")
    iterations: int = option(80, "Adam steps per octave")
    lr: float = option(0.02, "Adam step size (pixels in [0, 1])")
    l2: float = option(0.1, "L2 decay weight towards mid-grey")
    jitter: int = option(12, "random shift in pixels before each step")
    scale: float = option(0.15, "random rescaling amount before each step (0: off)")
    blur_sigma: float = option(1.0, "Gaussian blur sigma (0: off)")
    blur_every: int = option(2, "blur every N steps")
    clip_values: float = option(0.0, "percentile of smallest-norm pixels reset to grey each step (0: off)")
    clip_contributions: float = option(10.0, "percentile of smallest-contribution pixels reset to grey (0: off)")

    def regularizers(self) -> list[Regularizer]:
        return [L2(self.l2), Jitter(self.jitter), RandomScale(self.scale),
                GaussianBlur(self.blur_sigma, self.blur_every), ClipSmallValues(self.clip_values),
                ClipSmallContributions(self.clip_contributions), Clamp()]

    def visualize(self, net: Network, target: int, context: Context) -> tuple[Tensor, list[dict[str, float]]]:
        sizes = octave_sizes((self.size, self.size), self.octaves, self.octave_scale)
        generator = torch.Generator().manual_seed(context.seed + target)
        image = (0.5 + 0.02 * torch.randn(1, 3, *sizes[0], generator=generator)).to(context.device)
        history: list[dict[str, float]] = []
        for index, size in enumerate(sizes):
            result = optimize_image(PixelImage(resize_tensor(image, size)), ClassScore(net, target),
                                    regularizers=self.regularizers(), optimizer="adam", iterations=self.iterations,
                                    lr=self.lr, progress=context.progress,
                                    desc=f"class-viz {net.categories[target]} ({index + 1}/{len(sizes)})")
            image = result.image
            history += result.history
        return image, history

    def run(self, context: Context) -> Result:
        net = context.classifier
        targets = [net.class_index(c) for c in self.classes]
        if not targets:
            raise ValueError("class-viz needs at least one class")
        tiles, found = [], []
        for target in targets:
            image, history = self.visualize(net, target, context)
            with torch.no_grad():
                probs = net(image).softmax(-1)[0]
            name = net.categories[target]
            tiles.append(Tile(stretched(image), f"{name}: p={float(probs[target]):.3f}"))
            found.append({"target": target, "class": name, "probability": float(probs[target]),
                          "top1": net.categories[int(probs.argmax())], "score": history[-1]["score"],
                          "iterations": len(history)})
        summary = {"network": net.source, "classes": found,
                   "min_probability": min(entry["probability"] for entry in found)}
        return self.result(summary, [tiles], f"class images: {net.source} (contrast stretched)",
                           tile_inches=2.8)
