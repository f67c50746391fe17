from __future__ import annotations

import torch

from styletrans.diagnostics import Context, DeepDream
from styletrans.diagnostics.deepdream import octave_sizes


def test_octave_sizes_grow_to_the_image():
    assert octave_sizes((100, 60), 3, 2.0) == [(25, 16), (50, 30), (100, 60)]


def test_deepdream_amplifies_the_layer(tmp_path):
    image = torch.rand(3, 30, 40, generator=torch.Generator().manual_seed(0))
    result = DeepDream(network="features", layer="relu2", size=40, octaves=2, iterations=5, lr=0.02, jitter=2).run(
        Context(image, features="tiny-random", progress=False))
    s = result.summary
    assert s["size"] == [30, 40] and s["steps"] == 10
    assert s["energy_after"] > 1.5 * s["energy_before"]
    result.save(tmp_path / "dream.png")
