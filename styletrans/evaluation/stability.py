"""The pan number: does a style network's output move with the picture?

A camera pan made from one photo, so the true motion is known: frame ``t`` is the crop starting ``t``
pixels to the right. A network that follows the picture gives frames that differ only by that motion;
one whose texture sits on its own sampling grid (a total stride of 4 here) repaints the texture at
every shift that is not a multiple of the stride, which is flicker in video and a lattice in stills.

``pan_change`` is the mean absolute difference, in grey levels (0-255), between each frame's output and
the previous frame's output moved by ``shift`` pixels, a border left out (padding differs there). It is
0 for a network that follows the picture exactly. Over 4 consecutive 1 px steps every phase of the
4 px grid is crossed once. ``photo_change`` is the same frames' own change without alignment, the
flicker scale of the footage itself.

``noise_change`` is the same number for a still shot: frames that are the photo plus fresh camera-like
noise (``NOISE_LEVELS`` grey levels, rounded to 8 bits), compared without moving. A network that makes
its texture out of the noise repaints it every frame: the boiling of a wall in a still video.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

BORDER = 8  # px at each edge of the compared area
STEPS = 4  # frames compared per shift: 4 x 1 px covers every phase of the 4 px grid
LEVELS = 255.0
PAN_KEYS = ("fast_1px", "fast_4px", "photo_1px", "fast_noise", "photo_noise")  # pan_scores' figures, report order
NOISE_LEVELS = 1.0  # grey levels (std) of the noise frames: cup.mp4's still wall changes by 0.7 RMS per frame


def pan_frames(photo: Tensor, shift: int, steps: int = STEPS) -> Tensor:
    """(steps + 1, 3, H, W - steps * shift): crops of ``photo`` (3, H, W) moving right by ``shift`` px."""
    width = photo.shape[-1] - steps * shift
    if width <= 2 * BORDER + shift:
        raise ValueError(f"a {photo.shape[-1]} px wide photo is too narrow for a {steps} x {shift} px pan")
    return torch.stack([photo[:, :, t * shift: t * shift + width] for t in range(steps + 1)])


def aligned_change(frames: Tensor, shift: int) -> float:
    """Mean |frame[t + 1] - frame[t] moved left by ``shift``| in grey levels, inside the border."""
    later, earlier = frames[1:, ..., : frames.shape[-1] - shift], frames[:-1, ..., shift:]
    inner = (..., slice(BORDER, later.shape[-2] - BORDER), slice(BORDER, later.shape[-1] - BORDER))
    return float((later[inner] - earlier[inner]).abs().mean()) * LEVELS


def pan_change(stylize: Callable[[Tensor], Tensor], photo: Tensor, shift: int = 1, steps: int = STEPS) -> float:
    """The pan number of ``stylize`` ((B, 3, H, W) -> same, [0, 1]) on ``photo`` (3, H, W) for ``shift`` px."""
    frames = pan_frames(photo.float(), shift, steps)
    outputs = stylize(frames).float().cpu()
    return aligned_change(outputs, shift)


def photo_change(photo: Tensor, shift: int = 1, steps: int = STEPS) -> float:
    """How much the pan's own frames change from one to the next (no alignment), in grey levels."""
    frames = pan_frames(photo.float(), shift, steps)
    inner = (..., slice(BORDER, frames.shape[-2] - BORDER), slice(BORDER, frames.shape[-1] - BORDER))
    return float((frames[1:] - frames[:-1])[inner].abs().mean()) * LEVELS


def noise_frames(photo: Tensor, levels: float = NOISE_LEVELS, steps: int = STEPS, seed: int = 0) -> Tensor:
    """(steps + 1, 3, H, W): ``photo`` (3, H, W) plus fresh Gaussian noise of ``levels`` grey levels per
    frame, rounded to 8 bits like a decoded video frame; the same frames for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((steps + 1, *photo.shape), generator=generator) * (levels / LEVELS)
    return ((photo.float().cpu() + noise).clamp(0, 1) * LEVELS).round() / LEVELS


def noise_change(stylize: Callable[[Tensor], Tensor], photo: Tensor, levels: float = NOISE_LEVELS,
                 steps: int = STEPS) -> float:
    """Mean change in grey levels between consecutive outputs of ``stylize`` on ``noise_frames``."""
    return aligned_change(stylize(noise_frames(photo, levels, steps)).float().cpu(), 0)


def pan_scores(stylize: Callable[[Tensor], Tensor], photo: Tensor) -> dict[str, float]:
    """The report's pan figures: 1 px and 4 px (the stride) for the network, 1 px for the photo, and the
    still shot's noise for both; empty for a photo too narrow for the 4 px pan."""
    if photo.shape[-1] - STEPS * 4 <= 2 * BORDER + 4:
        return {}
    return {"fast_1px": pan_change(stylize, photo, 1), "fast_4px": pan_change(stylize, photo, 4),
            "photo_1px": photo_change(photo, 1), "fast_noise": noise_change(stylize, photo),
            "photo_noise": aligned_change(noise_frames(photo), 0)}
