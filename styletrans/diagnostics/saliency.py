"""6. ``saliency``: which pixels the class score is most sensitive to (Simonyan et al.
2014): the gradient of the unnormalized class score with respect to the image, its
absolute value maxed over colour channels; the same averaged over noisy copies of the
image (SmoothGrad, Smilkov et al. 2017); and the object segmented from the smoothed map,
by seeding GrabCut with the most and least salient pixels (or by a plain threshold).
Seeds from the vanilla map of EfficientNet scatter over the whole photo; SmoothGrad's
land on the object (the cat's face, the astronaut, the cup of the bundled photos)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from styletrans.diagnostics.base import Context, Method, Result, Tile, center_square, option
from styletrans.diagnostics.networks import Network
from styletrans.diagnostics.plot import heat_overlay, rgb
from styletrans.optimize.engine import gaussian_blur


def saliency_map(net: Network, image: Tensor, target: int) -> Tensor:
    """``max_c |d score_target / d image|``, (H, W), for one (3, H, W) image."""
    x = image[None].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        net(x)[0, target].backward()
    return x.grad[0].abs().amax(0)


def smoothgrad_map(net: Network, image: Tensor, target: int, *, samples: int, noise: float,
                   seed: int = 0) -> Tensor:
    """``saliency_map`` averaged over ``samples`` copies of the image plus Gaussian noise of
    standard deviation ``noise`` (pixels in [0, 1])."""
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(image.shape[-2:])
    for _ in range(samples):
        jitter = noise * torch.randn(image.shape, generator=generator)
        total += saliency_map(net, image + jitter.to(image.device), target).cpu()
    return total / samples


def segment(image: Tensor, saliency: Tensor, method: str, foreground: float, background: float,
            seed: int = 0) -> np.ndarray:
    """A boolean object mask from a saliency map.

    ``grabcut``: pixels above the ``foreground`` percentile of the (slightly blurred)
    saliency are sure foreground, below the ``background`` percentile sure background,
    the rest probable background, and GrabCut's colour models decide. ``threshold``:
    the pixels above the ``foreground`` percentile.
    """
    smooth = gaussian_blur(saliency[None, None].float(), 2.0)[0, 0].cpu().numpy()
    if smooth.max() <= smooth.min():
        return np.zeros(smooth.shape, bool)  # a flat map carries no object
    high, low = np.percentile(smooth, foreground), np.percentile(smooth, background)
    if method == "threshold":
        return smooth >= high
    import cv2

    mask = np.full(smooth.shape, cv2.GC_PR_BGD, np.uint8)
    mask[smooth >= np.percentile(smooth, (foreground + background) / 2)] = cv2.GC_PR_FGD
    mask[smooth >= high] = cv2.GC_FGD
    mask[smooth <= low] = cv2.GC_BGD
    bgr = np.ascontiguousarray((rgb(image)[..., ::-1] * 255).round().astype(np.uint8))
    cv2.setRNGSeed(seed)
    cv2.grabCut(bgr, mask, None, np.zeros((1, 65)), np.zeros((1, 65)), 5, cv2.GC_INIT_WITH_MASK)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


@dataclass
class Saliency(Method):
    """Vanilla gradient saliency and the object segmented from it."""

    name: ClassVar[str] = "saliency"
    summary: ClassVar[str] = "gradient saliency map and a saliency-seeded GrabCut segmentation"
    needs: ClassVar[tuple[str, ...]] = ("image",)

    target: str | None = option(None, "class name or index (default: the top-1 class)")
    size: int = option(224, "input size (central square) of the classifier")
    segmentation: str = option("grabcut", "how to segment from the saliency", choices=("grabcut", "threshold"))
    foreground: float = option(90.0, "saliency percentile above which pixels seed the foreground")
    background: float = option(30.0, "saliency percentile below which pixels seed the background")
    samples: int = option(16, "noisy copies averaged for SmoothGrad (0: segment from the vanilla map)")
    noise: float = option(0.15, "SmoothGrad noise, standard deviation (pixels in [0, 1])")

    def run(self, context: Context) -> Result:
        net = context.classifier
        image = center_square(context.image, self.size)
        with torch.no_grad():
            probs = net(image[None]).softmax(-1)[0]
        target = net.class_index(self.target) if self.target is not None else int(probs.argmax())
        vanilla = saliency_map(net, image, target).cpu()
        smooth = (smoothgrad_map(net, image, target, samples=self.samples, noise=self.noise, seed=context.seed)
                  if self.samples > 0 else vanilla)
        mask = segment(image, smooth, self.segmentation, self.foreground, self.background, context.seed)
        name = net.categories[target]
        cut = rgb(image) * mask[..., None] + (1 - mask[..., None]) * 1.0

        def shown(saliency: Tensor) -> Tensor:  # a few extreme pixels would hide the rest
            return saliency.clamp(max=float(saliency.quantile(0.99)))

        def share_in_mask(saliency: Tensor) -> float:  # above mask_fraction: concentrated on the mask
            total = float(saliency.sum())
            return float(saliency[torch.from_numpy(mask)].sum()) / total if total else 0.0

        rows = [[Tile(rgb(image), f"{name}: p={float(probs[target]):.2f}"),
                 Tile(shown(vanilla).numpy(), "vanilla |grad| (max over RGB)", cmap="hot")]]
        if self.samples > 0:
            rows[0].append(Tile(shown(smooth).numpy(), f"SmoothGrad ({self.samples} x noise {self.noise})",
                                cmap="hot"))
        rows[0] += [Tile(heat_overlay(image, shown(smooth), cmap="hot"), "saliency over the photo"),
                    Tile(cut, f"{self.segmentation} from saliency ({mask.mean():.0%} of pixels)")]
        summary = {"network": net.source, "target": target, "class": name, "probability": float(probs[target]),
                   "mask_fraction": float(mask.mean()),
                   "saliency_in_mask": share_in_mask(vanilla), "smoothgrad_in_mask": share_in_mask(smooth),
                   "saliency_max": float(vanilla.max())}
        return self.result(summary, rows, f"saliency: {net.source}, class {name!r}")
