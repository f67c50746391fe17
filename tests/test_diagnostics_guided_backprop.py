from __future__ import annotations

import pytest
import torch

from styletrans.diagnostics import Context, GuidedBackprop
from styletrans.diagnostics.guided_backprop import neuron_gradient, strongest_unit
from styletrans.diagnostics.hooks import hook_count
from styletrans.diagnostics.networks import tiny_random


def test_strongest_unit():
    act = torch.zeros(3, 4, 5)
    act[2, 1, 3] = 5
    act[0, 3, 0] = 1
    assert strongest_unit(act, None) == (2, 1, 3)
    assert strongest_unit(act, 0) == (0, 3, 0)
    inner = torch.zeros(4, 5, dtype=torch.bool)
    inner[2:4, 1:3] = True
    act[1, 2, 2] = 0.5
    assert strongest_unit(act, None, inner) == (1, 2, 2)
    assert strongest_unit(act, None, torch.zeros(4, 5, dtype=torch.bool)) == (2, 1, 3)  # nothing allowed: all
    with pytest.raises(ValueError, match="out of range"):
        strongest_unit(act, 3)


def test_guided_gradient_is_non_negative_behind_positive_first_layer_weights():
    net = tiny_random(2)
    with torch.no_grad():
        net.layer("conv1").weight.abs_()
    image = torch.rand(3, 32, 32)
    act = net.activations(image[None], ["relu2"])["relu2"][0]
    unit = strongest_unit(act, None)
    guided = neuron_gradient(net, image, "relu2", unit, guided=True)
    plain = neuron_gradient(net, image, "relu2", unit, guided=False)
    assert (guided >= 0).all() and guided.abs().sum() > 0
    assert (plain < 0).any()
    assert hook_count(net) == 0
    # Only the receptive field (8 px around the unit) can have a gradient.
    assert guided[:, : max(0, 2 * unit[1] - 4)].abs().sum() == 0


def test_guided_backprop_panel(tmp_path):
    ctx = Context(torch.rand(3, 32, 32), features="tiny-random", progress=False)
    result = GuidedBackprop(layer="relu2", size=32).run(ctx)
    summary = result.summary
    assert summary["layer"] == "relu2" and summary["activation"] > 0
    assert summary["guided"]["nonzero_fraction"] <= summary["plain"]["nonzero_fraction"] + 1e-9
    result.save(tmp_path / "gbp.png")
