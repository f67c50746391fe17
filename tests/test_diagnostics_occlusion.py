from __future__ import annotations

import torch
from torch import nn

from styletrans.diagnostics import Context, Occlusion
from styletrans.diagnostics.networks import Network, tiny_random
from styletrans.diagnostics.occlusion import drops_to_pixels, occlusion_drops, window_starts


class LeftHalfOnly(nn.Module):
    """Zeroes the right half of its input: nothing there can matter downstream."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        out[..., x.shape[-1] // 2:] = 0
        return out


def left_half_classifier() -> Network:
    tiny = tiny_random(1)
    return Network(nn.Sequential(LeftHalfOnly(), tiny.body), tiny.normalize, source="left-half",
                   categories=tiny.categories)


def test_window_starts_cover_the_far_edge():
    assert window_starts(32, 8, 8) == [0, 8, 16, 24]
    assert window_starts(30, 8, 8) == [0, 8, 16, 22]
    assert window_starts(8, 8, 4) == [0]


def test_occluding_an_ignored_region_changes_nothing():
    net = left_half_classifier()
    image = torch.rand(3, 32, 32)
    drops, ys, xs, _ = occlusion_drops(net, image, target=7, patch=8, stride=4, batch_size=5, score="logit")
    assert drops.shape == (len(ys), len(xs)) == (7, 7)
    right = torch.tensor([x >= 16 for x in xs])
    # The network never sees those pixels: no change beyond float rounding (batched vs single pass).
    assert drops[:, right].abs().max() < 1e-6
    assert drops[:, ~right].abs().max() > 1e-3
    heat = drops_to_pixels(drops, ys, xs, 8, (32, 32))
    assert heat[:, 20:].abs().max() < 1e-6


def test_occlusion_panel_reports_the_target(tmp_path):
    ctx = Context(torch.rand(3, 40, 48), classifier=left_half_classifier(), progress=False)
    result = Occlusion(target="goldfish", patch=8, stride=8, size=32).run(ctx)
    assert result.summary["class"] == "goldfish" and result.summary["target"] == 1
    assert len(result.summary["grid"]["drops"]) == 4
    result.save(tmp_path / "occlusion.png")
