"""The Stylizer API and ``styletrans stylize`` on images: backends agree, strength,
colour preservation, tiling, thread safety, output naming, no overwrite, error counting."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import styletrans.inference.registry as registry
from styletrans.cli import main
from styletrans.color import rgb_to_yiq
from styletrans.export import FP32_TOLERANCE, export_onnx
from styletrans.images import pil_to_tensor
from styletrans.inference import ModelError, Stylizer, resolve_model
from styletrans.models.checkpoint import write_checkpoint
from styletrans.models.transformer import TransformerConfig, TransformerNet
from tests.conftest import make_photo


@pytest.fixture(scope="module")
def net() -> TransformerNet:
    torch.manual_seed(1)
    return TransformerNet(TransformerConfig(base_channels=8, residual_blocks=1)).eval()


@pytest.fixture(scope="module")
def models(net: TransformerNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory with ``tiny.onnx`` and ``tiny.ckpt``."""
    root = tmp_path_factory.mktemp("models")
    write_checkpoint(root / "tiny.ckpt", net, "tiny")
    export_onnx(net, root / "tiny.onnx", metadata={"style_name": "tiny"})
    return root


@pytest.fixture(scope="module")
def stylizer(models: Path) -> Stylizer:
    return Stylizer(models / "tiny.onnx", provider="cpu")


def test_onnx_and_torch_backends_agree(models: Path, stylizer: Stylizer) -> None:
    torch_stylizer = Stylizer(models / "tiny.ckpt", backend="torch")
    assert stylizer.backend.name == "onnx" and torch_stylizer.backend.name == "torch"
    assert "CPUExecutionProvider" in stylizer.describe()
    image = pil_to_tensor(make_photo(45, 31, seed=3))
    diff = (stylizer.stylize(image) - torch_stylizer.stylize(image)).abs().max()
    assert diff < FP32_TOLERANCE


def test_stylize_keeps_the_kind_and_size(stylizer: Stylizer) -> None:
    photo = make_photo(50, 37)
    out = stylizer.stylize(photo)
    assert isinstance(out, Image.Image) and out.size == (50, 37)
    tiny = stylizer.stylize(torch.rand(3, 3, 2))  # smaller than the network's 9x9 padding allows
    assert tiny.shape == (3, 3, 2)


def test_strength_zero_returns_the_input_and_blends_linearly(stylizer: Stylizer) -> None:
    photo = make_photo(40, 30)
    assert stylizer.stylize(photo, strength=0.0).tobytes() == photo.tobytes()
    x = pil_to_tensor(photo)
    full, half = stylizer.stylize(x), stylizer.stylize(x, strength=0.5)
    torch.testing.assert_close(half, (x + full) / 2, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="strength"):
        stylizer.stylize(x, strength=1.5)


def test_preserve_color_keeps_chrominance(stylizer: Stylizer) -> None:
    x = pil_to_tensor(make_photo(48, 40, seed=5))
    plain, kept = stylizer.stylize(x), stylizer.stylize(x, preserve_color=True)
    chroma = rgb_to_yiq(x)[1:]
    in_gamut = ((kept > 0) & (kept < 1)).all(dim=0)  # elsewhere clamping to [0, 1] moves colours
    assert in_gamut.float().mean() > 0.5
    assert (rgb_to_yiq(kept)[1:] - chroma)[:, in_gamut].abs().max() < 1e-5
    assert (rgb_to_yiq(plain)[1:] - chroma).abs().mean() > 0.03  # the style alone changes colours
    luma = (rgb_to_yiq(kept)[0] - rgb_to_yiq(plain)[0]).abs()
    assert luma[in_gamut].max() < 1e-5  # the luminance is the stylized one


def test_tiling_is_exact_for_a_local_network() -> None:
    """A network without instance norm sees nothing beyond its receptive field, so tiles
    blended with an overlap larger than it must reproduce the single pass."""
    torch.manual_seed(0)
    local = nn.Sequential(nn.Conv2d(3, 3, 5, padding=2, padding_mode="reflect"), nn.Sigmoid())
    stylizer = Stylizer(local)
    photo = make_photo(150, 110, seed=4)
    single, tiled = pil_to_tensor(stylizer.stylize(photo)), pil_to_tensor(stylizer.stylize(photo, tile=48, overlap=16))
    assert (single - tiled).abs().max() <= 1 / 255 + 1e-6  # uint8 rounding only


def test_tiling_stays_close_to_a_single_pass(stylizer: Stylizer) -> None:
    """Each tile normalizes with its own statistics, so tiles differ a little; the overlap
    blending keeps the result close to the single pass and free of seams."""
    photo = make_photo(160, 120, seed=3)
    single = pil_to_tensor(stylizer.stylize(photo))
    tiled = pil_to_tensor(stylizer.stylize(photo, tile=96, overlap=32))
    assert tiled.shape == single.shape
    assert (tiled - single).abs().mean() < 0.06
    # No seam: the step between neighbouring columns at tile boundaries is no larger than elsewhere.
    steps = (tiled[:, :, 1:] - tiled[:, :, :-1]).abs().mean(dim=(0, 1))
    assert steps[[63, 64, 95, 96]].max() < 3 * steps.median() + 0.02


