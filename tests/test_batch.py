"""``styletrans batch`` on a local Ray with 2 CPUs: same names and pixels as ``styletrans
stylize``, corrupt files reported without stopping the job, re-runs skip what exists,
manifests and URIs. A tiny random network and tiny generated photos keep it quick; one
Ray instance serves the whole module (starting Ray costs seconds)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styletrans.cli import main
from styletrans.export import export_onnx
from styletrans.inference.batch import BatchError, _glob_regex, connect, read_manifest
from styletrans.inference.planning import expand_inputs, plan_outputs
from styletrans.models.transformer import TransformerConfig, TransformerNet
from tests.conftest import make_photo

ray = pytest.importorskip("ray", reason="the batch command needs `pip install 'styletrans[ray]'`")

pytestmark = pytest.mark.slow  # Ray start-up and actors: ~30 s for the module on 2 busy cores


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(base_channels=8, residual_blocks=1)).eval()
    return export_onnx(net, tmp_path_factory.mktemp("model") / "tiny.onnx", metadata={"style_name": "tiny"})


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 photos in two sizes and two formats (4 in a sub-folder) and 2 corrupt files."""
    root = tmp_path_factory.mktemp("photos")
    (root / "nested").mkdir()
    for i in range(40):
        folder = root / "nested" if i < 4 else root
        size = (32, 24) if i % 3 else (24, 32)
        make_photo(*size, seed=i).save(folder / f"img{i:02d}.{'png' if i % 2 else 'jpg'}")
    (root / "notes.jpg").write_text("not an image")
    good = (root / "img05.png").read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 3])
    return root


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> object:
    """The CI setting: a local Ray with 2 CPUs, shared by every test here."""
    connect(None, num_cpus=2)
    yield
    ray.shutdown()


def batch(*args: str) -> int:
    return main(["batch", "--quiet", *args])


def report(path: Path) -> dict:
    return json.loads(path.read_text())


