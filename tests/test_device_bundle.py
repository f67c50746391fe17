"""The GPU-machine bundle: a truncated fp16 loss network that loads as a ``file:`` source."""

from __future__ import annotations

import pytest
import torch

from styletrans.vgg import VGGFeatures
from styletrans.weights import WeightsError
from train.device_bundle import truncated_vgg


def test_truncated_fp16_weights_give_the_same_features_up_to_their_last_layer(tmp_path):
    path = tmp_path / "vgg.pt"
    truncated_vgg(path, "conv4_3", source="random:0")
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    full = VGGFeatures(["relu2_2", "relu4_3"], weights="random:0")(image)
    small = VGGFeatures(["relu2_2", "relu4_3"], weights=f"file:{path}")(image)
    for layer in full:  # fp16 rounding of the weights only: about 1e-3 relative
        assert (small[layer] - full[layer]).norm() < 1e-2 * full[layer].norm()
    with pytest.raises(WeightsError, match="no weights for conv5_1"):  # deeper layers are gone, and it says so
        VGGFeatures(["relu5_1"], weights=f"file:{path}")
