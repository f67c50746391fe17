"""The loss network: named layers from one pass, truncation, frozen, autocast, channels_last."""

from __future__ import annotations

import pytest
import torch

from styletrans.vgg import VGGFeatures, available_layers


@pytest.fixture(scope="module")
def vgg() -> VGGFeatures:
    return VGGFeatures(["relu1_2", "relu2_2", "relu3_3"], weights="random:0")


def test_returns_requested_layers_with_expected_shapes(vgg: VGGFeatures) -> None:
    feats = vgg(torch.rand(2, 3, 32, 48))
    assert list(feats) == ["relu1_2", "relu2_2", "relu3_3"]
    assert feats["relu1_2"].shape == (2, 64, 32, 48)
    assert feats["relu2_2"].shape == (2, 128, 16, 24)
    assert feats["relu3_3"].shape == (2, 256, 8, 12)


def test_truncated_after_deepest_requested_layer(vgg: VGGFeatures) -> None:
    names = list(vgg.body._modules)
    assert names[-1] == "relu3_3" and "conv4_1" not in names


def test_one_pass_per_call(vgg: VGGFeatures) -> None:
    calls = []
    handle = vgg.body.conv1_1.register_forward_hook(lambda *a: calls.append(1))
    try:
        vgg(torch.rand(1, 3, 16, 16))
    finally:
        handle.remove()
    assert calls == [1]


def test_frozen_and_stays_in_eval(vgg: VGGFeatures) -> None:
    vgg.train()
    assert not vgg.training and not any(m.training for m in vgg.modules())
    assert not any(p.requires_grad for p in vgg.parameters())
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    vgg(image)["relu2_2"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_channels_last_and_autocast_agree_with_fp32(vgg: VGGFeatures) -> None:
    x = torch.rand(1, 3, 32, 32)
    reference = vgg(x)["relu3_3"]
    cl = vgg.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))["relu3_3"]
    assert torch.allclose(cl, reference, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = vgg(x)["relu3_3"]
    assert low.dtype == torch.bfloat16
    assert (low.float() - reference).abs().mean() < 0.05 * reference.abs().mean()


def test_unknown_layer_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="relu4_2"):
        VGGFeatures(["relu9_9"], weights="random")


def test_layer_names() -> None:
    assert available_layers("vgg16")[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert "relu5_4" in available_layers("vgg19") and "relu5_4" not in available_layers("vgg16")
