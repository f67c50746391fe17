"""Colour handling for luminance-only style transfer (Gatys et al. 2017)."""

from __future__ import annotations

import torch
from torch import Tensor

_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _apply(matrix: Tensor, image: Tensor) -> Tensor:
    return torch.einsum("ij,...jhw->...ihw", matrix.to(image), image)


def rgb_to_yiq(image: Tensor) -> Tensor:
    return _apply(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: Tensor) -> Tensor:
    return _apply(_YIQ_TO_RGB, image)


def luminance(image: Tensor) -> Tensor:
    """Y of YIQ replicated to 3 channels: a grey RGB image of the same shape."""
    y = rgb_to_yiq(image)[..., :1, :, :]
    return y.expand_as(image).contiguous()


def match_luminance(style: Tensor, content: Tensor) -> Tensor:
    """Grey luminance of ``style`` with its mean and std matched to ``content``'s."""
    ys, yc = luminance(style), luminance(content)
    matched = (ys - ys.mean()) / (ys.std() + 1e-6) * yc.std() + yc.mean()
    return matched.clamp(0, 1)


def keep_colors(stylized: Tensor, content: Tensor) -> Tensor:
    """Luminance of ``stylized`` with the chrominance (I, Q) of ``content``."""
    out = rgb_to_yiq(content).clone()
    out[..., :1, :, :] = rgb_to_yiq(stylized)[..., :1, :, :]
    return yiq_to_rgb(out).clamp(0, 1)
