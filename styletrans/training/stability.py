"""The stability term: a network's output should move with the picture.

A strided network samples its input on a fixed grid (4 px for every preset here). Trained on the
perceptual loss alone, its fine texture sits on that grid: shifting the photo by 1 px repaints the
texture, while a 4 px shift only moves it (issue 24's pan measurement). This term asks for
equivariance under the shifts that the grid does not give for free: the output of a crop shifted by
(dy, dx), 1-3 px each, against the same shift of the output, as a mean of squared [0, 1] differences.
Both outputs get gradients, and a border is left out, where reflection padding differs between them.
With ``noise`` (``shift_noise``), the shifted crop also gets Gaussian pixel noise: a camera's sensor and compression
noise changes every video frame, and a texture that answers it boils on a still shot (Gupta et al. 2017
measure the same instability against noise). The clean output stays the target, so the network learns to
ignore the noise, at no extra cost: it is the same second forward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

STRIDE = 4  # total stride of every TransformerNet preset
BORDER = 8  # pixels left out at each edge: the padding reaches about this far


def random_shift(step: int) -> tuple[int, int]:
    """A shift (dy, dx) in [0, STRIDE) x [0, STRIDE) other than (0, 0), a pure function of ``step``
    (an exact resume draws the same ones)."""
    generator = torch.Generator().manual_seed(step)
    index = int(torch.randint(1, STRIDE * STRIDE, (), generator=generator))
    return index // STRIDE, index % STRIDE


def shift_noise(step: int, like: Tensor, std: float) -> Tensor:
    """Gaussian noise of ``std`` shaped like ``like``, a pure function of ``step`` (as ``random_shift``)."""
    generator = torch.Generator().manual_seed(step)
    return (std * torch.randn(like.shape, generator=generator)).to(like)


def shift_consistency(net: nn.Module, images: Tensor, output: Tensor, shift: tuple[int, int],
                      style: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
    """Mean squared difference between ``net`` on ``images`` moved by ``shift`` (plus ``noise``, shaped
    like the moved images) and ``output`` (``net`` on ``images``) moved the same way, inside a border of
    ``BORDER`` px."""
    dy, dx = shift
    moved = images[..., dy:, dx:]
    if noise is not None:
        moved = (moved + noise).clamp(0, 1)
    shifted = net(moved, style)  # pixel (i, j) of this should be output's (i + dy, j + dx)
    h, w = shifted.shape[-2:]
    if min(h, w) <= 2 * BORDER:
        raise ValueError(f"crops of {h}x{w} px are too small for the stability term (need > {2 * BORDER})")
    inner = (..., slice(BORDER, h - BORDER), slice(BORDER, w - BORDER))
    return (shifted[inner] - output[..., dy:, dx:][inner]).float().pow(2).mean()
