"""Hooks are owned by context managers: always removed, even when the pass fails."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from styletrans.diagnostics.hooks import guided_relus, hook_count, record_activations
from styletrans.diagnostics.networks import tiny_random


class Counting(nn.Module):
    """Identity that counts its calls: shows whether a pass went on past a layer."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x


def test_record_activations_returns_outputs_and_removes_hooks():
    net = tiny_random(0)
    image = torch.rand(2, 3, 16, 16)
    with record_activations({"relu1": net.layer("relu1"), "fc": net.layer("fc")}) as rec:
        logits = net(image)
        assert hook_count(net) == 2
    assert hook_count(net) == 0
    assert rec["relu1"].shape == (2, 8, 16, 16)
    assert torch.equal(rec["fc"], logits)


def test_hooks_are_removed_when_the_pass_raises():
    net = tiny_random(0)
    with pytest.raises(RuntimeError), record_activations({"conv1": net.layer("conv1")}):
        net(torch.rand(1, 5, 16, 16))  # wrong channel count
    assert hook_count(net) == 0
    with pytest.raises(RuntimeError), guided_relus(net):
        net(torch.rand(1, 5, 16, 16))
    assert hook_count(net) == 0


def test_stop_cuts_the_pass_after_the_last_wanted_layer():
    tail = Counting()
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), tail)
    with record_activations({"1": net[1]}, stop=True) as rec:
        assert rec.run(net, torch.rand(1, 3, 8, 8)) is None
    assert tail.calls == 0 and rec["1"].shape == (1, 4, 6, 6)
    assert hook_count(net) == 0


def test_guided_gradients_are_non_negative_behind_a_positive_first_layer():
    # With non-negative first-layer weights, guided backprop (only positive gradients
    # through every ReLU) can only produce non-negative input gradients; plain can't promise it.
    net = tiny_random(3)
    with torch.no_grad():
        net.layer("conv1").weight.abs_()
    image = torch.rand(1, 3, 16, 16)

    def gradient(guided: bool) -> torch.Tensor:
        x = image.clone().requires_grad_(True)
        if guided:
            with guided_relus(net) as count:
                assert count == 2
                net.activations(x, ["conv2"])["conv2"][0, :, 4, 4].sum().backward()
        else:
            net.activations(x, ["conv2"])["conv2"][0, :, 4, 4].sum().backward()
        return x.grad

    guided, plain = gradient(True), gradient(False)
    assert (guided >= 0).all() and (guided > 0).any()
    assert (plain < 0).any()
    assert hook_count(net) == 0


def test_guided_relus_refuses_a_model_without_relu_modules():
    with pytest.raises(ValueError, match=r"no nn\.ReLU"), guided_relus(nn.Sequential(nn.Conv2d(3, 3, 1))):
        pass
