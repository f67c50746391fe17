"""The served models: one ``Stylizer`` (one ONNX Runtime session) per ``.onnx`` file in a folder
(or in several: the first folder that has a style serves it, ``serve --with-bundled``).

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
from collections.abc import Callable, Sequence
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
    from styletrans.inference.mixing import MIX_SUFFIX
    from styletrans.inference.registry import INT8_SUFFIX

    found: dict[str, tuple[Path, Signature]] = {}
    int8_first = sorted(models_dir.glob("*.onnx"), key=lambda p: (not p.name.endswith(INT8_SUFFIX), p.name))
    for path in int8_first:
        int8 = path.name.endswith(INT8_SUFFIX)
        name = path.name[: -len(INT8_SUFFIX if int8 else ".onnx")]
        if path.name.startswith(".") or not path.is_file() or name in found or path.name.endswith(MIX_SUFFIX):
            continue  # mixing models serve POST /v1/stylize/mix (``serving.mixes``), not a style of their own
        if (int8 and precision == "float") or (not int8 and precision == "int8"):
            continue
        if not valid_style_name(name):
            log.warning("skipping %s: style names are letters, digits, '_', '-' and '.'", path.name)
            continue
        stat = path.stat()
        found[name] = (path, (stat.st_size, stat.st_mtime_ns))
    return found


def scan_all(models_dirs: Sequence[Path], precision: str = "auto"
             ) -> tuple[dict[str, tuple[Path, Signature]], dict[str, tuple[Path, list[Path]]]]:
    """``scan`` over several folders, the first that has a style winning it (missing folders are
    skipped), and ``{style: (file served, [files of that name it hides])}`` for the notes that say so."""
    found: dict[str, tuple[Path, Signature]] = {}
    hidden: dict[str, tuple[Path, list[Path]]] = {}
    for directory in models_dirs:
        if not directory.is_dir():
            continue
        for name, entry in scan(directory, precision).items():
            if name in found:
                hidden.setdefault(name, (found[name][0], []))[1].append(entry[0])
            else:
                found[name] = entry
    return found, hidden


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
    """Thread-safe ``{style: ServedModel}``; readers get an immutable snapshot.

    ``models_dir``: one folder, or several where the first that has a style serves it. The
    first folder must exist; later ones (the bundled styles) are skipped while missing."""

    def __init__(self, models_dir: Path | Sequence[Path], load: Callable[[Path], Stylizer],
                 precision: str = "auto") -> None:
        self.models_dirs = [models_dir] if isinstance(models_dir, Path) else list(models_dir)
        self.models_dir = self.models_dirs[0]
        self.precision = precision
        self._load = load
        self._models: dict[str, ServedModel] = {}
        self._failed: dict[str, tuple[Path, Signature, str]] = {}  # style -> (file, signature that failed, why)
        self._hidden: dict[str, tuple[Path, list[Path]]] = {}
        self._lock = threading.Lock()  # one reload at a time; lookups need no lock

    @property
    def models(self) -> dict[str, ServedModel]:
        return self._models

    @property
    def errors(self) -> dict[str, str]:
        return {name: why for name, (_, _, why) in self._failed.items()}

    @property
    def hidden(self) -> dict[str, tuple[Path, list[Path]]]:
        """``{style: (file served, [files of that name in later folders])}`` as of the last reload."""
        return self._hidden

    def get(self, name: str) -> ServedModel | None:
        return self._models.get(name) if valid_style_name(name) else None

    def reload(self) -> ReloadReport:
        """Load new and changed files, drop removed ones; swap the table in one assignment."""
        with self._lock:
            report = ReloadReport()
            if not self.models_dir.is_dir():
                raise ModelError(f"{self.models_dir}: models directory does not exist")
            on_disk, hidden = scan_all(self.models_dirs, self.precision)
            models = {name: m for name, m in self._models.items() if name in on_disk}
            report.removed = sorted(set(self._models) - set(on_disk))
            self._failed = {n: f for n, f in self._failed.items() if n in on_disk}
            for name, (path, signature) in on_disk.items():
                current = models.get(name)
                if current is not None and (current.path, current.signature) == (path, signature):
                    continue
                if name in self._failed and self._failed[name][:2] == (path, signature):
                    continue  # same bytes that failed before: wait until the file changes
                try:
                    models[name] = ServedModel(name, path, signature, self._load(path))
                    self._failed.pop(name, None)
                    report.loaded.append(name)
                except (ModelError, OSError) as exc:
                    log.error("cannot load style %r: %s", name, exc)
                    why = str(exc).replace(str(path), path.name)  # clients see errors: no server paths
                    self._failed[name] = (path, signature, why)
                    report.failed[name] = why
            for name in hidden.keys() - self._hidden.keys():  # `serve` prints those found at start-up
                served, others = hidden[name]
                log.info("style %r: serving %s, which hides %s", name, served, ", ".join(map(str, others)))
            self._models, self._hidden = models, hidden
            for name in report.loaded:
                log.info("loaded style %r (%s)", name, models[name].stylizer.describe())
            for name in report.removed:
                log.info("removed style %r", name)
            return report

    def signature(self) -> dict[str, tuple[Path, Signature]]:
        """What is on disk now (cheap: one ``stat`` per file); compare to decide on a reload.
        The file is part of it: a style moving to another folder is a change."""
        if not self.models_dir.is_dir():
            return {}
        return scan_all(self.models_dirs, self.precision)[0]

    def loaded_signature(self) -> dict[str, tuple[Path, Signature]]:
        sigs = {name: (m.path, m.signature) for name, m in self._models.items()}
        sigs.update({name: (path, sig) for name, (path, sig, _) in self._failed.items()})
        return sigs