def test_concurrent_calls_match_sequential(stylizer: Stylizer) -> None:
    photos = [make_photo(32 + 4 * i, 30, seed=i) for i in range(6)]
    expected = [stylizer.stylize(p).tobytes() for p in photos]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda p: stylizer.stylize(p).tobytes(), photos * 2))
    assert got == expected * 2


def test_batch_matches_single_images(stylizer: Stylizer) -> None:
    photos = [make_photo(40, 30, seed=i) for i in range(3)]
    batch = [pil_to_tensor(p) for p in stylizer.stylize_batch(photos)]
    for photo, out in zip(photos, batch, strict=True):
        assert (pil_to_tensor(stylizer.stylize(photo)) - out).abs().max() <= 1 / 255 + 1e-6
    with pytest.raises(ValueError, match="one size"):
        stylizer.stylize_batch([make_photo(40, 30), make_photo(30, 40)])


@pytest.fixture
def bundled(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``models`` as the bundled folder, with no ``./models`` and an empty cache: the only place to find names."""
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: models)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STYLETRANS_CACHE", str(tmp_path / "cache"))
    return models


def test_models_by_name(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "none")
    assert resolve_model("tiny", models) == models / "tiny.onnx"  # the export wins over the checkpoint
    with pytest.raises(ModelError, match="models found: tiny; train another with"):
        resolve_model("starry", models)


def test_a_missing_model_names_the_bundled_ones_and_how_to_train(bundled: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ModelError) as error:
        resolve_model("starry")
    message = str(error.value)
    assert "bundled models: tiny; train another with" in message and message.count("tiny") == 1  # listed once
    assert "`styletrans train --config configs/recipes/cpu.yaml --config configs/STYLE.yaml --data PHOTOS`" in message
    assert "`styletrans export" in message
    assert main(["stylize", "--model", "starry", "photo.jpg", "-o", str(tmp_path / "out")]) == 2
    assert "bundled models: tiny" in capsys.readouterr().err


def test_cli_stylizes_with_a_bundled_model_by_name(bundled: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["stylize", "--model", "tiny", str(photo_dir / "photo0.png"), "-o", str(out), "--quiet"]) == 0
    assert _outputs(out) == ["photo0_tiny.png"]


def _outputs(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_cli_stylizes_a_folder(models: Path, photo_dir: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    (photo_dir / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out"
    status = main(["stylize", "--model", "tiny", "--models-dir", str(models), str(photo_dir),
                   "--output-dir", str(out), "--quiet", "--preserve-color", "--strength", "0.8"])
    assert status == 1  # the broken file failed; the others were done
    assert _outputs(out) == ["nested/grey_tiny.jpg", "photo0_tiny.png", "photo1_tiny.jpg", "photo2_tiny.png",
                             "photo3_tiny.jpg", "photo4_tiny.png"]
    for name in _outputs(out):
        assert Image.open(out / name).size == Image.open(photo_dir / name.replace("_tiny", "")).size
    printed = capsys.readouterr()
    assert "broken.jpg" in printed.err
    assert "stylized 6 file(s)" in printed.out and "1 failed" in printed.out


def test_cli_never_overwrites_unless_asked(models: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["stylize", "--model", str(models / "tiny.onnx"), str(photo_dir / "photo0.png"), "--output-dir", str(out),
            "--quiet"]
    assert main(args) == 0
    target = out / "photo0_tiny.png"
    target.write_bytes(b"keep me")
    assert main(args) == 1
    assert target.read_bytes() == b"keep me"
    assert main([*args, "--overwrite"]) == 0
    assert Image.open(target).size == (64, 48)
    assert [p.name for p in out.iterdir()] == ["photo0_tiny.png"]  # no temporary files left


def test_cli_names_never_collide(models: Path, tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        make_photo(36, 28, seed=ord(folder)).save(tmp_path / folder / "same.png")
    make_photo(20, 20).save(tmp_path / "a" / "same.jpg")  # same stem, other format
    out = tmp_path / "out"
    status = main(["stylize", "--model", str(models / "tiny.onnx"), str(tmp_path / "a"), str(tmp_path / "b"),
                   str(tmp_path / "a" / "same.png"), "--output-dir", str(out), "--quiet", "--format", "png",
                   "--size", "24", "--batch-size", "2"])
    assert status == 0
    assert _outputs(out) == ["same_tiny.png", "same_tiny_2.png", "same_tiny_3.png"]  # the repeat is done once
    assert {Image.open(out / name).size for name in _outputs(out)} == {(24, 19), (24, 24)}


def test_cli_globs_tiles_and_missing_inputs(models: Path, photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    status = main(["stylize", "--model", str(models / "tiny.ckpt"), "--backend", "torch",
                   os.path.join(photo_dir, "**", "*.jpg"), str(tmp_path / "missing.png"),
                   "--output-dir", str(out), "--quiet", "--tile", "40", "--overlap", "8"])
    assert status == 1  # missing.png
    assert _outputs(out) == ["grey_tiny.jpg", "photo1_tiny.jpg", "photo3_tiny.jpg"]
