from __future__ import annotations

import numpy as np
import torch

from styletrans.diagnostics import Context, Saliency
from styletrans.diagnostics.saliency import saliency_map, segment, smoothgrad_map
from tests.test_diagnostics_occlusion import left_half_classifier


def test_saliency_is_zero_where_the_network_does_not_look():
    sal = saliency_map(left_half_classifier(), torch.rand(3, 32, 32), target=3)
    assert sal.shape == (32, 32) and (sal >= 0).all()
    assert torch.all(sal[:, 16:] == 0) and sal[:, :16].max() > 0


def test_smoothgrad_averages_noisy_saliency_maps():
    net, image = left_half_classifier(), torch.rand(3, 32, 32)
    exact = smoothgrad_map(net, image, 3, samples=3, noise=0.0)
    torch.testing.assert_close(exact, saliency_map(net, image, 3))  # no noise: the vanilla map
    noisy = smoothgrad_map(net, image, 3, samples=4, noise=0.2)
    assert torch.all(noisy[:, 16:] == 0) and not torch.allclose(noisy, exact)


def test_threshold_and_grabcut_masks_follow_the_salient_region():
    image = torch.full((3, 48, 48), 0.2)
    image[:, 12:36, 12:36] = torch.tensor([0.9, 0.3, 0.1]).view(3, 1, 1)  # an orange square on grey
    saliency = torch.zeros(48, 48)
    saliency[16:32, 16:32] = 1.0
    for method in ("threshold", "grabcut"):
        mask = segment(image, saliency, method, foreground=90, background=30)
        assert mask[24, 24] and not mask[2, 2], method
    grabcut = segment(image, saliency, "grabcut", 90, 30)
    assert abs(grabcut.mean() - (24 * 24) / (48 * 48)) < 0.1  # GrabCut grows the seed to the square
    assert not segment(image, torch.zeros(48, 48), "grabcut", 90, 30).any()


def test_saliency_panel(tmp_path):
    torch.manual_seed(0)
    net = left_half_classifier()
    ctx = Context(torch.rand(3, 32, 40), classifier=net, progress=False)
    result = Saliency(size=32, segmentation="threshold").run(ctx)
    assert 0 <= result.summary["mask_fraction"] <= 1
    assert np.isfinite(result.summary["saliency_in_mask"]) and np.isfinite(result.summary["smoothgrad_in_mask"])
    assert len(result.rows[0]) == 5  # photo, vanilla, SmoothGrad, overlay, segmentation
    # The maps are the network's: it only sees the left half, so the right half has no
    # saliency, and the segmentation (white where cut away) keeps nothing there.
    vanilla, smooth, cut = (result.rows[0][i].image for i in (1, 2, 4))
    assert vanilla[:, 16:].max() == 0 < vanilla[:, :16].max()
    assert smooth[:, 16:].max() == 0 < smooth[:, :16].max()
    assert (cut[:, 16:] == 1).all() and (cut[:, :16] < 1).any()
    assert result.summary["class"] == net.categories[result.summary["target"]]
    result.save(tmp_path / "saliency.png")
