"""``styletrans diagnose``: one subcommand per method, options from the settings, and ``all``."""

from __future__ import annotations

import json

import pytest

from styletrans.cli import build_parser, main
from styletrans.diagnostics import METHODS

TINY = ["--classifier", "tiny-random", "--features", "tiny-random", "--device", "cpu", "--quiet"]


def test_every_method_is_a_subcommand_with_its_settings_as_options():
    parser = build_parser()
    assert len(METHODS) == 12
    for name, cls in METHODS.items():
        args = parser.parse_args(["diagnose", name, "--out", "x.png"])
        assert args.method_class is cls
    args = parser.parse_args(["diagnose", "max-patches", "--out", "x.png", "--channels", "1", "2", "--k", "3"])
    assert args.opt_channels == [1, 2] and args.opt_k == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["diagnose", "saliency", "--out", "x.png", "--segmentation", "magic"])


def test_a_method_writes_png_and_json_and_refuses_to_overwrite(tmp_path, capsys):
    photo = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 40, 40)).save(photo)
    out = tmp_path / "occ.png"
    argv = ["diagnose", "occlusion", "--image", str(photo), "--out", str(out), "--size", "32", "--patch", "16",
            "--stride", "16", "--target", "goldfish", *TINY]
    assert main(argv) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["method"] == "occlusion" and data["class"] == "goldfish" and data["settings"]["patch"] == 16
    assert main(argv) == 2 and "already exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


def test_missing_inputs_and_bad_names_are_user_errors(tmp_path, capsys):
    assert main(["diagnose", "saliency", "--out", str(tmp_path / "s.png"), *TINY]) == 2
    assert "needs --image" in capsys.readouterr().err
    assert main(["diagnose", "filters", "--out", str(tmp_path / "f.png"), "--features", "nope"]) == 2
    assert "unknown network" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_all_renders_a_gallery_with_settings_changed_by_set(tmp_path, photo_dir, capsys):
    out = tmp_path / "gallery"
    code = main(["diagnose", "all", "--image", str(photo_dir / "photo0.png"), "--folder", str(photo_dir),
                 "--out", str(out), "--methods", "filters", "neighbors", "saliency", "--set", "filters.count=2",
                 "--set", "neighbors.size=32", "--set", "saliency.segmentation=threshold", *TINY])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["index.html", "index.json"] + [f"{m}.{ext}" for m in ("filters", "neighbors", "saliency")
                                        for ext in ("png", "json")])
    assert "3/3 panels" in capsys.readouterr().out
    assert json.loads((out / "filters.json").read_text())["settings"]["count"] == 2
    assert json.loads((out / "saliency.json").read_text())["settings"]["segmentation"] == "threshold"


@pytest.mark.parametrize(("assignment", "message"), [
    ("filters.nope=1", "no setting 'nope'"),
    ("filters.count", "METHOD.SETTING=VALUE"),
    ("texture.sample=x", "not among the methods run"),
    ("filters.network=other", "must be one of"),
])
def test_bad_set_assignments_are_user_errors(tmp_path, capsys, assignment, message):
    argv = ["diagnose", "all", "--out", str(tmp_path / "g"), "--methods", "filters", "--set", assignment, *TINY]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_layers_lists_names_and_shapes(capsys):
    assert main(["diagnose", "layers", "--network", "tiny-random", "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert "relu2" in out and "(1, 16, 16, 16)" in out
