"""The one image-optimization loop.

Gatys style transfer, texture synthesis, feature inversion, class visualization,
DeepDream and fooling images are all gradient steps on an image against an
objective with regularizers. This module is that loop; the methods differ only in
the objective, the regularizers, the initial image and the optimizer they pass.

* a **parameterization** owns the optimized tensor and renders it to an RGB image
  in [0, 1] (``PixelImage``: the pixels themselves);
* an **objective** maps the rendered image to a scalar to *minimize*, or to an
  object with ``.total`` and ``.as_floats()`` (such as ``LossTerms``) so that its
  parts are recorded; maximize by returning the negative;
* **regularizers** add a penalty to the loss (TV, L2), transform the image before
  the objective sees it (jitter), or act on the pixels after a step (clamping,
  blur, clipping of small values or of small contributions, which reads the
  step's gradient from ``pixels.grad``);
* the **optimizer** is ``lbfgs``, ``adam``, ``sgd`` or ``normalized-sgd`` (steps of
  ``lr * grad / mean|grad|``, as DeepDream takes).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from styletrans.losses import total_variation

OPTIMIZERS = ("lbfgs", "adam", "sgd", "normalized-sgd")


class PixelImage(nn.Module):
    """Parameterize an image (B, 3, H, W) directly by its pixels, stored times ``scale``.

    The scale matters to L-BFGS, whose first step has an L1 length of 1 in the parameter's units
    (for large gradients): neural-style optimizes 0-255 pixels (``scale=255``); in [0, 1] units the
    same first step is 255x longer and overshoots under its absolute Gram losses.
    """

    def __init__(self, init: Tensor, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.pixels = nn.Parameter(init.detach().float().mul(scale).contiguous())

    def forward(self) -> Tensor:
        return self.pixels if self.scale == 1.0 else self.pixels / self.scale


class Regularizer:
    """Base class: override any of the three hooks."""

    def penalty(self, image: Tensor) -> Tensor | None:
        """A term added to the loss (weighted), or None."""
        return None

    def transform(self, image: Tensor) -> Tensor:
        """A differentiable change applied before the objective sees the image."""
        return image

    @torch.no_grad()
    def after_step(self, pixels: Tensor, step: int) -> None:
        """An in-place change of the optimized pixels after each step (the engine calls it
        under ``no_grad``; ``pixels.grad`` holds the gradient the step was taken from)."""


@dataclass
class TotalVariation(Regularizer):
    """``weight * total_variation(image)`` (see ``styletrans.losses``)."""

    weight: float

    def penalty(self, image: Tensor) -> Tensor:
        return self.weight * total_variation(image)


@dataclass
class L2(Regularizer):
    """``weight * mean((image - center)^2)``: keeps pixels near mid-grey."""

    weight: float
    center: float = 0.5

    def penalty(self, image: Tensor) -> Tensor:
        return self.weight * (image - self.center).pow(2).mean()


@dataclass
class Jitter(Regularizer):
    """Roll the image by a random offset of up to ``pixels`` before each evaluation."""

    pixels: int

    def transform(self, image: Tensor) -> Tensor:
        if self.pixels <= 0:
            return image
        dy, dx = (int(v) for v in torch.randint(-self.pixels, self.pixels + 1, (2,)))
        return torch.roll(image, shifts=(dy, dx), dims=(-2, -1))


@dataclass
class Clamp(Regularizer):
    """Clip pixels to the valid range after every step (projected gradient descent).

    For first-order optimizers. With L-BFGS the projected step is not the step the
    optimizer stored, which corrupts its curvature estimate: clip at the end instead."""

    low: float = 0.0
    high: float = 1.0

    @torch.no_grad()
    def after_step(self, pixels: Tensor, step: int) -> None:
        pixels.clamp_(self.low, self.high)


@dataclass
class GaussianBlur(Regularizer):
    """Blur the pixels every ``every`` steps (Yosinski et al. 2015)."""

    sigma: float
    every: int = 4

    @torch.no_grad()
    def after_step(self, pixels: Tensor, step: int) -> None:
        if self.sigma > 0 and (step + 1) % self.every == 0:
            pixels.copy_(gaussian_blur(pixels, self.sigma))


@dataclass
class ClipSmallValues(Regularizer):
    """Move pixels whose deviation from ``center`` is in the smallest ``percentile``
    (by norm over channels) to ``center`` (Yosinski et al. 2015)."""

    percentile: float
    center: float = 0.5

    @torch.no_grad()
    def after_step(self, pixels: Tensor, step: int) -> None:
        if self.percentile <= 0:
            return
        norm = (pixels - self.center).norm(dim=1, keepdim=True)
        threshold = torch.quantile(norm.flatten(1), self.percentile / 100, dim=1).view(-1, 1, 1, 1)
        pixels.copy_(torch.where(norm < threshold, torch.full_like(pixels, self.center), pixels))


@dataclass
class ClipSmallContributions(Regularizer):
    """Move pixels whose contribution ``|sum_c (x - center) * grad|`` to the objective is
    in the smallest ``percentile`` to ``center`` (Yosinski et al. 2015): a first-order
    estimate of what setting the pixel to grey would change."""

    percentile: float
    center: float = 0.5

    @torch.no_grad()
    def after_step(self, pixels: Tensor, step: int) -> None:
        if self.percentile <= 0 or pixels.grad is None:
            return
        contribution = ((pixels - self.center) * pixels.grad).sum(dim=1, keepdim=True).abs()
        threshold = torch.quantile(contribution.flatten(1), self.percentile / 100, dim=1).view(-1, 1, 1, 1)
        pixels.copy_(torch.where(contribution < threshold, torch.full_like(pixels, self.center), pixels))


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with reflection padding, (B, C, H, W)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = image.shape[1]
    pad = min(radius, image.shape[-1] - 1, image.shape[-2] - 1)
    if pad < radius:  # tiny images: fall back to replicate padding
        padded = F.pad(image, (radius,) * 4, mode="replicate")
    else:
        padded = F.pad(image, (radius,) * 4, mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class Objective(Protocol):
    def __call__(self, image: Tensor) -> Any: ...


@dataclass
class OptimizationResult:
    """The final image (B, 3, H, W) and one record of floats per iteration."""

    image: Tensor
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def losses(self) -> list[float]:
        return [record["loss"] for record in self.history]


def _split(output: Any) -> tuple[Tensor, dict[str, float]]:
    if isinstance(output, Tensor):
        return output, {}
    return output.total, output.as_floats()


class LBFGS(torch.optim.Optimizer):
    """L-BFGS as neural-style runs it: one evaluation per ``step``, no line search, a first step of
    L1 length ``lr`` (for large gradients), then quasi-Newton steps times ``lr``; with each step
    shortened, if need be, so that no value moves by more than ``max_step``.

    Without the cap, the second step on an upsampled start (the next scale of a coarse-to-fine run)
    raised the loss up to 1e11-fold, and the curvature pair that step left shrank every later step:
    the run stalled at its start (docs/lattice.md). Uncapped, it takes torch.optim.LBFGS's steps
    (``max_iter=1``, no tolerances), and, as torch, it pairs gradients with the steps it computed
    (a regularizer that clamps the pixels afterwards does not enter its curvature estimate).
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1.0, history_size: int = 50,
                 max_step: float = math.inf) -> None:
        super().__init__(params, {"lr": lr})
        self.history_size, self.max_step = history_size, max_step
        self.pairs: list[tuple[Tensor, Tensor, Tensor]] = []  # (s, y, 1 / y.s), oldest first
        self.last: tuple[Tensor, Tensor] | None = None  # (the last step, the gradient where it started)
        self.scale = 1.0  # the initial inverse Hessian, y.s / y.y of the latest accepted pair

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        with torch.enable_grad():
            loss = closure()
        params = [p for group in self.param_groups for p in group["params"]]
        grad = torch.cat([p.grad.flatten() for p in params])
        if self.last is not None:
            s, previous_grad = self.last  # the step this optimizer took, even if a regularizer then moved the pixels
            y = grad - previous_grad
            ys = y.dot(s)
            if ys > 1e-10:  # curvature along the step; a pair without it would break the update
                self.pairs = [*self.pairs[1 - self.history_size:], (s, y, 1 / ys)]
                self.scale = float(ys / y.dot(y))
        direction, alphas = -grad, []
        for s, y, rho in reversed(self.pairs):
            alphas.append(rho * s.dot(direction))
            direction -= alphas[-1] * y
        direction *= self.scale
        for (s, y, rho), alpha in zip(self.pairs, reversed(alphas), strict=True):
            direction += (alpha - rho * y.dot(direction)) * s
        first = self.last is None
        direction *= self.param_groups[0]["lr"] * (min(1.0, 1.0 / float(grad.abs().sum())) if first else 1.0)
        largest = float(direction.abs().max())
        if largest > self.max_step:
            direction *= self.max_step / largest
        self.last = (direction, grad)
        offset = 0
        for p in params:
            p.add_(direction[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        return loss


def _make_optimizer(name: str, params: list[Tensor], lr: float,
                    max_step: float = math.inf) -> torch.optim.Optimizer | None:
    if name == "lbfgs":
        return LBFGS(params, lr=lr, max_step=max_step)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "normalized-sgd":
        return None  # hand-written step below
    raise ValueError(f"unknown optimizer {name!r}; one of {OPTIMIZERS}")


def optimize_image(
    param: nn.Module,
    objective: Objective,
    *,
    regularizers: Sequence[Regularizer] = (),
    optimizer: str = "lbfgs",
    iterations: int = 300,
    lr: float = 1.0,
    callback: Callable[[int, Tensor, dict[str, float]], None] | None = None,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = True,
    desc: str = "optimize",
    until: Callable[[dict[str, float]], bool] | None = None,
    max_step: float = math.inf,
) -> OptimizationResult:
    """Minimize ``objective(param())`` plus regularizer penalties over ``iterations`` steps.

    ``callback(step, image, record)`` runs after every step with the current image
    (no gradient) and that step's record of floats (``loss`` and the objective's parts).
    ``until(record)`` stops early: as soon as it holds for the record of an evaluated
    image, that image (not the one after the step) is returned and the history ends
    with its record (fooling images stop at the first image that fools).
    ``max_step`` (L-BFGS only): no value of the parameter moves by more than this in one step.
    """
    params = [p for p in param.parameters() if p.requires_grad]
    opt = _make_optimizer(optimizer, params, lr, max_step)
    device_type = params[0].device.type
    history: list[dict[str, float]] = []
    record: dict[str, float] = {}
    evaluated: Tensor | None = None

    def closure() -> Tensor:
        nonlocal record, evaluated
        if opt is not None:
            opt.zero_grad(set_to_none=True)
        else:
            for p in params:
                p.grad = None
        image = param()
        if until is not None:
            evaluated = image.detach().clone()
        loss = image.new_zeros((), dtype=torch.float32)
        parts: dict[str, float] = {}
        for reg in regularizers:
            term = reg.penalty(image)
            if term is not None:
                loss = loss + term
                parts[type(reg).__name__] = float(term.detach())
        seen = image
        for reg in regularizers:
            seen = reg.transform(seen)
        autocast = (torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype
                    else contextlib.nullcontext())
        with autocast:
            total, obj_parts = _split(objective(seen))
        loss = loss + total.float()
        loss.backward()
        record = {"loss": float(loss.detach()), **obj_parts, **parts}
        return loss

    bar = tqdm(range(iterations), desc=desc, disable=not progress, leave=False)
    for step in bar:
        if opt is None:
            closure()
            with torch.no_grad():
                for p in params:
                    p.sub_(lr * p.grad / (p.grad.abs().mean() + 1e-12))
        elif optimizer == "lbfgs":
            opt.step(closure)
        else:
            closure()
            opt.step()
        if until is not None and until(record):
            history.append(record)
            bar.close()
            return OptimizationResult(evaluated, history)
        with torch.no_grad():  # the parameters themselves, so that .grad is readable
            for reg in regularizers:
                for p in params:
                    reg.after_step(p, step)
        if not math.isfinite(record["loss"]):
            raise FloatingPointError(f"loss became {record['loss']} at iteration {step}: lower lr or weights")
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.4g}", refresh=False)
        if callback is not None:
            with torch.no_grad():
                callback(step, param().detach(), record)
    with torch.no_grad():
        image = param().detach()
    return OptimizationResult(image, history)
