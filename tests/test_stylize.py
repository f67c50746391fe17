"""The Stylizer API and ``styletrans stylize`` on images: backends agree, strength,
colour preservation, tiling, thread safety, output naming, no overwrite, error counting."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

import styletrans.inference.registry as registry
import styletrans.inference.stylizer as stylizer_module
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


class _Recorder(nn.Module):
    """Wraps a network and keeps every input it is called with: which tiles were run."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.inputs: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.inputs.append(x.detach().clone())
        return self.inner(x)


def test_tiling_is_exact_for_a_local_network() -> None:
    """A network without instance norm sees nothing beyond its receptive field, so tiles
    blended with an overlap larger than it must reproduce the single pass."""
    torch.manual_seed(0)
    local = _Recorder(nn.Sequential(nn.Conv2d(3, 3, 5, padding=2, padding_mode="reflect"), nn.Sigmoid()))
    stylizer = Stylizer(local)
    photo = make_photo(150, 110, seed=4)
    single = pil_to_tensor(stylizer.stylize(photo))
    local.inputs.clear()
    tiled = pil_to_tensor(stylizer.stylize(photo, tile=48, overlap=16))
    assert (single - tiled).abs().max() <= 1 / 255 + 1e-6  # uint8 rounding only
    # The tiles themselves: columns start at 0, 32, 64, 96 and 102 (the last flush with the
    # right edge), rows at 0, 32 and 62 (flush with the bottom), each one 48 x 48 network call.
    assert [tuple(x.shape) for x in local.inputs] == [(1, 3, 48, 48)] * 15
    source = pil_to_tensor(photo)
    for x, (top, left) in zip(local.inputs, itertools.product([0, 32, 62], [0, 32, 64, 96, 102]), strict=True):
        torch.testing.assert_close(x[0], source[:, top:top + 48, left:left + 48], atol=1e-6, rtol=0)


class _InstanceNormNet(nn.Module):
    """Output depends on the whole input through its statistics, like the style networks,
    and on the position within the input (a left-to-right ramp), so that neighbouring
    tiles disagree clearly where they overlap."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(2 * F.instance_norm(x) + torch.linspace(-1, 1, x.shape[-1]))


def test_tiles_are_cross_faded_linearly_over_the_overlap() -> None:
    """Two tiles side by side (80 px wide, tile 48, overlap 16): outside the overlap each
    tile's own output, across it a linear blend whose share of the right tile rises from
    1/17 to 16/17, as README's 'cross-faded over the overlap' says."""
    photo = make_photo(80, 40, seed=6)
    source = pil_to_tensor(photo)[None]
    net = _InstanceNormNet()
    left, right = net(source[..., :48])[0], net(source[..., 32:])[0]
    assert (left[..., 32:] - right[..., :16]).abs().mean() > 0.1  # the tiles disagree: the blend shows
    tiled = pil_to_tensor(Stylizer(net).stylize(photo, tile=48, overlap=16))
    share = torch.arange(1, 17) / 17  # the right tile's weight at columns 32..47
    expected = torch.cat([left[..., :32], torch.lerp(left[..., 32:], right[..., :16], share), right[..., 16:]], -1)
    assert (tiled - expected).abs().max() <= 0.5 / 255 + 1e-6  # uint8 rounding only


def test_tiling_stays_close_to_a_single_pass(stylizer: Stylizer) -> None:
    """Each tile normalizes with its own statistics, so tiles differ a little; the overlap
    blending keeps the result close to the single pass and free of seams."""
    photo = make_photo(160, 120, seed=3)
    single = pil_to_tensor(stylizer.stylize(photo))
    tiled = pil_to_tensor(stylizer.stylize(photo, tile=96, overlap=32))
    assert tiled.shape == single.shape
    # Measured 0.044 (11 grey levels) here, against 0.30 between the photo and its single
    # pass: this untrained network's instance norm amplifies the tiles' different statistics.
    # Above 0.01 shows the tiles were really used (a single pass gives 0).
    difference = (tiled - single).abs().mean()
    assert 0.01 < difference < 0.05
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


def test_cli_runs_the_users_model_of_a_bundled_name_and_says_so(bundled: Path, photo_dir: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "tiny.onnx").write_bytes((bundled / "tiny.onnx").read_bytes())
    out = tmp_path / "out"
    assert main(["stylize", "-m", "tiny", "--models-dir", str(mine), str(photo_dir / "photo0.png"), "-o", str(out),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"note: model 'tiny': using {mine / 'tiny.onnx'}, which hides the bundled {bundled / 'tiny.onnx'}\n" in err
    assert f"model {mine / 'tiny.onnx'}: " in err and _outputs(out) == ["photo0_tiny.png"]


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


def test_cli_globs_tiles_and_missing_inputs(models: Path, photo_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    tiled: list[tuple[tuple[int, ...], int, int]] = []
    original = stylizer_module.stylize_tiled

    def spy(image: np.ndarray, run: Callable[[Tensor], Tensor], tile: int, overlap: int) -> np.ndarray:
        tiled.append((image.shape, tile, overlap))
        return original(image, run, tile, overlap)

    monkeypatch.setattr(stylizer_module, "stylize_tiled", spy)
    out = tmp_path / "out"
    status = main(["stylize", "--model", str(models / "tiny.ckpt"), "--backend", "torch",
                   os.path.join(photo_dir, "**", "*.jpg"), str(tmp_path / "missing.png"),
                   "--output-dir", str(out), "--quiet", "--tile", "40", "--overlap", "8"])
    assert status == 1  # missing.png
    assert _outputs(out) == ["grey_tiny.jpg", "photo1_tiny.jpg", "photo3_tiny.jpg"]
    # Every photo is larger than 40 px, so each went through the tiles with the options given.
    assert sorted(tiled) == [((64, 48, 3), 40, 8), ((64, 64, 3), 40, 8), ((72, 96, 3), 40, 8)]
