from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from styletrans.diagnostics import Context, Filters
from styletrans.diagnostics.filters import channel_filter_grid, rgb_filter_grid
from styletrans.diagnostics.networks import Affine, Network, tiny_random


def test_filter_grids_have_one_tile_per_kernel():
    weight = torch.randn(8, 3, 3, 3)
    assert rgb_filter_grid(weight).shape == (3 * 3 + 2, 3 * 3 + 2, 3)  # 3x3 tiles, 1 px gaps
    grid = channel_filter_grid(torch.randn(16, 8, 3, 3), count=4, channels=5)
    assert grid.shape == (4 * 4 - 1, 5 * 4 - 1)
    assert grid.min() >= 0 and grid.max() <= 1


def test_filter_grid_tiles_are_the_kernels_themselves():
    """Tile i of the RGB grid is kernel i scaled to its own range; the per-channel grid maps
    0 to mid-grey and each filter's largest magnitude to black or white."""
    weight = torch.randn(5, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    grid = rgb_filter_grid(weight)  # 3 columns, 1 px gaps
    for i, kernel in enumerate(weight):
        row, column = divmod(i, 3)
        tile = grid[4 * row: 4 * row + 3, 4 * column: 4 * column + 3]
        scaled = (kernel - kernel.min()) / (kernel.max() - kernel.min())
        np.testing.assert_allclose(tile, scaled.permute(1, 2, 0).numpy(), atol=1e-6)
    deeper = torch.zeros(2, 2, 3, 3)
    deeper[0, 1, 0, 0], deeper[0, 0, 2, 2], deeper[1, 0, 1, 1] = 4.0, -2.0, -1.0
    grid = channel_filter_grid(deeper, count=2, channels=2)
    assert grid[0, 4] == 1.0 and grid[2, 2] == 0.25 and grid[1, 1] == 0.5  # filter 0: +4, -2, 0
    assert grid[5, 1] == 0.0  # filter 1's -1 is its largest magnitude


def test_filters_panel_shows_first_and_deeper_layer(tmp_path):
    net = tiny_random(0)
    result = Filters(count=4, channels=4).run(Context(features=net))
    assert list(result.summary["layers"]) == ["conv1", "conv2"]
    assert result.summary["layers"]["conv2"]["shape"] == [16, 8, 3, 3]
    # The panel shows this network's kernels, not some other picture.
    first, deeper = (tile.image for tile in result.rows[0])
    np.testing.assert_allclose(first, rgb_filter_grid(net.layer("conv1").weight))
    np.testing.assert_allclose(deeper, channel_filter_grid(net.layer("conv2").weight, 4, 4))
    png, _ = result.save(tmp_path / "filters.png")
    assert png.stat().st_size > 1000


def test_a_first_layer_that_is_not_rgb_is_refused():
    net = Network(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 3)), Affine(1.0, (0,) * 3, (1,) * 3),
                  source="two-convs")
    with pytest.raises(ValueError, match="not RGB"):
        Filters(first="1").run(Context(features=net))
    assert tiny_random(0).layer("conv1").weight.shape[1] == 3
