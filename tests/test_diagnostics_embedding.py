from __future__ import annotations

import numpy as np
import pytest

from styletrans.diagnostics import Context, Embedding


def test_embedding_places_every_image_in_both_projections(photo_dir, tmp_path):
    result = Embedding(size=32, thumbnail=12).run(Context(folder=photo_dir, classifier="tiny-random",
                                                          progress=False))
    points = result.summary["points"]
    assert len(points) == 6 and result.summary["feature_dim"] == 64
    coords = np.array([p["tsne"] + p["pca"] for p in points])
    assert np.isfinite(coords).all() and coords[:, :2].std(0).min() > 0
    assert 0 < sum(result.summary["pca_explained_variance"]) <= 1 + 1e-6
    png, _ = result.save(tmp_path / "embedding.png")
    assert png.stat().st_size > 1000


def test_embedding_needs_a_few_images(tmp_path, photo_dir):
    with pytest.raises(ValueError, match="at least 5"):
        Embedding(size=32).run(Context(folder=sorted(photo_dir.glob("*.png"))[:3], classifier="tiny-random",
                                       progress=False))
