"""Find a model by path or by name in the model directories.

A name (``starry_night``) is looked up in the user's folders first (``--models-dir``,
``./models``, ``~/.cache/styletrans/models``), then in the styles bundled inside the package
(``styletrans/assets/models``); it only ever resolves to a model file, never to a folder.
A path (anything with a ``/`` or a model suffix) is taken as given.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

from styletrans.inference.backends import ModelError
from styletrans.inference.mixing import MIX_SUFFIX
from styletrans.weights import cache_dir

MODEL_SUFFIXES = (".onnx", ".ckpt")  # by name, an exported model wins over a checkpoint
# A spec ending in one of these is a path, never a name: ``-m x.onnx`` must not find some other ``x``.
MODEL_FILE_SUFFIXES = (".onnx", ".ckpt", ".pt", ".pth")
# ``STYLE.int8.onnx`` beside ``STYLE.onnx`` is the same style quantized (``styletrans quantize``):
# a variant, not a style of its own. ``--precision`` picks: ``auto`` the int8 variant where one
# exists (the bundled ones passed the quality checks in models/README.md), ``int8`` only int8,
# ``float`` never int8.
INT8_SUFFIX = ".int8.onnx"
PRECISIONS = ("auto", "int8", "float")
DEFAULT_PRECISION = "auto"
TRAIN_HINT = ("`styletrans train --config configs/recipes/cpu.yaml --config configs/STYLE.yaml --data PHOTOS` "
              "and `styletrans export --fp16 CKPT -o models/STYLE.onnx`")


def bundled_models_dir() -> Path:
    """The trained styles shipped inside the package (``styletrans/assets/models``), wherever it is installed."""
    return Path(str(files("styletrans") / "assets" / "models"))


def user_models_dirs(models_dir: str | os.PathLike | None = None) -> list[Path]:
    """The user's own model folders, first to last: ``models_dir`` (``--models-dir``) if given,
    ``./models``, then ``~/.cache/styletrans/models`` (where ``styletrans export`` writes)."""
    dirs = [Path(models_dir).expanduser()] if models_dir else []
    return [*dirs, Path("models"), cache_dir() / "models"]


def default_models_dirs(models_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where names are looked up, first to last: the user's folders (``user_models_dirs``), then
    the bundled styles; each folder once."""
    unique: list[Path] = []
    for d in [*user_models_dirs(models_dir), bundled_models_dir()]:
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


def list_models(dirs: Iterable[Path]) -> dict[str, Path]:
    """``{name: file}`` for the models in ``dirs`` (earlier directories win). Only files count:
    a folder named ``x.onnx`` is not a model, and hidden files are half-written exports
    (``atomic_path``). int8 variants are not names of their own; one without its float model is
    listed under the style's name."""
    found: dict[str, Path] = {}
    bundled = bundled_models_dir().resolve()
    for directory in dirs:
        if not directory.is_dir():
            continue
        # The bundled checkpoints are bases to fine-tune from (``bundled_checkpoints``), not styles.
        for suffix in (".onnx",) if directory.resolve() == bundled else MODEL_SUFFIXES:
            for path in sorted(directory.glob(f"*{suffix}")):
                if _is_model_file(path) and not is_int8_variant(path):
                    found.setdefault(path.name[: -len(suffix)], path)
        for path in sorted(directory.glob(f"*{INT8_SUFFIX}")):
            if _is_model_file(path):
                found.setdefault(path.name[: -len(INT8_SUFFIX)], path)
    return found


def bundled_checkpoints() -> dict[str, Path]:
    """``{name: file}`` of the checkpoints shipped in the package (the multi-style base that new
    styles fine-tune from, ``--model.init_from``); not styles to stylize with by name."""
    folder = bundled_models_dir()
    return {p.stem: p for p in sorted(folder.glob("*.ckpt")) if _is_model_file(p)} if folder.is_dir() else {}


def _is_model_file(path: Path) -> bool:
    """A style model file: not hidden (half-written), and not a mixing model (``BASE.mix.onnx``, found
    by ``inference.mixing`` for ``-m "a:0.7,b:0.3"``, never a style of its own)."""
    return path.is_file() and not path.name.startswith(".") and not path.name.endswith(MIX_SUFFIX)


def missing_model_hint(others: Iterable[str] = ()) -> str:
    """What to use instead of a missing model: the bundled models, then ``others`` not among
    them (each name once), and how to train another."""
    bundled = sorted(list_models([bundled_models_dir()]))
    rest = sorted(set(others) - set(bundled))
    listed = [f"bundled models: {', '.join(bundled)}"] if bundled else []
    if rest:
        listed.append(f"{'other ' if bundled else ''}models found: {', '.join(rest)}")
    return f"{'; '.join(listed) or 'no bundled models'}; train {'another' if listed else 'one'} with {TRAIN_HINT}"


def looks_like_path(spec: str) -> bool:
    """A spec with a directory part, a leading ``~`` or a model file suffix is a path, not a name."""
    return ("/" in spec or os.sep in spec or spec.startswith(("~", ".")) or
            Path(spec).suffix.lower() in MODEL_FILE_SUFFIXES)


def describe_dirs(dirs: Iterable[Path]) -> str:
    """``dir (N models)`` for each folder, so an error shows what was looked at and what it held."""
    bundled = bundled_models_dir().resolve()
    parts = []
    for d in dirs:
        held = f"{len(list_models([d]))} models" if d.is_dir() else "no such folder"
        parts.append(f"{d} ({'bundled, ' if d.resolve() == bundled else ''}{held})")
    return ", ".join(parts)


def resolve_model(spec: str | os.PathLike, models_dir: str | os.PathLike | None = None) -> Path:
    """The model file ``spec`` names.

    A path (see ``looks_like_path``) must be a file. A name is looked up in
    ``default_models_dirs(models_dir)``, the user's folders before the bundled styles; when
    a user's model hides one of the same name further down (a bundled one, say), one line on
    stderr says which file is used. A name that is also a file in the working directory is
    ambiguous and an error; a folder of that name is ignored. Errors list the folders looked
    in and the models found.
    """
    text = os.fspath(spec)
    path = Path(text).expanduser()
    dirs = default_models_dirs(models_dir)
    if looks_like_path(text):
        if path.is_file():
            return path
        what = "a folder, not a model file" if path.is_dir() else "no such model file"
        raise ModelError(f"{text}: {what}; models by name are in {describe_dirs(dirs)}; "
                         f"{missing_model_hint(list_models(dirs))}")
    candidates = [(d, found[text]) for d in dirs if text in (found := list_models([d]))]
    if candidates and path.is_file():
        raise ModelError(f"{text}: ambiguous: the file ./{text} in the working directory and the model "
                         f"{candidates[0][1]}; pass ./{text} for the file, or rename it to use the model")
    if not candidates:
        if path.is_file():
            return path  # a model file without a suffix: there is no name for it to hide
        here = f" (./{text} in the working directory is a folder, not a model file)" if path.is_dir() else ""
        raise ModelError(f"{text}: no model of that name{here}; looked in {describe_dirs(dirs)}; "
                         f"{missing_model_hint(list_models(dirs))}")
    used = candidates[0][1]
    if len(candidates) > 1:
        bundled = bundled_models_dir().resolve()
        hidden = ", ".join(f"the bundled {p}" if d.resolve() == bundled else str(p) for d, p in candidates[1:])
        print(f"note: model {text!r}: using {used}, which hides {hidden}", file=sys.stderr)
    return used
