"""The shared interface: Context inputs, Result files, and the optimization-engine hooks
the diagnostics added (early stop, gradient-aware regularizers)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from styletrans.atomic import OutputExistsError
from styletrans.diagnostics.base import Context, Result, Tile, center_square
from styletrans.optimize.engine import ClipSmallContributions, PixelImage, optimize_image


def test_result_saves_png_and_json_and_never_overwrites(tmp_path):
    result = Result("demo", {"k": 1}, {"score": np.float32(0.5), "values": torch.arange(3)},
                    [[Tile(np.zeros((8, 8, 3)), "black"), Tile(np.eye(8), "map", cmap="gray")]], "title")
    png, js = result.save(tmp_path / "demo.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(js.read_text()) == {"method": "demo", "settings": {"k": 1}, "score": 0.5, "values": [0, 1, 2]}
    with pytest.raises(OutputExistsError):
        result.save(tmp_path / "demo.png")
    (tmp_path / "demo.png").unlink()
    with pytest.raises(OutputExistsError):  # the JSON alone blocks too: both or neither
        result.save(tmp_path / "demo.png")
    assert not (tmp_path / "demo.png").exists()
    with pytest.raises(ValueError, match="PNG"):
        result.save(tmp_path / "demo.jpg")


def test_context_reads_inputs_and_names_what_is_missing(photo_dir, tmp_path):
    (photo_dir / "broken.jpg").write_bytes(b"not an image")
    ctx = Context(photo_dir / "photo0.png", photo_dir, classifier="tiny-random", features="tiny-random")
    assert ctx.image.shape == (3, 48, 64) and ctx.image_name == "photo0"
    paths, images = ctx.folder_images(32)
    assert images.shape == (len(paths), 3, 32, 32) and len(paths) == 6
    assert len(ctx.skipped) == 1 and "broken.jpg" in ctx.skipped[0]
    with pytest.raises(ValueError, match="--image"):
        _ = Context().image
    with pytest.raises(ValueError, match="--folder"):
        Context().folder_images(32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        Context(folder=tmp_path / "empty").folder_images(32)
    with pytest.raises(ValueError, match="not a classifier"):
        _ = Context(classifier="random").classifier


def test_center_square_crops_the_middle():
    image = torch.zeros(3, 40, 80)
    image[:, :, 20:60] = 1
    square = center_square(image, 20)
    assert square.shape == (3, 20, 20)
    assert torch.allclose(square[..., 1:-1], torch.ones(3, 20, 18))  # edges blend in the antialiasing filter


def test_until_stops_at_the_first_image_that_satisfies_it():
    # Minimizing (x - 1)^2 with SGD from 0: the first evaluated image with x > 0.5 is returned.
    seen = []

    def objective(image):
        seen.append(float(image.detach().mean()))
        return (image - 1).pow(2).sum()

    result = optimize_image(PixelImage(torch.zeros(1, 1, 1, 1)), objective, optimizer="sgd", lr=0.1,
                            iterations=100, progress=False, until=lambda record: record["loss"] < 0.25)
    assert len(result.history) == len(seen) < 100
    assert float(result.image) == pytest.approx(seen[-1]) and seen[-1] > 0.5 > seen[-2]


def test_clip_small_contributions_greys_pixels_that_barely_matter():
    weights = torch.linspace(0, 1, 16).view(1, 1, 4, 4).expand(1, 3, 4, 4)
    start = torch.full((1, 3, 4, 4), 0.8)
    result = optimize_image(PixelImage(start), lambda img: -(img * weights).sum(), optimizer="sgd", lr=0.0,
                            iterations=1, progress=False, regularizers=[ClipSmallContributions(25.0)])
    flat = result.image[0, 0].flatten()
    assert torch.all(flat[:4] == 0.5) and torch.all(flat[4:] == 0.8)  # the 4 lowest-weight pixels


def test_panel_resolution_follows_dpi(tmp_path):
    from PIL import Image

    result = Result("demo", {}, {}, [[Tile(np.zeros((8, 8, 3)))]], tile_inches=2.0)
    sizes = [Image.open(result.save(tmp_path / f"d{dpi}.png", dpi=dpi)[0]).size for dpi in (40, 80)]
    assert sizes[0][0] == 80 and sizes[1][0] == 160  # 2 inches wide


def test_gatys_based_methods_refuse_a_non_vgg_feature_network():
    from styletrans.diagnostics import Invert, Texture

    context = Context(torch.rand(3, 32, 32), features="tiny-random", progress=False)
    for method in (Invert(), Texture()):
        with pytest.raises(ValueError, match=f"{method.name} uses the Gatys optimization path.*tiny-random"):
            method.run(context)
