"""9. ``fooling``: the smallest change to a real photo that makes the classifier say a
chosen class (Szegedy et al. 2014). Small Adam steps on the target's cross-entropy,
projected into an L-infinity ball around the photo, stopping at the first image the
classifier assigns to the target (an objective, two regularizers and a stopping rule
for ``optimize_image``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from styletrans.diagnostics.base import Context, Method, Result, Terms, Tile, center_square, option
from styletrans.diagnostics.networks import Network
from styletrans.diagnostics.plot import rgb
from styletrans.optimize.engine import Clamp, PixelImage, Regularizer, optimize_image


class TargetClass:
    """Objective: cross-entropy towards ``target``; records the target's probability and
    whether it is the top class."""

    def __init__(self, net: Network, target: int) -> None:
        self.net, self.target = net, target

    def __call__(self, image: Tensor) -> Terms:
        logits = self.net(image)
        loss = F.cross_entropy(logits, torch.tensor([self.target], device=logits.device))
        probs = logits.detach().softmax(-1)[0]
        return Terms(loss, {"probability": float(probs[self.target]),
                            "is_top1": float(int(probs.argmax()) == self.target)})


@dataclass
class LInfBall(Regularizer):
    """Project the pixels back within ``radius`` of ``center`` after every step."""

    center: Tensor
    radius: float

    @torch.no_grad()
    def after_step(self, pixels: Tensor, step: int) -> None:
        pixels.copy_(self.center + (pixels - self.center).clamp(-self.radius, self.radius))


def quantized(image: Tensor) -> Tensor:
    """What the image becomes once saved as 8-bit."""
    return image.clamp(0, 1).mul(255).round().div(255)


@dataclass
class Fooling(Method):
    """Perturb the photo until the classifier predicts the target class."""

    name: ClassVar[str] = "fooling"
    summary: ClassVar[str] = "smallest change to the photo that makes the classifier predict a chosen class"
    needs: ClassVar[tuple[str, ...]] = ("image",)

    target: str = option("stingray", "class to fool the classifier into (name or index)")
    size: int = option(224, "input size (central square) of the classifier")
    max_change: float = option(8.0, "largest change per pixel, in 1/255 steps (the L-infinity ball)")
    step: float = option(0.25, "Adam step size, in 1/255 steps")
    confidence: float = option(0.5, "stop once the target is top-1 with at least this probability "
                                    "(a margin that survives 8-bit saving)")
    iterations: int = option(300, "largest number of steps")
    amplify: float = option(0.0, "difference amplification in the panel (0: to full range)")

    def run(self, context: Context) -> Result:
        net = context.classifier
        target = net.class_index(self.target)
        original = center_square(context.image, self.size)[None]
        with torch.no_grad():
            before = net(original).softmax(-1)[0]
        radius = self.max_change / 255
        result = optimize_image(
            PixelImage(original), TargetClass(net, target),
            regularizers=[LInfBall(original, radius), Clamp()], optimizer="adam",
            iterations=self.iterations, lr=self.step / 255, progress=context.progress, desc="fooling",
            until=lambda record: record["is_top1"] == 1.0 and record["probability"] >= self.confidence,
        )
        fooled = result.image
        with torch.no_grad():
            after = net(fooled).softmax(-1)[0]
            saved = net(quantized(fooled)).softmax(-1)[0]
        diff = fooled - original
        linf = float(diff.abs().max())
        reached = int(after.argmax()) == target
        cats = net.categories
        amplify = self.amplify or 0.5 / max(linf, 1e-12)
        rows = [[Tile(rgb(original), f"original: {cats[int(before.argmax())]} ({float(before.max()):.2f})"),
                 Tile(rgb(fooled), f"fooled: {cats[int(after.argmax())]} ({float(after.max()):.2f})"),
                 Tile(rgb(0.5 + amplify * diff), f"difference x{amplify:.0f} (L-inf {linf * 255:.1f}/255)")]]
        summary = {
            "network": net.source, "target": target, "target_class": cats[target],
            "original_class": cats[int(before.argmax())], "original_probability": float(before.max()),
            "fooled_class": cats[int(after.argmax())], "target_probability": float(after[target]),
            "reached": reached, "reached_after_8bit": int(saved.argmax()) == target,
            "iterations": len(result.history), "linf": linf, "linf_255": linf * 255,
            "l2": float(diff.norm()), "rms_255": float(diff.pow(2).mean().sqrt()) * 255,
        }
        state = "fooled" if reached else "NOT fooled"
        return self.result(summary, rows, f"fooling {net.source}: {cats[int(before.argmax())]} -> "
                           f"{cats[target]} ({state} in {len(result.history)} steps)")
