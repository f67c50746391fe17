"""Look inside the CNNs: twelve visualization methods behind one interface.

Every method is a dataclass of settings with ``run(Context) -> Result``; a ``Result``
saves a PNG panel and a JSON summary. ``METHODS`` maps the CLI names
(``styletrans diagnose <name>``) to the classes, in the order of the lecture.
"""

from __future__ import annotations

from styletrans.diagnostics.base import Context, Method, Result, Tile
from styletrans.diagnostics.class_viz import ClassViz
from styletrans.diagnostics.deepdream import DeepDream
from styletrans.diagnostics.embedding import Embedding
from styletrans.diagnostics.filters import Filters
from styletrans.diagnostics.fooling import Fooling
from styletrans.diagnostics.guided_backprop import GuidedBackprop
from styletrans.diagnostics.invert import Invert
from styletrans.diagnostics.max_patches import MaxPatches
from styletrans.diagnostics.neighbors import Neighbors
from styletrans.diagnostics.networks import Network, load_network
from styletrans.diagnostics.occlusion import Occlusion
from styletrans.diagnostics.saliency import Saliency
from styletrans.diagnostics.texture import Texture

METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (Filters, Neighbors, Embedding, MaxPatches, Occlusion, Saliency, GuidedBackprop,
                ClassViz, Fooling, DeepDream, Invert, Texture)
}

__all__ = ["METHODS", "ClassViz", "Context", "DeepDream", "Embedding", "Filters", "Fooling", "GuidedBackprop",
           "Invert", "MaxPatches", "Method", "Neighbors", "Network", "Occlusion", "Result", "Saliency", "Texture",
           "Tile", "load_network"]
