"""``styletrans demo``: every model of a folder on the bundled photos, as one grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import styletrans.inference.registry as registry
from styletrans.assets import bundled
from styletrans.cli import main
from styletrans.commands.demo import CELL, GAP
from styletrans.export import export_onnx
from styletrans.models.transformer import TransformerConfig, TransformerNet


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny random models, named after two bundled paintings."""
    root = tmp_path_factory.mktemp("models")
    for seed, name in enumerate(("great_wave", "the_scream")):
        torch.manual_seed(seed)
        net = TransformerNet(TransformerConfig(base_channels=4, residual_blocks=1)).eval()
        export_onnx(net, root / f"{name}.onnx", metadata={"style_name": name})
    return root


def cell(grid: np.ndarray, row: int, column: int) -> np.ndarray:
    top, left = row * (CELL + GAP), column * (CELL + GAP)
    return grid[top: top + CELL, left: left + CELL].astype(float)


def test_demo_grid_has_the_paintings_on_top_and_one_stylized_row_per_photo(models: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: models)  # the default folder
    output = tmp_path / "demo.jpg"
    assert main(["demo", "--output", str(output), "--size", "64"]) == 0
    photos = len(bundled("photos"))
    with Image.open(output) as image:
        assert image.size == (3 * CELL + 2 * GAP, (photos + 1) * CELL + photos * GAP)
        grid = np.asarray(image.convert("RGB"))
    assert cell(grid, 0, 0).min() > 250  # the blank corner
    # Header: the paintings themselves, differing from each other.
    assert np.abs(cell(grid, 0, 1) - cell(grid, 0, 2)).mean() > 20
    for row in range(1, photos + 1):
        photo, first, second = (cell(grid, row, c) for c in range(3))
        assert np.abs(photo - first).mean() > 5 and np.abs(first - second).mean() > 5  # stylized, per model
    assert main(["demo", "--output", str(output)]) == 2  # never overwrites without --overwrite


def test_demo_without_models_says_how_to_get_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--models-dir", str(tmp_path), "--output", str(tmp_path / "grid.jpg")]) == 2
    err = capsys.readouterr().err
    assert "no .onnx models" in err and "styletrans train" in err
    assert not (tmp_path / "grid.jpg").exists()


def test_demo_skips_a_broken_model_and_names_it(models: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "great_wave.onnx").write_bytes((models / "great_wave.onnx").read_bytes())
    (folder / "broken.onnx").write_bytes(b"not an onnx file")
    output = tmp_path / "grid.jpg"
    assert main(["demo", "--models-dir", str(folder), "--output", str(output), "--size", "48"]) == 0
    captured = capsys.readouterr()
    assert "skipped broken" in captured.err and "1 style(s) (great_wave)" in captured.out
    with Image.open(output) as image:
        assert image.width == 2 * CELL + GAP  # the photo column and the one good model
