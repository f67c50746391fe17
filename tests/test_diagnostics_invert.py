from __future__ import annotations

import pytest
import torch

from styletrans.diagnostics import Context, Invert


def test_inversion_reconstructs_features_of_each_layer(tmp_path):
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    result = Invert(layers=("relu1_2", "relu2_1"), size=32, iterations=8, scales=1, tv_weight=0.0).run(
        Context(image, features="random", progress=False))
    layers = result.summary["layers"]
    assert [entry["layer"] for entry in layers] == ["relu1_2", "relu2_1"]
    for entry in layers:
        assert entry["relative_feature_error"] < 0.5  # from noise, which is about 1
    assert len(result.rows[0]) == 3
    result.save(tmp_path / "invert.png")


def test_inversion_runs_coarse_to_fine():
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    result = Invert(layers=("relu1_2",), size=32, iterations=2, scales=2).run(
        Context(image, features="random", progress=False))
    assert result.summary["layers"][0]["iterations"] == 2 * 2


def test_inversion_needs_a_vgg():
    with pytest.raises(ValueError, match="VGG"):
        Invert(size=32).run(Context(torch.rand(3, 32, 32), features="tiny-random", progress=False))
