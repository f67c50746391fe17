"""5. ``occlusion``: slide a grey patch over the photo and map how much the class
probability drops (Zeiler and Fergus 2014): the network relies on what hurts to hide."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from styletrans.diagnostics.base import Context, Method, Result, Tile, center_square, option
from styletrans.diagnostics.networks import Network
from styletrans.diagnostics.plot import diverging, heat_overlay, rgb


def window_starts(length: int, patch: int, stride: int) -> list[int]:
    """Patch offsets every ``stride`` pixels, plus one flush with the far edge."""
    starts = list(range(0, max(1, length - patch + 1), stride))
    if starts[-1] + patch < length:
        starts.append(length - patch)
    return starts


def occlusion_drops(net: Network, image: Tensor, target: int, patch: int, stride: int,
                    batch_size: int = 32, score: str = "probability") -> tuple[Tensor, list[int], list[int], float]:
    """Score drop for every patch position, (rows, cols), with the row and column offsets
    and the unoccluded score. The patch is filled with the image's mean colour."""
    image = image[None] if image.dim() == 3 else image
    h, w = image.shape[-2:]
    ys, xs = window_starts(h, patch, stride), window_starts(w, patch, stride)
    fill = image.mean(dim=(-2, -1), keepdim=True)

    def scores(batch: Tensor) -> Tensor:
        logits = net(batch)
        return (logits.softmax(-1) if score == "probability" else logits)[:, target]

    positions = [(y, x) for y in ys for x in xs]
    out = []
    with torch.no_grad():
        base = float(scores(image)[0])
        for start in range(0, len(positions), batch_size):
            chunk = positions[start:start + batch_size]
            batch = image.repeat(len(chunk), 1, 1, 1)
            for b, (y, x) in enumerate(chunk):
                batch[b, :, y:y + patch, x:x + patch] = fill[0]
            out.append(base - scores(batch))
    return torch.cat(out).view(len(ys), len(xs)).cpu(), ys, xs, base


def drops_to_pixels(drops: Tensor, ys: list[int], xs: list[int], patch: int, hw: tuple[int, int]) -> Tensor:
    """Per pixel: the mean drop over all patch positions covering it."""
    total, count = torch.zeros(hw), torch.zeros(hw)
    for r, y in enumerate(ys):
        for c, x in enumerate(xs):
            total[y:y + patch, x:x + patch] += drops[r, c]
            count[y:y + patch, x:x + patch] += 1
    return total / count.clamp(min=1)


@dataclass
class Occlusion(Method):
    """Heat map of the class-score drop under a sliding mean-grey patch."""

    name: ClassVar[str] = "occlusion"
    summary: ClassVar[str] = "class-probability drop as a grey patch slides over the photo"
    needs: ClassVar[tuple[str, ...]] = ("image",)

    target: str | None = option(None, "class name or index (default: the top-1 class)")
    patch: int = option(48, "side of the grey patch in pixels")
    stride: int = option(16, "step between patch positions in pixels")
    size: int = option(224, "input size (central square) of the classifier")
    score: str = option("probability", "score whose drop is mapped", choices=("probability", "logit"))

    def run(self, context: Context) -> Result:
        net = context.classifier
        image = center_square(context.image, self.size)
        with torch.no_grad():
            probs = net(image[None]).softmax(-1)[0]
        target = net.class_index(self.target) if self.target is not None else int(probs.argmax())
        drops, ys, xs, base = occlusion_drops(net, image, target, self.patch, self.stride, score=self.score)
        heat = drops_to_pixels(drops, ys, xs, self.patch, tuple(image.shape[-2:]))
        worst = divmod(int(drops.argmax()), drops.shape[1])
        name = net.categories[target]
        rows = [[Tile(rgb(image), f"{name}: p={float(probs[target]):.2f}"),
                 Tile(diverging(heat), f"{self.score} drop (max {float(drops.max()):.2f})"),
                 Tile(heat_overlay(image, heat.clamp(min=0)), f"{self.patch}px patch, stride {self.stride}")]]
        summary = {"network": net.source, "target": target, "class": name, "base_score": base,
                   "max_drop": float(drops.max()), "min_drop": float(drops.min()),
                   "max_drop_box": [ys[worst[0]], xs[worst[1]], ys[worst[0]] + self.patch, xs[worst[1]] + self.patch],
                   "grid": {"rows": ys, "cols": xs, "drops": drops.tolist()}}
        return self.result(summary, rows, f"occlusion: {net.source}, class {name!r} "
                           "(red: hiding it hurts, blue: hiding it helps)")
