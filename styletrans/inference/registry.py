"""Find a model by path or by name in the model directories."""

from __future__ import annotations

import os
from pathlib import Path

from styletrans.inference.backends import ModelError
from styletrans.weights import cache_dir

MODEL_SUFFIXES = (".onnx", ".ckpt")  # by name, an exported model wins over a checkpoint
REPO_ROOT = Path(__file__).resolve().parents[2]


def default_models_dirs() -> list[Path]:
    """``./models``, the checkout's ``models/``, then ``~/.cache/styletrans/models``."""
    dirs = [Path("models"), REPO_ROOT / "models", cache_dir() / "models"]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in {u.resolve() for u in unique}:
            unique.append(d)
    return unique


def list_models(dirs: list[Path]) -> dict[str, Path]:
    """``{name: file}`` for the models in ``dirs`` (earlier directories win)."""
    found: dict[str, Path] = {}
    for directory in dirs:
        for suffix in MODEL_SUFFIXES:
            for path in sorted(directory.glob(f"*{suffix}")) if directory.is_dir() else []:
                found.setdefault(path.name[: -len(suffix)], path)
    return found


def resolve_model(spec: str | os.PathLike, models_dir: str | os.PathLike | None = None) -> Path:
    """``spec`` as a path if it is a file, else the model of that name in the model directories."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    dirs = [Path(models_dir).expanduser()] if models_dir else default_models_dirs()
    models = list_models(dirs)
    if str(spec) in models:
        return models[str(spec)]
    where = ", ".join(str(d) for d in dirs)
    known = ", ".join(sorted(models)) or "none"
    raise ModelError(f"{spec}: no such model file, and no model of that name in {where} (models there: {known})")
