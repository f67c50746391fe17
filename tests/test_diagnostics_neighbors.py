from __future__ import annotations

import shutil

from styletrans.diagnostics import Context, Neighbors


def test_an_exact_duplicate_is_the_nearest_neighbour_by_pixels_and_features(photo_dir, tmp_path):
    shutil.copy(photo_dir / "photo2.png", photo_dir / "copy_of_photo2.png")
    ctx = Context(photo_dir / "photo2.png", photo_dir, classifier="tiny-random", progress=False)
    result = Neighbors(k=3, queries=2, size=32, pixel_size=8).run(ctx)
    first = result.summary["queries"][0]
    assert first["query"] == "photo2"
    for measure in ("features", "pixels"):
        assert first[measure][0]["distance"] < 1e-4
        assert first[measure][0]["path"].endswith(("photo2.png", "copy_of_photo2.png"))
        assert len(first[measure]) == 3
    # Folder queries never find themselves.
    for entry in result.summary["queries"][1:]:
        assert all(not n["path"].endswith("/" + entry["query"]) for n in entry["features"] + entry["pixels"])
    assert len(result.rows) == 3 and len(result.rows[0]) == 1 + 2 * 3
    result.save(tmp_path / "neighbors.png")
