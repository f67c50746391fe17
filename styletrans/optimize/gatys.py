"""Optimization-based methods on the perceptual loss (Gatys et al. 2015/2016).

Style transfer (content + style + TV), texture synthesis (style only) and feature
inversion (content only) are one call of ``optimize_image`` each, differing in
which loss terms are active and where the image starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from styletrans.color import keep_colors, luminance, match_luminance
from styletrans.images import resize_tensor
from styletrans.losses import PerceptualLoss
from styletrans.optimize.engine import Clamp, OptimizationResult, PixelImage, optimize_image

INITS = ("content", "noise", "style")


@dataclass
class GatysSettings:
    """Loss network, layers, weights and optimizer of the optimization path.

    Layers and losses are jcjohnson/neural-style's (content relu4_2; style relu1_1 ... relu5_1;
    absolute Gram terms on 0-255 Caffe features, see ``styletrans.losses``), started from the photo.
    Relative style terms (each layer divided by its target's energy) gave relu1_1 and relu4_1/relu5_1
    as much say as relu2_1/relu3_1: the output copied the painting's pixel-level grain as a field of
    dots and rippled under the deep terms (docs/lattice.md). Weights were chosen by looking at
    6 photo x painting pairs at 512 px (the README gallery).
    """

    loss_network: str = "vgg16-caffe"
    content_layers: dict[str, float] = field(default_factory=lambda: {"relu4_2": 1.0})
    style_layers: dict[str, float] = field(
        default_factory=lambda: {f"relu{i}_1": 1.0 for i in range(1, 6)}
    )
    relative_style: bool = False
    content_weight: float = 50.0
    style_weight: float = 100.0
    tv_weight: float = 5e6  # on the mean over [0, 1] pixels: about 0.3x neural-style's TV at 512x341
    optimizer: str = "lbfgs"
    lr: float = 1.0
    iterations: int = 200  # at the output size
    # Iterations at coarser scales first, coarsest first, each scale half the next one's size;
    # the result of each is upsampled as the start of the next. () optimizes at the output size only.
    coarse_iterations: tuple[int, ...] = ()
    init: str = "content"
    noise_std: float = 0.1  # of the noise init around mid-grey: uniform noise has large TV
    # Optimize pixels in these units (see PixelImage): L-BFGS's first step is 1 in them, and
    # 0-255 keeps it from overshooting under absolute Gram losses, as in neural-style.
    pixel_scale: float = 255.0
    # Clip to [0, 1] after every step. Off: the optimizer runs unconstrained and the image is
    # clipped after each scale, as in jcjohnson/neural-style. Clipping L-BFGS's iterates
    # corrupts its curvature pairs (the step taken is not the step it stored); with absolute
    # losses it made the loss jump 10-300x and oscillate (see ``evaluation``).
    clip_every_step: bool = False
    # No pixel moves more than this (in [0, 1] units) in one L-BFGS step. Uncapped, the first steps at
    # a finer scale moved pixels by up to 4000 levels of 255, and a run could stall at its start;
    # normal steps move 5-35 levels. 64 levels also converged faster than 32 or none (docs/lattice.md).
    max_step: float = 64 / 255

    def build_loss(self, device: torch.device | str = "cpu") -> PerceptualLoss:
        return PerceptualLoss(
            loss_network=self.loss_network,
            content_layers=self.content_layers,
            style_layers=self.style_layers,
            content_weight=self.content_weight,
            style_weight=self.style_weight,
            tv_weight=self.tv_weight,
            relative_style=self.relative_style,
        ).to(device)


def neural_style_settings(output_hw: tuple[int, int]) -> GatysSettings:
    """jcjohnson/neural-style's defaults, on this project's loss network (VGG-16, not VGG-19).

    The layers, losses, pixel units and unclipped L-BFGS are the defaults' (they were taken from it);
    its own are content weight 5, style weight 100, 1000 iterations from near-constant noise (0.001 in
    Caffe units) and its TV: a sum over 0-255 pixels, ``tv/2 * sum(d^2)`` with tv 1e-3, where ours is
    a mean over [0, 1] pixels, so the same penalty needs ``1e-3 / 2 * 255^2 * 3 H W``.
    """
    h, w = output_hw
    return GatysSettings(content_weight=5.0, style_weight=100.0, tv_weight=1e-3 / 2 * 255**2 * 3 * h * w,
                         iterations=1000, init="noise", noise_std=0.001 / 255, max_step=math.inf)


# The half-size stage's iterations for pictures up to a 512x341 photo; larger ones get fewer (down to
# 100 for a 512x512 square), so that a 512 px result stays under 3 minutes on 2 CPU cores.
HALF_SIZE_ITERATIONS = 150
FULL_SIZE_ITERATIONS = 20
_REFERENCE_PIXELS = 512 * 341


def default_settings(output_hw: tuple[int, int]) -> GatysSettings:
    """This project's defaults: 200 iterations up to 256 px; above, about 150 at half size, then 20
    at full size.

    An iteration's cost grows with the pixels (2.2 s at 512x341, 3.6 s at 512x512 on 2 CPU cores),
    so the half-size stage gets ``150 x 512*341 / pixels`` iterations, between 100 and 150
    (benchmarks/optimize.py has the times). 10 full-size iterations left a mosaic of fine dots (looked
    at, 512 px): L-BFGS needs its first 10-15 there to get past the blurred, upsampled start.
    A 1/4 scale first was tried and dropped: at 128 px relu4_2 is too coarse to hold the content.
    """
    if max(output_hw) <= 256:
        return GatysSettings()
    pixels = output_hw[0] * output_hw[1]
    half = max(100, min(HALF_SIZE_ITERATIONS, round(HALF_SIZE_ITERATIONS * _REFERENCE_PIXELS / pixels)))
    return GatysSettings(coarse_iterations=(half,), iterations=FULL_SIZE_ITERATIONS)


PRESETS: dict[str, Callable[[tuple[int, int]], GatysSettings]] = {
    "default": default_settings,
    "neural-style": neural_style_settings,
}


def _batch(image: Tensor) -> Tensor:
    return image if image.dim() == 4 else image[None]


def _initial_image(init: str, content: Tensor | None, style: Tensor | None,
                   hw: tuple[int, int], seed: int, device: torch.device, noise_std: float = 0.1) -> Tensor:
    if init == "content" and content is not None:
        return content.clone()
    if init == "style" and style is not None:
        return resize_tensor(style, hw)
    if init in ("noise", "content", "style"):
        generator = torch.Generator().manual_seed(seed)
        noise = 0.5 + noise_std * torch.randn(1, 3, *hw, generator=generator)
        return noise.clamp(0, 1).to(device)
    raise ValueError(f"unknown init {init!r}; one of {INITS}")


def run_gatys(
    content: Tensor | None,
    style: Tensor | None,
    settings: GatysSettings,
    *,
    output_size: tuple[int, int] | None = None,
    preserve_color: bool = False,
    seed: int = 0,
    device: torch.device | str = "cpu",
    loss: PerceptualLoss | None = None,
    autocast_dtype: torch.dtype | None = None,
    callback: Callable[[int, Tensor, dict[str, float]], None] | None = None,
    progress: bool = True,
) -> OptimizationResult:
    """Optimize an image against content and/or style targets.

    ``content`` and ``style`` are RGB in [0, 1], (3, H, W) or (1, 3, H, W); either may be
    None (texture synthesis / feature inversion). The output has the content's size,
    or ``output_size`` (H, W). With ``settings.coarse_iterations`` the image is first optimized
    at ..., 1/4, 1/2 of the size, the style image scaled alike so that strokes keep their size
    against the picture, and each result is upsampled as the start of the next scale.
    ``preserve_color`` transfers luminance only and keeps the content's colours.
    """
    if content is None and style is None:
        raise ValueError("need a content image, a style image, or both")
    device = torch.device(device)
    content = None if content is None else _batch(content).to(device)
    style = None if style is None else _batch(style).to(device)
    original_content = content
    if preserve_color:
        if content is None or style is None:
            raise ValueError("preserve_color needs both a content and a style image")
        style = match_luminance(style, content)
        content = luminance(content)

    if loss is None:
        loss = settings.build_loss(device)
    if content is None:
        loss.content_weight = 0.0
    if style is None:
        loss.style_weight = 0.0

    hw = output_size or (tuple(content.shape[-2:]) if content is not None else tuple(style.shape[-2:]))
    schedule = (*settings.coarse_iterations, settings.iterations)
    sizes = [(max(16, hw[0] >> k), max(16, hw[1] >> k)) for k in reversed(range(len(schedule)))]
    image = _initial_image(settings.init, None if content is None else resize_tensor(content, sizes[0]),
                           style, sizes[0], seed, device, settings.noise_std)
    history: list[dict[str, float]] = []
    for index, (size, iterations) in enumerate(zip(sizes, schedule, strict=True)):
        image = resize_tensor(image, size) if image.shape[-2:] != size else image
        if style is not None:
            factor = size[0] / hw[0]
            style_hw = (max(16, round(style.shape[-2] * factor)), max(16, round(style.shape[-1] * factor)))
            loss.set_style(style if factor == 1 else resize_tensor(style, style_hw))
        scaled_content = None if content is None else resize_tensor(content, size)
        targets = loss.content_targets(scaled_content) if scaled_content is not None else None

        def objective(x: Tensor, targets=targets):
            return loss(x, targets)

        result = optimize_image(
            PixelImage(image, settings.pixel_scale), objective,
            regularizers=[Clamp(high=settings.pixel_scale)] if settings.clip_every_step else [],
            optimizer=settings.optimizer, max_step=settings.max_step * settings.pixel_scale,
            iterations=iterations, lr=settings.lr, callback=callback,
            autocast_dtype=autocast_dtype, progress=progress,
            desc=f"gatys {size[1]}x{size[0]}" + (f" ({index + 1}/{len(sizes)})" if len(sizes) > 1 else ""),
        )
        image = result.image.clamp(0, 1)
        history += result.history

    if preserve_color:
        image = keep_colors(image, resize_tensor(original_content, tuple(image.shape[-2:])))
    return OptimizationResult(image, history)


def synthesize_texture(style: Tensor, size: tuple[int, int], settings: GatysSettings | None = None,
                       **kwargs) -> OptimizationResult:
    """Gram-matrix texture synthesis from noise (style loss only)."""
    settings = replace(settings or GatysSettings(), init="noise", content_layers={})
    return run_gatys(None, style, settings, output_size=size, **kwargs)


def invert_features(content: Tensor, layer: str, settings: GatysSettings | None = None,
                    **kwargs) -> OptimizationResult:
    """Reconstruct an image from one layer's features, starting from noise."""
    settings = replace(settings or GatysSettings(), init="noise", content_layers={layer: 1.0},
                       style_layers={})
    return run_gatys(content, None, settings, **kwargs)
