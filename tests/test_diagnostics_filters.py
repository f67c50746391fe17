from __future__ import annotations

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


def test_filters_panel_shows_first_and_deeper_layer(tmp_path):
    result = Filters(count=4, channels=4).run(Context(features="tiny-random"))
    assert list(result.summary["layers"]) == ["conv1", "conv2"]
    assert result.summary["layers"]["conv2"]["shape"] == [16, 8, 3, 3]
    png, _ = result.save(tmp_path / "filters.png")
    assert png.stat().st_size > 1000


def test_a_first_layer_that_is_not_rgb_is_refused():
    net = Network(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 3)), Affine(1.0, (0,) * 3, (1,) * 3),
                  source="two-convs")
    with pytest.raises(ValueError, match="not RGB"):
        Filters(first="1").run(Context(features=net))
    assert tiny_random(0).layer("conv1").weight.shape[1] == 3
