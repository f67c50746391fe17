from __future__ import annotations

import numpy as np
import pytest

from styletrans.diagnostics import Context, Embedding
from styletrans.diagnostics.embedding import project


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


def test_tsne_and_pca_keep_clusters_together():
    """Three tight clusters far apart in 32-d: each point's nearest neighbour in both 2-d
    projections is one of its own cluster, and PCA is the top-2 principal axes."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (3, 32))
    features = np.concatenate([c + rng.normal(0, 0.5, (6, 32)) for c in centres])
    cluster = np.repeat(np.arange(3), 6)
    coords = project(features, perplexity=30, seed=0)
    for name in ("tsne", "pca"):
        xy = np.asarray(coords[name])
        distance = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(len(xy)) * 1e9
        assert (cluster[distance.argmin(1)] == cluster).all(), name
    centred = features - features.mean(0)
    axes = np.linalg.svd(centred, full_matrices=False)[2][:2]
    np.testing.assert_allclose(np.abs(coords["pca"]), np.abs(centred @ axes.T), rtol=1e-4, atol=1e-6)


def test_embedding_needs_a_few_images(tmp_path, photo_dir):
    with pytest.raises(ValueError, match="at least 5"):
        Embedding(size=32).run(Context(folder=sorted(photo_dir.glob("*.png"))[:3], classifier="tiny-random",
                                       progress=False))