def test_40_photos_and_2_corrupt_files_then_a_rerun_skips_them_all(model: Path, photos: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert batch(str(photos), "-m", str(model), "-o", str(out), "--report", str(tmp_path / "r1.json")) == 1
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    # The names `styletrans stylize` gives: NAME_STYLE.EXT, sub-folders kept, no temporary files left.
    expected = sorted(job.output.as_posix() for job in plan_outputs(expand_inputs([str(photos)])[0], Path(), "tiny",
                                                                    "same")
                      if job.source.name not in ("notes.jpg", "truncated.png"))
    assert written == expected and len(written) == 40
    assert "nested/img00_tiny.jpg" in written and "nested/img01_tiny.png" in written and "img39_tiny.png" in written
    first = report(tmp_path / "r1.json")
    assert (first["written"], first["skipped"], first["failed"]) == (40, 0, 2)
    assert set(first["failures"]) == {str(photos / "notes.jpg"), str(photos / "truncated.png")}
    assert "not a readable image" in first["failures"][str(photos / "notes.jpg")]
    assert first["images_per_second"] > 0 and first["actors"] == 2
    assert len(first["per_worker"]) == 2 and min(first["per_worker"].values()) >= 8  # both actors worked
    text = capsys.readouterr()
    assert "stylized 40 image(s)" in text.out and "2 failed" in text.out
    assert f"failed: {photos / 'truncated.png'}" in text.err

    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert batch(str(photos), "-m", str(model), "-o", str(out), "--report", str(tmp_path / "r2.json")) == 1
    second = report(tmp_path / "r2.json")
    assert (second["written"], second["skipped"], second["failed"]) == (0, 40, 2)  # corrupt files fail again
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes  # nothing rewritten


def test_a_stopped_job_continues_and_overwrite_redoes_everything(model: Path, photos: Path, tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    for p in sorted(photos.glob("img*"))[:10]:
        (good / p.name).write_bytes(p.read_bytes())
    out = good / "styled"  # inside the input folder: its results must not become inputs
    assert batch(str(good), "-m", str(model), "-o", str(out)) == 0
    outputs = sorted(out.iterdir())
    # A killed job: some outputs missing, and the temporary file of an interrupted write left behind.
    for p in outputs[:4]:
        p.unlink()
    (out / f".{outputs[0].name}.abc123.tmp.jpg").write_bytes(b"partial")
    kept = {p: p.stat().st_mtime_ns for p in outputs[4:]}
    assert batch(str(good), "-m", str(model), "-o", str(out), "--report", str(tmp_path / "r.json")) == 0
    assert (report(tmp_path / "r.json")["written"], report(tmp_path / "r.json")["skipped"]) == (4, 6)
    assert all(p.is_file() for p in outputs) and {p: p.stat().st_mtime_ns for p in outputs[4:]} == kept

    assert batch(str(good), "-m", str(model), "-o", str(out), "--overwrite", "--report", str(tmp_path / "r.json")) == 0
    assert report(tmp_path / "r.json")["written"] == 10
    assert all(p.stat().st_mtime_ns != kept[p] for p in outputs[4:])


def test_pixels_match_styletrans_stylize(model: Path, photos: Path, tmp_path: Path) -> None:
    inputs = [str(photos / "img07.png"), str(photos / "img06.jpg")]
    assert main(["stylize", "--quiet", *inputs, "-m", str(model), "-o", str(tmp_path / "single"),
                 "--size", "40", "--format", "png"]) == 0
    assert batch(*inputs, "-m", str(model), "-o", str(tmp_path / "ray"), "--size", "40", "--format", "png",
                 "--strength", "1") == 0
    for name in ("img07_tiny.png", "img06_tiny.png"):
        a = np.asarray(Image.open(tmp_path / "single" / name), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / "ray" / name), dtype=np.int16)
        assert a.shape == b.shape and max(a.shape[:2]) == 40
        assert np.abs(a - b).max() <= 1  # ONNX Runtime thread counts may differ by a rounding step


def test_manifests_and_uris(model: Path, photos: Path, tmp_path: Path) -> None:
    (photos / "list.txt").write_text("# a comment\nimg10.jpg\nnested/img01.png\n\nmissing.jpg\n")
    (tmp_path / "list.csv").write_text(f"path,label\n{photos / 'img11.png'},x\n")
    out = tmp_path / "out"
    code = batch(f"file://{photos}/img1[2-3].*", "-m", str(model), "-o", f"file://{out}",
                 "--manifest", str(photos / "list.txt"), "--manifest", str(tmp_path / "list.csv"),
                 "--report", str(tmp_path / "r.json"))
    assert code == 1  # missing.jpg
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    # Manifest entries keep their folders; glob and absolute entries give the name alone.
    assert written == ["img10_tiny.jpg", "img11_tiny.png", "img12_tiny.jpg", "img13_tiny.png", "nested/img01_tiny.png"]
    assert list(report(tmp_path / "r.json")["failures"]) == [f"{photos}/missing.jpg"]
    # URI outputs skip what exists too.
    assert batch(f"file://{photos}/img12.jpg", "-m", str(model), "-o", f"file://{out}",
                 "--report", str(tmp_path / "r.json")) == 0
    assert report(tmp_path / "r.json")["skipped"] == 1


def test_bad_input_is_a_clear_error_with_nothing_written(model: Path, photos: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert batch(str(photos), "-m", str(tmp_path / "nope.onnx"), "-o", str(out)) == 2
    assert "no such model file" in capsys.readouterr().err
    assert batch(str(photos), "-m", str(model), "-o", str(out), "--strength", "2") == 2
    assert "--strength" in capsys.readouterr().err
    assert batch("-m", str(model), "-o", str(out)) == 2
    assert "nothing to stylize" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert batch(str(photos), "-m", str(model), "-o", str(tmp_path / "file")) == 2
    assert "not a folder" in capsys.readouterr().err
    assert batch(str(photos), "-m", str(model), "-o", str(out), "--actors", "3") == 2  # the local Ray has 2 CPUs
    assert "needs 3 CPUs; the local Ray has 2" in capsys.readouterr().err
    assert not out.exists()
    assert batch(str(tmp_path / "nowhere"), "-m", str(model), "-o", str(out)) == 1  # reported, not raised
    assert "no such file or folder" in capsys.readouterr().err


def test_glob_and_manifest_parsing(tmp_path: Path) -> None:
    regex = _glob_regex("bucket/photos/**/*.jp[g]")
    assert regex.match("bucket/photos/a.jpg") and regex.match("bucket/photos/x/y/a.jpg")
    assert not regex.match("bucket/photos/a.png") and not re.fullmatch(_glob_regex("b/*.jpg"), "b/c/a.jpg")
    (tmp_path / "m.csv").write_text("file,width\na.jpg,3\nsub/b.png,4\n")
    assert read_manifest(str(tmp_path / "m.csv"), {}) == [f"{tmp_path}/a.jpg", f"{tmp_path}/sub/b.png"]
    (tmp_path / "bare.csv").write_text("a.jpg,3\n/abs/b.png,4\n")
    assert read_manifest(str(tmp_path / "bare.csv"), {}) == [f"{tmp_path}/a.jpg", "/abs/b.png"]
    (tmp_path / "odd.csv").write_text("name,width\nx,3\n")
    with pytest.raises(BatchError, match="no column named path"):
        read_manifest(str(tmp_path / "odd.csv"), {})
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(BatchError, match="lists no files"):
        read_manifest(str(tmp_path / "empty.txt"), {})
    with pytest.raises(BatchError, match=r"\.txt .* or \.csv"):
        read_manifest(str(tmp_path / "m.json"), {})
