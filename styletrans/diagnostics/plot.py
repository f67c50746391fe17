"""Panel helpers: tensors to displayable arrays, mosaics, overlays, figure to PNG.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state, no
GUI backend), so panels render the same in tests, servers and notebooks.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from styletrans.images import tensor_to_array as rgb  # the name every panel module imports


@dataclass
class Tile:
    """One picture of a panel: RGB (H, W, 3) or a map (H, W) drawn with ``cmap``."""

    image: np.ndarray
    title: str = ""
    cmap: str | None = None


def signed(gradient: Tensor) -> np.ndarray:
    """A signed (3, H, W) map -> RGB around mid-grey, scaled by its largest magnitude."""
    g = gradient.detach().float()
    return rgb(0.5 + 0.5 * g / (g.abs().max() + 1e-12))


def normalized(values: Tensor | np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] (a constant map becomes zeros)."""
    arr = values.detach().float().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values, float)
    span = arr.max() - arr.min()
    return (arr - arr.min()) / span if span > 0 else np.zeros_like(arr)


def diverging(values: Tensor | np.ndarray, cmap: str = "RdBu_r") -> np.ndarray:
    """A signed map as RGB: white at zero, red positive, blue negative, scaled by the
    largest magnitude (so the sign is never hidden by the colour scale)."""
    from matplotlib import colormaps

    arr = values.detach().float().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values, float)
    scale = np.abs(arr).max() or 1.0
    return colormaps[cmap](0.5 + 0.5 * arr / scale)[..., :3]


def heat_overlay(image: Tensor, heat: Tensor | np.ndarray, cmap: str = "inferno", alpha: float = 0.6) -> np.ndarray:
    """The photo under a colour-mapped heat map (scaled to its own range)."""
    from matplotlib import colormaps

    colored = colormaps[cmap](normalized(heat))[..., :3]
    return (1 - alpha) * rgb(image) + alpha * colored


def mosaic(tiles: Sequence[np.ndarray] | np.ndarray, columns: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Equal-sized tiles (h, w) or (h, w, 3) laid out row by row with ``pad`` pixels between."""
    tiles = [np.asarray(t, dtype=float) for t in tiles]
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    shape = (rows * (h + pad) - pad, columns * (w + pad) - pad, *tiles[0].shape[2:])
    out = np.full(shape, fill, dtype=float)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = tile
    return out


def draw_box(image: np.ndarray, box: tuple[int, int, int, int], color=(1.0, 0.2, 0.2), width: int = 2) -> np.ndarray:
    """A copy of an (H, W, 3) image with the rectangle (top, left, bottom, right) outlined."""
    out = image.copy()
    h, w = out.shape[:2]
    top, left, bottom, right = (int(np.clip(v, 0, lim)) for v, lim in zip(box, (h, w, h, w), strict=True))
    out[top:min(top + width, h), left:right] = color
    out[max(bottom - width, 0):bottom, left:right] = color
    out[top:bottom, left:min(left + width, w)] = color
    out[top:bottom, max(right - width, 0):right] = color
    return out


def crop_padded(image: Tensor, box: tuple[int, int, int, int], fill: float = 0.5) -> Tensor:
    """The (top, left, bottom, right) box of a (3, H, W) image; outside parts are ``fill``."""
    top, left, bottom, right = box
    h, w = image.shape[-2:]
    out = torch.full((image.shape[0], bottom - top, right - left), fill, dtype=image.dtype, device=image.device)
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if y1 > y0 and x1 > x0:
        out[:, y0 - top:y1 - top, x0 - left:x1 - left] = image[:, y0:y1, x0:x1]
    return out


def tiles_figure(rows: list[list[Tile]], title: str = "", tile_inches: float = 2.4):
    """A grid figure: one row per list of tiles, titles above the tiles."""
    from matplotlib.figure import Figure

    columns = max(len(row) for row in rows)
    # Rows as tall as their tallest tile (landscape photos leave no empty bands).
    aspects = [max(t.image.shape[0] / t.image.shape[1] for t in row) for row in rows]
    height = sum(tile_inches * a + 0.25 for a in aspects) + (0.4 if title else 0.1)
    fig = Figure(figsize=(tile_inches * columns, height), layout="constrained")
    if title:
        fig.suptitle(title, fontsize=11)
    axes = fig.subplots(len(rows), columns, squeeze=False, gridspec_kw={"height_ratios": aspects})
    for r, row in enumerate(rows):
        for c in range(columns):
            ax = axes[r][c]
            ax.set_axis_off()
            if c < len(row):
                tile = row[c]
                ax.imshow(tile.image, cmap=tile.cmap, interpolation="nearest" if max(tile.image.shape[:2]) < 96
                          else "antialiased")
                ax.set_title(tile.title, fontsize=8)
    return fig


def figure_png(fig, dpi: int = 80) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"optimize": True})
    return buf.getvalue()
