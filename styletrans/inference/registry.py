"""Find a model by path or by name in the model directories."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from styletrans.inference.backends import ModelError
from styletrans.weights import cache_dir

MODEL_SUFFIXES = (".onnx", ".ckpt")  # by name, an exported model wins over a checkpoint
# ``STYLE.int8.onnx`` beside ``STYLE.onnx`` is the same style quantized (``styletrans quantize``):
# a variant, not a style of its own. ``--precision`` picks: ``auto`` the int8 variant where one
# exists (the bundled ones passed the quality checks in models/README.md), ``int8`` only int8,
# ``float`` never int8.
INT8_SUFFIX = ".int8.onnx"
PRECISIONS = ("auto", "int8", "float")
DEFAULT_PRECISION = "auto"
REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_HINT = ("`styletrans train --config configs/recipes/cpu.yaml --config configs/STYLE.yaml --data PHOTOS` "
              "and `styletrans export --fp16 CKPT -o models/STYLE.onnx`")


def bundled_models_dir() -> Path:
    """The checkout's ``models/``: the trained styles shipped with the project."""
    return REPO_ROOT / "models"


def default_models_dirs() -> list[Path]:
    """``./models``, the checkout's ``models/``, then ``~/.cache/styletrans/models``."""
    dirs = [Path("models"), bundled_models_dir(), cache_dir() / "models"]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in {u.resolve() for u in unique}:
            unique.append(d)
    return unique


def is_int8_variant(path: Path) -> bool:
    return path.name.endswith(INT8_SUFFIX)


def int8_variant(path: Path) -> Path:
    """``x/STYLE.onnx`` -> ``x/STYLE.int8.onnx`` (which may not exist)."""
    return path.with_name(path.name.removesuffix(".onnx") + INT8_SUFFIX)


def pick_precision(path: Path, precision: str = DEFAULT_PRECISION) -> Path:
    """The file to run for model ``path`` at ``precision`` (see ``PRECISIONS``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; one of {', '.join(PRECISIONS)}")
    if path.suffix.lower() != ".onnx" or is_int8_variant(path):
        if precision == "int8" and not is_int8_variant(path):
            raise ModelError(f"{path}: --precision int8 needs an exported .onnx model with an int8 variant")
        if precision == "float" and is_int8_variant(path):
            raise ModelError(f"{path}: an int8 model, and --precision float asks for a float one")
        return path
    variant = int8_variant(path)
    if precision == "int8" and not variant.is_file():
        raise ModelError(f"{path}: no int8 variant ({variant.name}); make one with "
                         f"`styletrans quantize {path} --calibration PHOTOS`, or use --precision float")
    return variant if precision != "float" and variant.is_file() else path


def list_models(dirs: list[Path]) -> dict[str, Path]:
    """``{name: file}`` for the models in ``dirs`` (earlier directories win). int8 variants are
    not names of their own; one without its float model is listed under the style's name."""
    found: dict[str, Path] = {}
    for directory in dirs:
        for suffix in MODEL_SUFFIXES:
            for path in sorted(directory.glob(f"*{suffix}")) if directory.is_dir() else []:
                if is_int8_variant(path):
                    continue
                found.setdefault(path.name[: -len(suffix)], path)
        for path in sorted(directory.glob(f"*{INT8_SUFFIX}")) if directory.is_dir() else []:
            found.setdefault(path.name[: -len(INT8_SUFFIX)], path)
    return found


def missing_model_hint(others: Iterable[str] = ()) -> str:
    """What to use instead of a missing model: the bundled models, then ``others`` not among
    them (each name once), and how to train another."""
    bundled = sorted(list_models([bundled_models_dir()]))
    rest = sorted(set(others) - set(bundled))
    listed = [f"bundled models: {', '.join(bundled)}"] if bundled else []
    if rest:
        listed.append(f"{'other ' if bundled else ''}models found: {', '.join(rest)}")
    return f"{'; '.join(listed) or 'no bundled models'}; train {'another' if listed else 'one'} with {TRAIN_HINT}"


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
    raise ModelError(f"{spec}: no such model file, and no model of that name in {where}; {missing_model_hint(models)}")
