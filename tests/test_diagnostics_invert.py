from __future__ import annotations

import pytest
import torch

from styletrans.diagnostics import Context, Invert
from styletrans.diagnostics.networks import load_network


def test_inversion_reconstructs_features_of_each_layer(tmp_path):
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    result = Invert(layers=("relu1_2", "relu2_1"), size=32, iterations=8, scales=1, tv_weight=0.0).run(
        Context(image, features="random", progress=False))
    layers = result.summary["layers"]
    assert [entry["layer"] for entry in layers] == ["relu1_2", "relu2_1"]
    for entry in layers:
        assert entry["relative_feature_error"] < 0.5  # from noise, which is about 1
    assert len(result.rows[0]) == 3
    # The pictures shown are the reconstructions: their features, measured here, match the
    # photo's at their own layer (noise is at about 1), and they are not the photo itself.
    net = load_network("random")
    for entry, tile in zip(layers, result.rows[0][1:], strict=True):
        shown = torch.from_numpy(tile.image).permute(2, 0, 1)[None].float()
        target = net.activations(image[None], [entry["layer"]])[entry["layer"]]
        error = (net.activations(shown, [entry["layer"]])[entry["layer"]] - target).pow(2).mean() / target.pow(2).mean()
        assert float(error) < 0.5
        assert (shown[0] - image).abs().mean() > 0.02
    result.save(tmp_path / "invert.png")


def test_inversion_runs_coarse_to_fine():
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    result = Invert(layers=("relu1_2",), size=32, iterations=2, scales=2).run(
        Context(image, features="random", progress=False))
    assert result.summary["layers"][0]["iterations"] == 2 * 2


def test_inversion_needs_a_vgg():
    with pytest.raises(ValueError, match="VGG"):
        Invert(size=32).run(Context(torch.rand(3, 32, 32), features="tiny-random", progress=False))
