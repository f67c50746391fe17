"""Non-parametric texture synthesis by Efros and Leung (1999): the pre-neural baseline.

The output grows from a small seed taken from the sample. Each unfilled pixel next
to the grown region takes the centre colour of a sample window whose known pixels
match its own neighbourhood (Gaussian-weighted SSD), chosen at random among the
windows within ``1 + error_threshold`` of the best match. Vectorised: all sample
windows are one matrix, and the ``batch`` pixels with the most known neighbours are
matched at once by two matrix products.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_window(window: int, channels: int) -> Tensor:
    """Weights of a window in ``F.unfold`` order (channel, row, column); sigma = window / 6.4
    as in the paper."""
    half = window // 2
    x = torch.arange(window, dtype=torch.float32) - half
    g = torch.exp(-(x**2) / (2 * (window / 6.4) ** 2))
    return torch.outer(g, g).flatten().repeat(channels)


def efros_leung(sample: Tensor, size: tuple[int, int], window: int = 11, *, error_threshold: float = 0.1,
                batch: int = 16, seed: int = 0) -> Tensor:
    """Synthesize a (3, H, W) texture of ``size`` from a (3, h, w) ``sample`` in [0, 1]."""
    if window % 2 == 0 or window < 3:
        raise ValueError(f"window must be odd and at least 3, not {window}")
    channels, h, w = sample.shape
    if min(h, w) < window + 2:
        raise ValueError(f"sample {w}x{h} is too small for a {window}-pixel window")
    sample = sample.float().cpu()
    half = window // 2
    generator = torch.Generator().manual_seed(seed)

    windows = F.unfold(sample[None], window)[0].T  # (L, D): every full window of the sample
    centres = sample[:, half:h - half, half:w - half].flatten(1).T  # (L, C): their centre colours
    windows_sq = windows.pow(2)
    gauss = gaussian_window(window, channels)

    H, W = size
    canvas = torch.zeros(channels, H + 2 * half, W + 2 * half)
    known = torch.zeros(H + 2 * half, W + 2 * half)  # the border stays unknown: it never matches
    sy = int(torch.randint(0, h - 3, (1,), generator=generator))
    sx = int(torch.randint(0, w - 3, (1,), generator=generator))
    cy, cx = half + H // 2 - 1, half + W // 2 - 1
    canvas[:, cy:cy + 3, cx:cx + 3] = sample[:, sy:sy + 3, sx:sx + 3]
    known[cy:cy + 3, cx:cx + 3] = 1

    # Offsets of a window's pixels from its centre, in the unfold order (row, column).
    dy, dx = (d.flatten() for d in torch.meshgrid(torch.arange(window) - half, torch.arange(window) - half,
                                                   indexing="ij"))
    ones = torch.ones(1, 1, window, window)
    while True:
        core_known = known[half:half + H, half:half + W]
        if bool(core_known.all()):
            break
        neighbours = F.conv2d(known[None, None], ones)[0, 0]  # known pixels in each core pixel's window
        neighbours[core_known > 0] = 0
        # The pixels with the most known neighbours go first (the paper's order).
        order = neighbours.flatten().topk(min(batch, int((neighbours > 0).sum()))).indices
        ys, xs = order // W + half, order % W + half
        rows, cols = ys[:, None] + dy, xs[:, None] + dx  # (B, window^2)
        targets = canvas[:, rows, cols].permute(1, 0, 2).flatten(1)  # (B, D), channel-major like unfold
        weights = known[rows, cols].repeat(1, channels) * gauss
        weighted = weights * targets
        ssd = weights @ windows_sq.T - 2 * weighted @ windows.T + (weighted * targets).sum(1, keepdim=True)
        ssd = ssd.clamp(min=0) / weights.sum(1, keepdim=True)
        good = ssd <= ssd.min(1, keepdim=True).values * (1 + error_threshold) + 1e-7
        pick = (torch.rand(ssd.shape, generator=generator) * good).argmax(1)
        canvas[:, ys, xs] = centres[pick].T
        known[ys, xs] = 1
    return canvas[:, half:half + H, half:half + W]
