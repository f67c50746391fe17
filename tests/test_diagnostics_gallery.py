from __future__ import annotations

import json

import pytest
import torch

from styletrans.atomic import OutputExistsError
from styletrans.diagnostics import Context, Filters, MaxPatches, Occlusion
from styletrans.diagnostics.gallery import render_gallery


def test_gallery_writes_every_panel_and_records_failures(tmp_path, photo_dir):
    ctx = Context(torch.rand(3, 32, 32), photo_dir, classifier="tiny-random", features="tiny-random", progress=False)
    methods = {"filters": Filters(count=2, channels=2),
               "max-patches": MaxPatches(layer="relu4_3", size=32),  # no such layer in the tiny net
               "occlusion": Occlusion(patch=16, stride=16, size=32)}
    lines = []
    index = render_gallery(ctx, methods, tmp_path / "out", log=lines.append)
    assert index["failed"] == ["max-patches"]
    assert "relu4_3" in index["methods"][1]["error"]
    for name in ("filters", "occlusion"):
        assert (tmp_path / "out" / f"{name}.png").is_file() and (tmp_path / "out" / f"{name}.json").is_file()
    assert not (tmp_path / "out" / "max-patches.png").exists()
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.count("<img") == 2 and "failed: ValueError" in page
    assert json.loads((tmp_path / "out" / "index.json").read_text())["failed"] == ["max-patches"]
    assert len(lines) == 6
    with pytest.raises(OutputExistsError):
        render_gallery(ctx, methods, tmp_path / "out", log=lines.append)
