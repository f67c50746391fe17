"""Style mixes: ``"starry_night:0.7,great_wave:0.3"`` -> one style model that blends those styles.

A multi-style network (conditional instance norm) interpolates between its styles by blending their
normalization scales and shifts (Dumoulin et al. 2017, section 5). ``styletrans export CKPT --mix`` writes
that network as one *mixing model*, ``BASE.mix.onnx``, whose second input ``style_weights`` (one weight
per style, in the order of its ``styles`` metadata) does the blend inside the graph. A mix is then:

1. parsed (``parse_mix``): ``NAME:WEIGHT`` pairs separated by commas (a bare ``NAME`` weighs 1), weights
   finite and >= 0, not all 0, normalized to sum 1; every mistake is one ``MixError`` line naming it;
2. planned (``plan_mix``): the first mixing model in the model folders (the usual lookup order: ``--models-dir``,
   ``./models``, ``~/.cache/styletrans/models``, the bundled models) that holds every named style. Only styles
   of one base mix; when no mixing model holds them all, the error says which base each style belongs to (or
   that it is a single-style network, or unknown);
3. bound (``bind_weights``): the weights become a constant of the graph, which leaves an ordinary style model
   (one ``image`` input, the format of every other model) that ``Stylizer``, ``stylize``, ``batch`` and
   ``serve`` run unchanged. ONNX Runtime folds the blend into the scales and shifts when the session starts,
   so a mix runs at the speed of a single style.

Output files of a mix are named after its label, ``NAME70-OTHER30`` (each style's share in percent, in the
order given; styles of weight 0 are left out): ``photo_starry_night70-great_wave30.jpg``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIX_SUFFIX = ".mix.onnx"
MIX_FORMAT = "styletrans-mix/1"
WEIGHTS_INPUT = "style_weights"
STYLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
EXPORT_HINT = "`styletrans export BASE.ckpt --mix -o DIR`"


class MixError(ValueError):
    """A mix that cannot be made (one line naming the cause). ``unknown``: a style no model holds (HTTP 404)."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


@dataclass(frozen=True)
class Mix:
    """Styles and their weights, normalized to sum 1, in the order the spec gave them."""

    weights: tuple[tuple[str, float], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.weights]

    @property
    def label(self) -> str:
        """``starry_night70-great_wave30``: for output file names and logs."""
        return "-".join(f"{name}{round(100 * w)}" for name, w in self.weights if w > 0)

    @property
    def spec(self) -> str:
        """The normalized spec, ``starry_night:0.7,great_wave:0.3``."""
        return ",".join(f"{name}:{w:.4g}" for name, w in self.weights)

    def vector(self, styles: Sequence[str]) -> list[float]:
        """One weight per style of a network, in its order (0 for styles the mix leaves out)."""
        weights = dict(self.weights)
        return [weights.get(name, 0.0) for name in styles]


def is_mix_spec(spec: str | os.PathLike) -> bool:
    """A ``-m`` value that asks for a mix (``a:0.7,b:0.3``, ``a,b``) rather than a model name or path."""
    from styletrans.inference.registry import looks_like_path

    text = os.fspath(spec)
    return (":" in text or "," in text) and not looks_like_path(text)


