from __future__ import annotations

import torch

from styletrans.diagnostics import Context, Fooling
from styletrans.diagnostics.fooling import LInfBall, quantized
from styletrans.diagnostics.networks import tiny_random


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
