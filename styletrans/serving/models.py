"""The served models: one ``Stylizer`` (one ONNX Runtime session) per ``.onnx`` file in a folder.

A style's name is its file name without ``.onnx``. Names are checked against a strict
pattern and looked up in a dict, so a URL's style name never reaches the file system.
``reload`` re-reads only files whose size or modification time changed; a file that
fails to load keeps the previous version of that style serving (if any) and is
reported in ``errors``, and is tried again once it changes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from styletrans.inference import ModelError, Stylizer

log = logging.getLogger("styletrans.serving")

STYLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

Signature = tuple[int, int]  # (size, mtime_ns): changes when a file is rewritten


def valid_style_name(name: str) -> bool:
    return STYLE_NAME.fullmatch(name) is not None and ".." not in name


def scan(models_dir: Path, precision: str = "auto") -> dict[str, tuple[Path, Signature]]:
    """``{style: (file, signature)}`` for the model files in ``models_dir`` (not recursive).

    Hidden files are skipped: that is where ``atomic_path`` writes a model while it is
    being exported into the folder. ``STYLE.int8.onnx`` is style ``STYLE`` quantized:
    ``precision`` ``auto`` serves it instead of ``STYLE.onnx``, ``int8`` serves only int8
    files, ``float`` ignores them (see ``inference.registry.PRECISIONS``).
    """
    from styletrans.inference.registry import INT8_SUFFIX

    found: dict[str, tuple[Path, Signature]] = {}
    int8_first = sorted(models_dir.glob("*.onnx"), key=lambda p: (not p.name.endswith(INT8_SUFFIX), p.name))
    for path in int8_first:
        int8 = path.name.endswith(INT8_SUFFIX)
        name = path.name[: -len(INT8_SUFFIX if int8 else ".onnx")]
        if path.name.startswith(".") or not path.is_file() or name in found:
            continue
        if (int8 and precision == "float") or (not int8 and precision == "int8"):
            continue
        if not valid_style_name(name):
            log.warning("skipping %s: style names are letters, digits, '_', '-' and '.'", path.name)
            continue
        stat = path.stat()
        found[name] = (path, (stat.st_size, stat.st_mtime_ns))
    return found


@dataclass(frozen=True)
class ServedModel:
    name: str
    path: Path
    signature: Signature
    stylizer: Stylizer

    def describe(self) -> dict[str, Any]:
        meta = self.stylizer.metadata
        info = {"name": self.name, "file": self.path.name, "provider": self.stylizer.backend.provider}
        for key in ("style_name", "precision", "transformer", "training"):
            if key in meta:
                info[key] = meta[key]
        return info


@dataclass
class ReloadReport:
    loaded: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.loaded or self.removed)


class ModelStore:
    """Thread-safe ``{style: ServedModel}``; readers get an immutable snapshot."""

    def __init__(self, models_dir: Path, load: Callable[[Path], Stylizer], precision: str = "auto") -> None:
        self.models_dir = models_dir
        self.precision = precision
        self._load = load
        self._models: dict[str, ServedModel] = {}
        self._failed: dict[str, tuple[Signature, str]] = {}  # style -> (signature that failed, why)
        self._lock = threading.Lock()  # one reload at a time; lookups need no lock

    @property
    def models(self) -> dict[str, ServedModel]:
        return self._models

    @property
    def errors(self) -> dict[str, str]:
        return {name: why for name, (_, why) in self._failed.items()}

    def get(self, name: str) -> ServedModel | None:
        return self._models.get(name) if valid_style_name(name) else None

    def reload(self) -> ReloadReport:
        """Load new and changed files, drop removed ones; swap the table in one assignment."""
        with self._lock:
            report = ReloadReport()
            if not self.models_dir.is_dir():
                raise ModelError(f"{self.models_dir}: models directory does not exist")
            on_disk = scan(self.models_dir, self.precision)
            models = {name: m for name, m in self._models.items() if name in on_disk}
            report.removed = sorted(set(self._models) - set(on_disk))
            self._failed = {n: f for n, f in self._failed.items() if n in on_disk}
            for name, (path, signature) in on_disk.items():
                current = models.get(name)
                if current is not None and current.signature == signature:
                    continue
                if name in self._failed and self._failed[name][0] == signature:
                    continue  # same bytes that failed before: wait until the file changes
                try:
                    models[name] = ServedModel(name, path, signature, self._load(path))
                    self._failed.pop(name, None)
                    report.loaded.append(name)
                except (ModelError, OSError) as exc:
                    log.error("cannot load style %r: %s", name, exc)
                    why = str(exc).replace(str(path), path.name)  # clients see errors: no server paths
                    self._failed[name] = (signature, why)
                    report.failed[name] = why
            self._models = models
            for name in report.loaded:
                log.info("loaded style %r (%s)", name, models[name].stylizer.describe())
            for name in report.removed:
                log.info("removed style %r", name)
            return report

    def signature(self) -> dict[str, Signature]:
        """What is on disk now (cheap: one ``stat`` per file); compare to decide on a reload."""
        if not self.models_dir.is_dir():
            return {}
        return {name: sig for name, (_, sig) in scan(self.models_dir, self.precision).items()}

    def loaded_signature(self) -> dict[str, Signature]:
        sigs = {name: m.signature for name, m in self._models.items()}
        sigs.update({name: sig for name, (sig, _) in self._failed.items()})
        return sigs
