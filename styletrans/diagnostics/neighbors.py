"""2. ``neighbors``: nearest neighbours by last-layer features versus by raw pixels.

Pixel distance finds images with the same colours and layout; feature distance finds
images of the same kind of thing, which is what the network has learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from styletrans.diagnostics.base import Context, Method, Result, Tile, center_square, option
from styletrans.diagnostics.plot import rgb
from styletrans.images import resize_tensor


def nearest(queries: Tensor, bank: Tensor, k: int, exclude: list[int | None]) -> tuple[Tensor, Tensor]:
    """Indices and L2 distances of the ``k`` nearest rows of ``bank`` for each query row;
    ``exclude[q]`` (the query's own index in the bank, or None) is never returned."""
    distances = torch.cdist(queries, bank)
    for q, own in enumerate(exclude):
        if own is not None:
            distances[q, own] = float("inf")
    values, indices = distances.topk(min(k, bank.shape[0] - 1), largest=False)
    return indices, values


@dataclass
class Neighbors(Method):
    """For each query image, its nearest folder images by features and by pixels."""

    name: ClassVar[str] = "neighbors"
    summary: ClassVar[str] = "nearest neighbours in a folder: last-layer features vs raw pixels"
    needs: ClassVar[tuple[str, ...]] = ("folder",)

    network: str = option("classifier", "which network's features: classifier or features",
                          choices=("features", "classifier"))
    k: int = option(5, "neighbours per query")
    queries: int = option(3, "folder images used as queries (evenly spaced), besides --image")
    size: int = option(224, "input size (central square) of the network")
    pixel_size: int = option(32, "side of the downscaled images compared pixel by pixel")

    def run(self, context: Context) -> Result:
        net = context.network(self.network)
        paths, images = context.folder_images(self.size)
        query_images, query_names, exclude = [], [], []
        if context.has_image:
            query_images.append(center_square(context.image.cpu(), self.size))
            query_names.append(context.image_name)
            exclude.append(None)
        for index in torch.linspace(0, len(paths) - 1, min(self.queries, len(paths))).round().long().unique():
            query_images.append(images[index])
            query_names.append(paths[index].name)
            exclude.append(int(index))
        if not query_images:
            raise ValueError("no queries: pass --image or --queries 1 or more")
        queries = torch.stack(query_images)

        features = context.batched(net.embed, images, desc="features")
        # Folder queries reuse their folder features; only the photo (first, if given) needs a pass.
        query_features = features[[i for i in exclude if i is not None]]
        if context.has_image:
            query_features = torch.cat([context.batched(net.embed, queries[:1], desc="features"), query_features])
        pixels = resize_tensor(images, (self.pixel_size,) * 2).flatten(1)
        query_pixels = resize_tensor(queries, (self.pixel_size,) * 2).flatten(1)
        by_feature = nearest(query_features, features, self.k, exclude)
        by_pixel = nearest(query_pixels, pixels, self.k, exclude)

        rows, found = [], []
        for q, name in enumerate(query_names):
            row = [Tile(rgb(queries[q]), f"query: {name}")]
            entry = {"query": name}
            for label, (indices, distances) in (("features", by_feature), ("pixels", by_pixel)):
                entry[label] = [{"path": str(paths[i]), "distance": float(d)}
                                for i, d in zip(indices[q].tolist(), distances[q].tolist(), strict=True)]
                row += [Tile(rgb(images[i]), f"{label} #{rank + 1}") for rank, i in enumerate(indices[q].tolist())]
            rows.append(row)
            found.append(entry)
        # How often the two measures agree at all: low overlap is the point of the panel.
        overlap = sum(len({n["path"] for n in e["features"]} & {n["path"] for n in e["pixels"]}) for e in found)
        summary = {"network": net.source, "folder_images": len(paths), "feature_dim": features.shape[1],
                   "neighbor_overlap": overlap / max(1, sum(len(e["features"]) for e in found)),
                   "queries": found, "skipped": context.skipped}
        return self.result(summary, rows, f"nearest neighbours: query | {self.k} by {net.source} features | "
                           f"{self.k} by {self.pixel_size}x{self.pixel_size} pixels", tile_inches=1.25)
