from __future__ import annotations

import pytest
import torch

from styletrans.diagnostics import Context, GuidedBackprop
from styletrans.diagnostics.guided_backprop import neuron_gradient, strongest_unit
from styletrans.diagnostics.hooks import hook_count
from styletrans.diagnostics.networks import Network, tiny_random


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


def _reference_guided_gradient(net: Network, image: torch.Tensor, unit: tuple[int, int, int]) -> torch.Tensor:
    """Guided backprop through tiny_random's conv1-relu1-pool1-conv2-relu2, written out
    layer by layer: at each ReLU the gradient passes where the input was positive and
    the gradient itself is positive (Springenberg et al. 2015)."""
    body = net.body
    x = image[None].clone().requires_grad_(True)
    with torch.enable_grad():
        a1 = body.conv1(net.normalize(x))
        r1 = a1.relu().detach().requires_grad_(True)
        p1 = body.pool1(r1)
        a2 = body.conv2(p1)
        g_a2 = torch.zeros_like(a2)
        g_a2[(0, *unit)] = float(a2[(0, *unit)] > 0)  # relu2 at the unit
        (g_r1,) = torch.autograd.grad(a2, r1, g_a2)  # back through conv2 and the max-pool
        g_a1 = g_r1.clamp(min=0) * (a1 > 0)  # guided relu1
        (g_x,) = torch.autograd.grad(a1, x, g_a1)
    return g_x[0]


def test_guided_gradient_matches_a_hand_written_one_and_is_not_the_plain_gradient():
    net = tiny_random(3)
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1))
    act = net.activations(image[None], ["relu2"])["relu2"][0]
    unit = strongest_unit(act, None)
    guided = neuron_gradient(net, image, "relu2", unit, guided=True)
    plain = neuron_gradient(net, image, "relu2", unit, guided=False)
    torch.testing.assert_close(guided, _reference_guided_gradient(net, image, unit), atol=1e-6, rtol=1e-5)
    # Not the plain gradient, nor the plain gradient's positive part: negative evidence is
    # removed inside the network, not at the image.
    assert not torch.allclose(guided, plain, atol=1e-4)
    assert not torch.allclose(guided, plain.clamp(min=0), atol=1e-4)


def test_guided_backprop_panel(tmp_path):
    ctx = Context(torch.rand(3, 32, 32), features="tiny-random", progress=False)
    result = GuidedBackprop(layer="relu2", size=32).run(ctx)
    summary = result.summary
    assert summary["layer"] == "relu2" and summary["activation"] > 0
    assert summary["guided"]["nonzero_fraction"] <= summary["plain"]["nonzero_fraction"] + 1e-9
    result.save(tmp_path / "gbp.png")
