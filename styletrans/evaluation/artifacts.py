"""Numbers for the artifacts a VGG loss can print over a picture: a dot lattice, dots, and a
frame along the edges.

The lattice is a fine pattern that repeats every few pixels, with a phase and period that
drift across the picture, so it is not a sharp peak in the picture's spectrum. Locally it
is: the autocorrelation of the fine detail in small windows has a strong secondary peak at
the lattice's step, and averaging autocorrelations (not spectra) over windows is blind to
the drifting phase. JPEG's 8x8 block grid repeats too, but along whole rows and columns:
its autocorrelation is a ridge (high for every horizontal lag at a vertical lag of 8, and
the reverse), which the score subtracts, and on-axis lags are left out altogether.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.functional import gaussian_blur

WINDOW = 32  # px: small enough that the lattice's phase holds within a window
MAX_LAG = 10  # px: lattices from VGG-16's strides repeat every 2 to 8 pixels
MIN_LAG = 3  # px: nearer lags only see the detail's own width
LUMA = (0.299, 0.587, 0.114)
DOT_CONTRAST = 0.15  # of the [0, 1] range, in any channel: well above sensor noise and JPEG's block steps
FRAME_BAND = 4  # px: the width of the band a padded network paints along each edge
FRAME_INSIDE = 8  # px: the band is compared with the strip just inside it


def mean_autocorrelation(image: Tensor) -> Tensor:
    """(2 MAX_LAG + 1)^2 autocorrelation of the fine detail, averaged over half-overlapping
    windows, 1 at lag 0. ``image``: (3, H, W) RGB in [0, 1], at least WINDOW on each side."""
    grey = (image.detach().float().cpu() * torch.tensor(LUMA)[:, None, None]).sum(0, keepdim=True)
    detail = grey - gaussian_blur(grey[None], kernel_size=9, sigma=1.5)[0]  # fine detail only
    windows = detail.unfold(1, WINDOW, WINDOW // 2).unfold(2, WINDOW, WINDOW // 2).reshape(-1, WINDOW, WINDOW)
    windows = windows - windows.mean(dim=(1, 2), keepdim=True)
    power = torch.fft.fft2(windows, s=(2 * WINDOW, 2 * WINDOW)).abs() ** 2  # zero-padded: no wrap-around
    corr = torch.fft.fftshift(torch.fft.ifft2(power).real, dim=(1, 2))
    centre = WINDOW
    zero_lag = corr[:, centre, centre]
    keep = zero_lag > 1e-9  # flat windows say nothing
    if not keep.any():
        return torch.zeros(2 * MAX_LAG + 1, 2 * MAX_LAG + 1)
    lags = corr[keep, centre - MAX_LAG: centre + MAX_LAG + 1, centre - MAX_LAG: centre + MAX_LAG + 1]
    return (lags / zero_lag[keep, None, None]).mean(0)


def lattice_score(image: Tensor) -> float:
    """How strongly the fine detail repeats at a small off-axis step, above any row or column
    ridge: about 0.01-0.03 for photos, paintings and heavily compressed JPEGs, 0.15 and more
    for a visible dot lattice. ``image``: (3, H, W) or (1, 3, H, W) RGB in [0, 1]."""
    if image.dim() == 4:
        image = image[0]
    if min(image.shape[-2:]) < WINDOW:
        image = F.interpolate(image[None], size=(max(WINDOW, image.shape[-2]), max(WINDOW, image.shape[-1])),
                              mode="bilinear", align_corners=False)[0]
    corr = mean_autocorrelation(image)
    ridge = torch.maximum(corr.median(dim=1, keepdim=True).values, corr.median(dim=0, keepdim=True).values)
    lag = torch.arange(-MAX_LAG, MAX_LAG + 1)
    dy, dx = lag[:, None], lag[None, :]
    off_axis = (torch.maximum(dy.abs(), dx.abs()) >= MIN_LAG) & (dy != 0) & (dx != 0)
    return float((corr - ridge)[off_axis].max().clamp(min=0))


def dot_score(image: Tensor) -> float:
    """The fraction of pixels that stand out from the median of their 3x3 neighbourhood by more
    than DOT_CONTRAST in some channel: isolated dots.

    0.000-0.02 for photos (fine texture scaled down scores highest), under 0.01 for heavily
    compressed JPEGs (a block edge is a line, not a dot), 0.08-0.13 for Gatys results with relative
    style terms, which copy the painting's own grain at that scale onto the photo (a painting at
    256-512 px scores about 0.1), 0.00-0.04 for painterly strokes.
    ``image``: (3, H, W) or (1, 3, H, W) RGB in [0, 1]."""
    if image.dim() == 4:
        image = image[0]
    image = image.detach().float().cpu()
    padded = F.pad(image[None], (1, 1, 1, 1), mode="replicate")[0]
    neighbourhood = padded.unfold(1, 3, 1).unfold(2, 3, 1).reshape(*image.shape, 9)
    standout = (image - neighbourhood.median(dim=-1).values).abs().amax(dim=0)
    return float((standout > DOT_CONTRAST).float().mean())


def edge_frame_score(image: Tensor, photo: Tensor) -> float:
    """A frame painted along the edges: per side, how much brighter or darker the outer FRAME_BAND px
    are than the FRAME_INSIDE px just inside them, less the same step in the ``photo`` the picture was
    made from (so a sky or a vignette is not counted), in grey levels (0-255), the mean over the four
    sides. A Gatys result scores about 10 (it repaints the edges too); the bundled files 5-10, the
    previous ship 13-32 (medians of 3 dev_eval photos at 256 px; models/README.md). ``image`` and
    ``photo``: (3, H, W) or (1, 3, H, W) in [0, 1], the same size."""
    steps = [_edge_steps(image), _edge_steps(photo)]
    return float(sum(abs(a - b) for a, b in zip(*steps, strict=True)) / 4 * 255)


def _edge_steps(image: Tensor) -> list[float]:
    """Mean brightness of the outer band less that of the strip inside it: top, bottom, left, right."""
    if image.dim() == 4:
        image = image[0]
    grey = (image.detach().float().cpu() * torch.tensor(LUMA)[:, None, None]).sum(0)
    # Pictures under 24 px get narrower bands in the same proportion; under 6 px there is no band to see.
    b = min(FRAME_BAND, min(grey.shape) // 6)
    if b == 0:
        return [0.0] * 4
    n = b + b * FRAME_INSIDE // FRAME_BAND
    sides = [(grey[:b], grey[b:n]), (grey[-b:], grey[-n:-b]),
             (grey[:, :b], grey[:, b:n]), (grey[:, -b:], grey[:, -n:-b])]
    return [float(band.mean() - inside.mean()) for band, inside in sides]
