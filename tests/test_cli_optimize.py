"""`styletrans optimize` and `styletrans weights` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from styletrans.cli import main
from styletrans.images import load_image

FAST = ["--size", "32", "--iterations", "3", "--loss-network", "random", "--quiet"]


def test_optimize_writes_image_and_loss_curve(photo_dir: Path, style_image: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out" / "result.png"
    assert main(["optimize", "--content", str(photo_dir / "photo0.png"), "--style", str(style_image),
                 "--output", str(out), *FAST]) == 0
    assert load_image(out).shape == (3, 24, 32)
    report = json.loads(out.with_suffix(".json").read_text())
    assert len(report["history"]) == 3 and report["settings"]["loss_network"] == "random"
    assert "wrote" in capsys.readouterr().out


def test_optimize_refuses_to_overwrite_before_doing_work(photo_dir: Path, style_image: Path, tmp_path: Path,
                                                         capsys) -> None:
    out = tmp_path / "result.png"
    out.write_bytes(b"precious")
    code = main(["optimize", "--content", str(photo_dir / "photo0.png"), "--style", str(style_image),
                 "--output", str(out), *FAST])
    assert code == 2 and "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious" and not out.with_suffix(".json").exists()
    assert main(["optimize", "--content", str(photo_dir / "photo0.png"), "--style", str(style_image),
                 "--output", str(out), "--overwrite", *FAST]) == 0
    assert load_image(out).shape[0] == 3


@pytest.mark.parametrize("mode", ["texture", "invert"])
def test_texture_and_invert_modes(mode: str, photo_dir: Path, style_image: Path, tmp_path: Path) -> None:
    out = tmp_path / f"{mode}.png"
    source = ["--style", str(style_image)] if mode == "texture" else ["--content", str(photo_dir / "photo2.png"),
                                                                       "--layer", "relu2_2"]
    assert main(["optimize", "--mode", mode, *source, "--output", str(out), *FAST]) == 0
    assert out.is_file()


def test_bad_inputs_give_clear_errors_and_no_output(tmp_path: Path, style_image: Path, capsys) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "x.png"
    assert main(["optimize", "--content", str(bad), "--style", str(style_image), "--output", str(out), *FAST]) == 2
    assert "broken.jpg" in capsys.readouterr().err and not out.exists()
    assert main(["optimize", "--mode", "style", "--style", str(style_image), "--output", str(out), *FAST]) == 2
    assert "--content" in capsys.readouterr().err
    assert main(["optimize", "--content", "no_such_bundled_photo", "--style", str(style_image),
                 "--output", str(out), *FAST]) == 2
    assert "chelsea" in capsys.readouterr().err  # lists the bundled names


def test_weights_list(capsys) -> None:
    assert main(["weights", "list"]) == 0
    assert "vgg16-caffe" in capsys.readouterr().out
