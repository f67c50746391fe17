"""``POST /v1/stylize/mix?styles=a:0.7,b:0.3``: style mixes served from the mixing models in the served folders.

A mix is planned as on the command line (``styletrans.inference.mixing``): the first mixing model
(``BASE.mix.onnx``) in the served folders that holds every named style, its weights bound into an ordinary
one-input model. The styles a mix may name are those of the mixing models; the served style models only
help the error messages say which base a style belongs to. Each distinct mix is one ONNX Runtime session,
built on first use and kept in a small LRU (``MIX_CACHE``): repeated requests for a mix batch together, and
a changed mixing model file (its size or modification time) gets new sessions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from styletrans.inference import Stylizer
from styletrans.inference.mixing import MixPlan, find_mixers, parse_mix, plan_mix
from styletrans.serving.models import ModelStore, ServedModel

MIX_CACHE = 16  # sessions kept; a mix beyond them is rebuilt on its next request (tens of ms on a CPU)


class MixStore:
    """``ServedModel`` per mix spec, built with ``load(model_bytes)``; thread-safe."""

    def __init__(self, models_dirs: tuple[Path, ...], styles: ModelStore, load: Callable[[bytes], Stylizer],
                 size: int = MIX_CACHE) -> None:
        self.models_dirs = models_dirs
        self.styles = styles
        self._load = load
        self._size = size
        self._cache: OrderedDict[tuple[Any, ...], ServedModel] = OrderedDict()
        self._lock = threading.Lock()

    def plan(self, spec: str) -> MixPlan:
        """The plan for ``spec``, or a ``MixError`` (``unknown``: a style nobody holds). Messages name
        files, never the server's folders."""
        mix = parse_mix(spec)

        def lookup(name: str) -> tuple[str, dict[str, Any]] | None:
            model = self.styles.get(name)
            return None if model is None else (model.path.name, model.stylizer.metadata)

        return plan_mix(mix, find_mixers(list(self.models_dirs)), lookup, where="the served folders")

    def get(self, spec: str) -> ServedModel:
        """The served mix (building its session on first use; slow: call it from a worker thread)."""
        plan = self.plan(spec)
        stat = plan.mixer.path.stat()
        key = (plan.mixer.path, stat.st_size, stat.st_mtime_ns, tuple(plan.weights))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        # Metrics label batches by the mixing model, not by mix: a label per mix would grow without bound.
        served = ServedModel(f"{plan.mixer.base}.mix", plan.mixer.path, (stat.st_size, stat.st_mtime_ns),
                             self._load(plan.model_bytes()))
        with self._lock:
            served = self._cache.setdefault(key, served)  # a racing request for the same mix keeps one
            self._cache.move_to_end(key)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return served

    def describe(self) -> list[dict[str, Any]]:
        """The mixing models served: base, styles and file, for ``GET /v1/styles``."""
        return [{"base": m.base, "styles": list(m.styles), "file": m.path.name,
                 "precision": m.metadata.get("precision")} for m in find_mixers(list(self.models_dirs))]
