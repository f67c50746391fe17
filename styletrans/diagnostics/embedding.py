"""3. ``embedding``: a folder's last-layer features in 2-D, by t-SNE and by PCA,
drawn as a scatter of thumbnails (similar images should land together)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from styletrans.diagnostics.base import Context, Method, Result, option
from styletrans.diagnostics.plot import rgb
from styletrans.images import resize_tensor


def project(features: np.ndarray, perplexity: float, seed: int) -> dict[str, np.ndarray | list[float]]:
    """2-D t-SNE and PCA coordinates of (N, D) features, and PCA's explained variance."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = features.shape[0]
    pca = PCA(n_components=2, random_state=seed).fit(features)
    # t-SNE needs perplexity < N; a common guide is N / 3 for small sets.
    perplexity = float(min(perplexity, max(1.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    return {"tsne": tsne, "pca": pca.transform(features), "pca_variance": pca.explained_variance_ratio_.tolist(),
            "perplexity": perplexity}


@dataclass
class EmbeddingResult(Result):
    """Two scatter plots of thumbnails instead of a tile grid."""

    thumbnails: list[np.ndarray] | None = None
    coordinates: dict[str, np.ndarray] | None = None

    def figure(self):
        from matplotlib.figure import Figure
        from matplotlib.offsetbox import AnnotationBbox, OffsetImage

        fig = Figure(figsize=(14, 7), layout="constrained")
        fig.suptitle(self.title, fontsize=11)
        for ax, (label, xy) in zip(fig.subplots(1, 2), self.coordinates.items(), strict=True):
            ax.set_title(label, fontsize=10)
            ax.scatter(xy[:, 0], xy[:, 1], s=2, alpha=0)  # sets the limits
            ax.set_xticks([])
            ax.set_yticks([])
            for thumb, (x, y) in zip(self.thumbnails, xy, strict=True):
                ax.add_artist(AnnotationBbox(OffsetImage(thumb, zoom=1.0), (x, y), frameon=False, pad=0))
            ax.margins(0.06)
        return fig


@dataclass
class Embedding(Method):
    """t-SNE and PCA of a folder's last-layer features, as thumbnail scatters."""

    name: ClassVar[str] = "embedding"
    summary: ClassVar[str] = "t-SNE and PCA of last-layer features of a folder, as thumbnails"
    needs: ClassVar[tuple[str, ...]] = ("folder",)

    network: str = option("classifier", "which network's features: classifier or features",
                          choices=("features", "classifier"))
    size: int = option(224, "input size (central square) of the network")
    perplexity: float = option(30.0, "t-SNE perplexity (capped at a third of the image count)")
    thumbnail: int = option(28, "thumbnail side in pixels")

    def run(self, context: Context) -> Result:
        net = context.network(self.network)
        paths, images = context.folder_images(self.size)
        if len(paths) < 5:
            raise ValueError(f"an embedding needs at least 5 images, the folder has {len(paths)} readable")
        features = context.batched(net.embed, images, desc="features").numpy()
        coords = project(features, self.perplexity, context.seed)
        thumbs = [rgb(t) for t in resize_tensor(images, (self.thumbnail,) * 2)]
        summary = {
            "network": net.source, "images": len(paths), "feature_dim": features.shape[1],
            "perplexity": coords["perplexity"], "pca_explained_variance": coords["pca_variance"],
            "points": [{"path": str(p), "tsne": coords["tsne"][i].tolist(), "pca": coords["pca"][i].tolist()}
                       for i, p in enumerate(paths)],
            "skipped": context.skipped,
        }
        return EmbeddingResult(self.name, self.settings(), summary, [], f"{len(paths)} images embedded by "
                               f"{net.source} features", thumbnails=thumbs,
                               coordinates={"t-SNE": coords["tsne"], "PCA": coords["pca"]})
