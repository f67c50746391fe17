"""Losses against hand computations, Gram properties, gradients."""

from __future__ import annotations

import pytest
import torch

from styletrans.losses import PerceptualLoss, content_loss, gram_matrix, style_loss, total_variation
from styletrans.vgg import VGGFeatures


def test_gram_matches_hand_computation() -> None:
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])  # B=1, C=2, H=W=2
    flat = f.reshape(2, 4)
    expected = flat @ flat.T / (2 * 2 * 2)
    assert torch.allclose(gram_matrix(f)[0], expected)
    assert torch.allclose(gram_matrix(f)[0], torch.tensor([[30.0, 6.0], [6.0, 2.0]]) / 8)


def test_gram_is_symmetric_batched_and_scales_quadratically() -> None:
    f = torch.randn(3, 5, 4, 6)
    g = gram_matrix(f)
    assert g.shape == (3, 5, 5)
    assert torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(gram_matrix(2 * f), 4 * g)
    assert torch.allclose(g[1], gram_matrix(f[1:2])[0])
    # Normalized by C*H*W: tiling the feature map spatially leaves it unchanged.
    assert torch.allclose(gram_matrix(f.repeat(1, 1, 2, 2)), g, atol=1e-6)


def test_content_and_style_loss_are_means_of_squares() -> None:
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 2.0)
    assert content_loss(a, b).item() == pytest.approx(4.0)
    g, t = torch.zeros(2, 3, 3), torch.ones(1, 3, 3) * 3
    assert style_loss(g, t).item() == pytest.approx(9.0)  # target broadcasts over the batch


def test_total_variation_by_hand() -> None:
    x = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # vertical stripes: only horizontal differences
    # horizontal diffs: 2 elements of 1 -> mean 1; vertical diffs: 0
    assert total_variation(x).item() == pytest.approx(1.0)
    assert total_variation(torch.full((1, 3, 5, 5), 0.3)).item() == 0.0


def _tiny_loss(**kwargs) -> PerceptualLoss:
    encoder = VGGFeatures(["relu1_2", "relu2_1"], weights="random:1")
    return PerceptualLoss(encoder, content_layers={"relu2_1": 1.0}, style_layers={"relu1_2": 1.0, "relu2_1": 0.5},
                          **kwargs)


def test_perceptual_loss_combines_weighted_terms() -> None:
    torch.manual_seed(0)
    loss = _tiny_loss(content_weight=2.0, style_weight=3.0, tv_weight=0.5)
    style, content, image = torch.rand(1, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    loss.set_style(style)
    terms = loss(image, loss.content_targets(content))
    f_img, f_c, f_s = loss.encoder(image), loss.encoder(content), loss.encoder(style)
    expected_content = 2.0 * content_loss(f_img["relu2_1"], f_c["relu2_1"])
    expected_style = 3.0 * (style_loss(gram_matrix(f_img["relu1_2"]), gram_matrix(f_s["relu1_2"]))
                            + 0.5 * style_loss(gram_matrix(f_img["relu2_1"]), gram_matrix(f_s["relu2_1"])))
    assert torch.allclose(terms.content, expected_content)
    assert torch.allclose(terms.style, expected_style, rtol=1e-5)
    assert torch.allclose(terms.tv, 0.5 * total_variation(image))
    assert torch.allclose(terms.total, terms.content + terms.style + terms.tv)
    assert set(terms.as_floats()) == {"total", "content", "style", "tv", "style/relu1_2", "style/relu2_1"}


def test_relative_style_divides_by_target_energy() -> None:
    torch.manual_seed(0)
    raw, rel = _tiny_loss(tv_weight=0.0), _tiny_loss(tv_weight=0.0, relative_style=True)
    style, image = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    raw.set_style(style)
    rel.set_style(style)
    targets = raw.content_targets(image)
    for name, target in raw.target_grams.items():
        ratio = rel(image, targets).style_layers[name] / raw(image, targets).style_layers[name]
        assert ratio.item() == pytest.approx(1 / target.pow(2).mean().item(), rel=1e-4)


def test_style_loss_is_zero_for_the_style_image_itself() -> None:
    loss = _tiny_loss(tv_weight=0.0, content_weight=0.0)
    style = torch.rand(1, 3, 16, 16)
    loss.set_style(style)
    assert loss(style).style.item() == pytest.approx(0.0, abs=1e-6)


def test_missing_targets_are_clear_errors() -> None:
    loss = _tiny_loss()
    with pytest.raises(ValueError, match="set_style"):
        loss(torch.rand(1, 3, 16, 16), loss.content_targets(torch.rand(1, 3, 16, 16)))
    loss.set_style(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="content targets"):
        loss(torch.rand(1, 3, 16, 16))


def test_gradient_matches_finite_differences_in_float64() -> None:
    torch.manual_seed(0)
    loss = _tiny_loss(tv_weight=0.1).double()
    loss.set_style(torch.rand(1, 3, 8, 8, dtype=torch.float64))
    targets = loss.content_targets(torch.rand(1, 3, 8, 8, dtype=torch.float64))
    image = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: loss(x, targets).total, (image,), eps=1e-6, atol=1e-4, fast_mode=True)


def test_gram_under_bf16_autocast_stays_float32() -> None:
    f = torch.randn(1, 4, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram_matrix(f.bfloat16())
    assert g.dtype == torch.float32
    assert torch.allclose(g, gram_matrix(f), rtol=2e-2, atol=1e-2)
