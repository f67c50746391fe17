from __future__ import annotations

import pytest
import torch

from styletrans.diagnostics import Context, Texture
from styletrans.images import ImageError


def test_texture_panel_has_one_texture_per_layer_set_and_the_classic_baseline(tmp_path):
    sample = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    result = Texture(layer_sets=("relu1_1", "relu1_1, relu2_1"), size=32, iterations=20, el_sample=20, el_size=12,
                     el_window=5).run(Context(sample, features="random", progress=False))
    s = result.summary
    assert [entry["layers"] for entry in s["gram"]] == [["relu1_1"], ["relu1_1", "relu2_1"]]
    assert all(entry["final_gram_error"] < 0.1 * entry["initial_gram_error"] for entry in s["gram"])
    assert s["efros_leung"]["sample"] == [20, 20]
    assert len(result.rows[0]) == 1 + 2 + 2
    result.save(tmp_path / "texture.png")


def test_a_missing_sample_is_reported_before_any_work():
    with pytest.raises(ImageError, match="no_such_texture"):
        Texture(sample="no_such_texture.png").run(Context(features="random", progress=False))
