from __future__ import annotations

import torch

from styletrans.diagnostics import ClassViz, Context
from styletrans.diagnostics.networks import Network, tiny_random


def confident_tiny() -> Network:
    """A tiny random 10-class CNN with a sharp softmax (random heads are nearly uniform)."""
    net = tiny_random(0, [f"c{i}" for i in range(10)])
    with torch.no_grad():
        net.layer("fc").weight.mul_(10)
    return net


def test_class_visualization_makes_each_class_the_likely_one(tmp_path):
    net = confident_tiny()
    with torch.no_grad():
        grey = net(torch.full((1, 3, 32, 32), 0.5)).softmax(-1)[0]
    result = ClassViz(classes=("c1", "7"), size=32, octaves=2, iterations=30, lr=0.05, jitter=2, blur_sigma=0.5,
                      blur_every=4).run(
        Context(classifier=net, progress=False))
    found = result.summary["classes"]
    assert [c["class"] for c in found] == ["c1", "c7"]
    for entry in found:
        assert entry["top1"] == entry["class"]
        assert entry["probability"] > max(0.4, 4 * float(grey[entry["target"]]))
    assert len(result.rows[0]) == 2
    result.save(tmp_path / "class.png")


def test_regularizers_follow_the_settings():
    names = [type(r).__name__ for r in ClassViz(blur_sigma=0.0).regularizers()]
    assert names == ["L2", "Jitter", "RandomScale", "GaussianBlur", "ClipSmallValues", "ClipSmallContributions",
                     "Clamp"]