def parse_mix(spec: str) -> Mix:
    """``"a:0.7,b:0.3"`` -> ``Mix``; a ``MixError`` naming the first problem otherwise."""
    text = spec.strip()
    if not text:
        raise MixError("empty style mix: give NAME:WEIGHT pairs, e.g. starry_night:0.7,great_wave:0.3")
    raw: list[tuple[str, float]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise MixError(f"style mix {spec!r}: an empty entry (two commas in a row, or a trailing comma)")
        name, sep, weight_text = part.partition(":")
        name = name.strip()
        if not name:
            raise MixError(f"style mix {spec!r}: {part!r} has no style name (expected NAME:WEIGHT)")
        if not STYLE_NAME.fullmatch(name) or ".." in name:
            raise MixError(f"style mix {spec!r}: {name!r} is not a style name (letters, digits, '_', '-', '.'; "
                           "a mix names styles, not files)")
        weight = 1.0
        if sep:
            try:
                weight = float(weight_text)
            except ValueError:
                raise MixError(f"style mix {spec!r}: the weight of {name!r} is {weight_text.strip()!r}, "
                               "not a number") from None
        if not math.isfinite(weight):
            raise MixError(f"style mix {spec!r}: the weight of {name!r} is {weight_text.strip()}, not a finite number")
        if weight < 0:
            raise MixError(f"style mix {spec!r}: the weight of {name!r} is negative ({weight:g}); weights are >= 0")
        if name in dict(raw):
            raise MixError(f"style mix {spec!r}: {name!r} is named twice")
        raw.append((name, weight))
    total = sum(w for _, w in raw)
    if total <= 0:
        raise MixError(f"style mix {spec!r}: every weight is 0; give at least one style a positive weight")
    return Mix(tuple((name, w / total) for name, w in raw))


# --------------------------------------------------------------------------- the mixing models on disk
@dataclass(frozen=True)
class MixerInfo:
    """A mixing model file: which base it is and the styles it holds, in the order of its weights."""

    path: Path
    base: str
    styles: tuple[str, ...]
    metadata: dict[str, Any]

    def holds(self, names: Sequence[str]) -> bool:
        return set(names) <= set(self.styles)


def is_mix_model(path: Path) -> bool:
    return path.name.endswith(MIX_SUFFIX)


def read_props(path: str | os.PathLike) -> dict[str, Any]:
    """An ONNX file's ``metadata_props``, JSON values decoded (parsed once per file version)."""
    path = Path(path)
    stat = path.stat()
    return dict(_read_props(str(path.resolve()), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=256)
def _read_props(path: str, size: int, mtime_ns: int) -> dict[str, Any]:
    import onnx

    model = onnx.load(path, load_external_data=False)
    props: dict[str, Any] = {}
    for prop in model.metadata_props:
        try:
            props[prop.key] = json.loads(prop.value)
        except ValueError:
            props[prop.key] = prop.value
    return props


def mixer_info(path: Path) -> MixerInfo | None:
    """The mixing model at ``path``, or None if it is not a readable one."""
    try:
        props = read_props(path)
    except Exception:  # onnx raises its own classes for a corrupt file; such a file is no mixer
        return None
    styles = props.get("styles")
    if props.get("format") != MIX_FORMAT or not isinstance(styles, list) or not styles:
        return None
    return MixerInfo(path, str(props.get("style_name") or path.name[: -len(MIX_SUFFIX)]),
                     tuple(str(s) for s in styles), props)


def find_mixers(dirs: Sequence[Path]) -> list[MixerInfo]:
    """The mixing models (``*.mix.onnx``) in ``dirs``, first folder first; hidden (half-written) and
    unreadable files are skipped."""
    found: list[MixerInfo] = []
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob(f"*{MIX_SUFFIX}")):
            if path.is_file() and not path.name.startswith(".") and (info := mixer_info(path)) is not None:
                found.append(info)
    return found


# --------------------------------------------------------------------------- planning a mix
@dataclass(frozen=True)
class MixPlan:
    """A mix and the mixing model that makes it."""

    mix: Mix
    mixer: MixerInfo

    @property
    def weights(self) -> list[float]:
        return self.mix.vector(self.mixer.styles)

    @property
    def label(self) -> str:
        return self.mix.label

    def metadata(self) -> dict[str, Any]:
        """The bound model's metadata: the mixing model's, as a style model named after the mix."""
        base = {"name": self.mixer.base, "styles": list(self.mixer.styles)}
        return {"style_name": self.label, "mix": dict(self.mix.weights), "base": base}

    def model_bytes(self) -> bytes:
        """An ordinary one-input style model with this mix's weights bound (see ``bind_weights``)."""
        return bind_weights(self.mixer.path, self.weights, self.metadata())


StyleLookup = Callable[[str], "tuple[str, dict[str, Any]] | None"]


def style_base(metadata: dict[str, Any]) -> str | None:
    """The base a style model was baked from (its ``base`` metadata), or None for a single-style network."""
    base = metadata.get("base")
    return str(base["name"]) if isinstance(base, dict) and base.get("name") else None


def plan_mix(mix: Mix, mixers: Sequence[MixerInfo], lookup: StyleLookup, where: str = "the model folders") -> MixPlan:
    """The first of ``mixers`` that holds every style of ``mix``; otherwise a ``MixError`` that says, for
    each style, which base it belongs to. ``lookup(name)``: ``(where the style model is, its metadata)`` for a
    style model of that name, or None; ``where``: the folders searched, for the messages."""
    for mixer in mixers:
        if mixer.holds(mix.names):
            return MixPlan(mix, mixer)
    bases: dict[str, list[str]] = {}  # style -> its bases (a style may be in several mixing models)
    described: dict[str, str] = {}
    for name in mix.names:
        found = lookup(name)
        holders = sorted({m.base for m in mixers if name in m.styles})
        if found is not None:
            model, metadata = found
            base = style_base(metadata)
            if base is None and not holders:
                raise MixError(f"style {name!r} ({model}) is a single-style network, not a style of a multi-style "
                               "base: only styles that share one base can be mixed")
            bases[name] = sorted({*([base] if base else []), *holders})
        elif holders:
            bases[name] = holders
        else:
            mixable = sorted({s for m in mixers for s in m.styles})
            raise MixError(f"unknown style {name!r} in the mix: no style model or mixing model in {where} holds it"
                           f"{'; mixable styles: ' + ', '.join(mixable) if mixable else ''}", unknown=True)
        described[name] = f"{name} (base {' or '.join(bases[name])})"
    shared = set.intersection(*(set(b) for b in bases.values()))
    if not shared:
        raise MixError("styles of different bases cannot be mixed: " + ", ".join(described[n] for n in mix.names))
    base = sorted(shared)[0]
    holders = [m for m in mixers if m.base == base]
    if holders:
        missing = [n for n in mix.names if n not in holders[0].styles]
        raise MixError(f"the mixing model {holders[0].path.name} (base {base!r}) does not hold "
                       f"{', '.join(missing)}; export it again from the base's checkpoint with {EXPORT_HINT}")
    raise MixError(f"no mixing model for base {base!r} ({base}{MIX_SUFFIX}) in {where}; write one with {EXPORT_HINT}")


def resolve_mix(spec: str, models_dir: str | os.PathLike | None = None) -> MixPlan:
    """``-m "a:0.7,b:0.3"`` on the command line: the plan, from the usual model folders."""
    from styletrans.inference.backends import ModelError
    from styletrans.inference.registry import default_models_dirs, describe_dirs, resolve_model

    mix = parse_mix(spec)
    dirs = default_models_dirs(models_dir)

    def lookup(name: str) -> tuple[str, dict[str, Any]] | None:
        try:
            path = resolve_model(name, models_dir)
        except ModelError:
            return None
        try:
            metadata = read_props(path) if path.suffix.lower() == ".onnx" else {}
        except Exception:  # a corrupt file: it is no style of any base
            metadata = {}
        return str(path), metadata

    return plan_mix(mix, find_mixers(dirs), lookup, where=describe_dirs(dirs))


# --------------------------------------------------------------------------- binding the weights
def bind_weights(mixer: str | os.PathLike | bytes, weights: Sequence[float], metadata: dict[str, Any]) -> bytes:
    """A mixing model with its ``style_weights`` input replaced by the constant ``weights``: a style model
    of the ordinary format (one ``image`` input), with ``metadata`` over the mixing model's."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from styletrans.inference.backends import MODEL_FORMAT

    model = onnx.load_from_string(mixer) if isinstance(mixer, bytes) else onnx.load(os.fspath(mixer))
    graph = model.graph
    inputs = [i for i in graph.input if i.name == WEIGHTS_INPUT]
    if not inputs:
        raise MixError(f"{mixer if not isinstance(mixer, bytes) else '<bytes>'}: not a mixing model "
                       f"(no {WEIGHTS_INPUT!r} input)")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if dims != [len(weights)]:
        raise MixError(f"the mixing model takes {dims} style weights, the mix gives {len(weights)}")
    graph.input.remove(inputs[0])
    graph.initializer.append(numpy_helper.from_array(np.asarray(weights, dtype=np.float32), WEIGHTS_INPUT))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in metadata.items():
        props[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    props["format"] = MODEL_FORMAT
    props.pop("styles", None)  # a bound model is one style; ``base`` still lists the network's styles
    props.pop("inputs", None)
    onnx.helper.set_model_props(model, props)
    return model.SerializeToString()


def mix_stylizer(spec: str, models_dir: str | os.PathLike | None = None, *, backend: str = "onnx",
                 precision: str = "auto", provider: str = "auto", threads: int | None = None,
                 memory: str = "arena") -> tuple[Any, MixPlan]:
    """``(Stylizer, plan)`` for a mix given on the command line (``stylize``/``batch -m "a:0.7,b:0.3"``)."""
    from styletrans.inference.stylizer import Stylizer

    if backend != "onnx":
        raise MixError("a style mix runs on ONNX Runtime (its mixing model): leave out --backend torch")
    if precision == "int8":
        raise MixError("a style mix runs in its mixing model's precision (fp32 or fp16; there are no int8 mixing "
                       "models): use --precision auto or float")
    plan = resolve_mix(spec, models_dir)
    return Stylizer(plan.model_bytes(), provider=provider, threads=threads, memory=memory), plan
