"""Stylize large photo collections on Ray Data, on one machine or a cluster.

    summary = stylize_collection(BatchOptions(inputs=["photos/"], model="starry_night",
                                              output_dir="out/"))

The driver lists the inputs (local paths, globs, folders, manifests, or any URI pyarrow
reads: ``s3://``, ``gs://``, ``hdfs://``, ``file://``), names every output exactly as
``styletrans stylize`` does (its ``expand_inputs`` and ``plan_outputs``), drops the
outputs that already exist (a killed run continues where it stopped) and hands the rest
to Ray Data as rows of ``(source, output)``. ``map_batches`` runs ``StylizeActor`` in a
fixed pool of actors, one ONNX Runtime session each: every actor reads its files,
stylizes same-size images together, and writes each output atomically without
overwriting. A file that cannot be read, decoded, stylized or written becomes a failed
row, never an exception that stops the job; the driver collects the rows into a
``BatchSummary``.

Only the small result rows travel back to the driver: the pixels stay in the actor that
read them, so the driver's memory does not grow with the collection.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from styletrans.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES

if TYPE_CHECKING:
    from styletrans.inference.temporal import TemporalSettings

URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
GLOB_CHARS = set("*?[")
MANIFEST_SUFFIXES = (".txt", ".csv")
MANIFEST_COLUMNS = ("path", "file", "uri", "source", "filename")
# Rows handed to one actor call, in network batches: enough same-size images to fill
# batches, few enough that a killed job loses little work, the progress bar moves
# steadily and no actor idles long at the end while another finishes its last call.
ROWS_PER_CALL_FACTOR = 4
SHOWN_FAILURES = 50  # printed to the terminal; --report lists them all
ACTOR_START_TIMEOUT_S = 600  # a cluster may have to pull an image or scale up first


class BatchError(ValueError):
    """The job cannot start (bad option, no Ray, unusable model or output folder)."""


def is_uri(spec: str) -> bool:
    return bool(URI_RE.match(spec))


# --------------------------------------------------------------------------- locations
@dataclass(frozen=True)
class Location:
    """A file on the local disk (``fs`` is None) or in a pyarrow filesystem (``fs`` is its key)."""

    path: str
    fs: str | None = None
    label: str = ""  # as the user gave it, for the summary


def _filesystem(uri: str, filesystems: dict[str, Any]) -> tuple[str, str]:
    """``(key, path)`` for a URI; the pyarrow filesystem is stored in ``filesystems[key]``.

    The key is the URI's ``scheme://`` (an object store's bucket is part of ``path``), so one
    filesystem object, shipped once to every actor, serves all the inputs and outputs of a scheme.
    """
    from pyarrow import fs as pafs

    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:  # ArrowInvalid is a ValueError
        raise BatchError(f"{uri}: not a URI pyarrow can open ({exc})") from None
    key = uri[: uri.index("://") + 3]
    filesystems.setdefault(key, filesystem)
    return key, path


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``glob`` semantics on '/'-separated paths: ``*`` and ``?`` stay within a folder,
    ``**/`` spans folders (``glob.translate`` arrives only in Python 3.13)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 1)) > i:
            body = pattern[i + 1: end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _expand_uri(spec: str, filesystems: dict[str, Any]) -> tuple[list[tuple[Location, PurePosixPath]], str | None]:
    """Files of one URI (a file, a folder searched recursively, or a glob) with their output-relative paths."""
    from pyarrow import fs as pafs

    from styletrans.inference.video import VIDEO_SUFFIXES

    is_image = lambda p: PurePosixPath(p).suffix.lower() in (*IMAGE_SUFFIXES, *VIDEO_SUFFIXES)  # noqa: E731
    try:
        if GLOB_CHARS & set(spec):
            # pyarrow parses no glob characters: open the folder above the first one, match below it.
            first = min(spec.index(c) for c in GLOB_CHARS if c in spec)
            cut = spec.rfind("/", 0, first)
            key, base = _filesystem(spec[:cut], filesystems)
            base = base.rstrip("/") or "/"
            regex = _glob_regex(f"{base.rstrip('/')}/{spec[cut + 1:]}")
            infos = filesystems[key].get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
            found = sorted(i.path for i in infos if i.type == pafs.FileType.File and regex.match(i.path))
            if not found:
                return [], "pattern matches no files"
            return [(Location(p, key), PurePosixPath(PurePosixPath(p).name)) for p in found], None
        key, path = _filesystem(spec, filesystems)
        filesystem = filesystems[key]
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.File:
            return [(Location(path, key), PurePosixPath(PurePosixPath(path).name))], None
        if info.type == pafs.FileType.Directory:
            infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
            root = path.rstrip("/")
            found = sorted(
                i.path for i in infos
                if i.type == pafs.FileType.File and is_image(i.path) and not PurePosixPath(i.path).name.startswith(".")
            )
            if not found:
                return [], "folder contains no images or videos"
            return [(Location(p, key), PurePosixPath(p[len(root):].lstrip("/"))) for p in found], None
    except OSError as exc:
        return [], f"cannot list ({exc})"
    return [], "no such file or folder"


def read_manifest(spec: str, filesystems: dict[str, Any]) -> list[str]:
    """Entries of a manifest: a ``.txt`` file with one path or URI a line (``#`` comments),
    or a ``.csv`` file whose ``path`` (or ``file``, ``uri``, ``source``) column names them.

    Relative entries are relative to the manifest's own folder, so a manifest and its
    photos can move together (or sit together in a bucket).
    """
    if not spec.lower().endswith(MANIFEST_SUFFIXES):
        raise BatchError(f"manifest {spec}: must be a .txt (one path a line) or .csv (a 'path' column) file")
    if is_uri(spec):
        key, path = _filesystem(spec, filesystems)
        try:
            with filesystems[key].open_input_stream(path) as stream:
                text = stream.read().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise BatchError(f"manifest {spec}: cannot read ({exc})") from None
        parent = spec.rsplit("/", 1)[0]
    else:
        try:
            text = Path(spec).expanduser().read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise BatchError(f"manifest {spec}: cannot read ({exc})") from None
        parent = str(Path(spec).expanduser().parent)
    if spec.lower().endswith(".csv"):
        rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
        header = [c.strip().lower() for c in rows[0]] if rows else []
        column = next((header.index(c) for c in MANIFEST_COLUMNS if c in header), None)
        if column is None:
            if header and Path(header[0]).suffix.lower() not in IMAGE_SUFFIXES and not is_uri(rows[0][0]):
                raise BatchError(f"manifest {spec}: no column named {', '.join(MANIFEST_COLUMNS)} "
                                 f"(found {', '.join(rows[0])}), and the first row is not a path")
            entries = [r[0].strip() for r in rows]  # no header: the first column of every row
        else:
            entries = [r[column].strip() for r in rows[1:] if len(r) > column and r[column].strip()]
    else:
        entries = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise BatchError(f"manifest {spec}: lists no files")
    return [e if is_uri(e) or os.path.isabs(os.path.expanduser(e)) else f"{parent}/{e}" for e in entries]


def expand_sources(inputs: list[str], manifests: list[str],
                   filesystems: dict[str, Any]) -> tuple[list[tuple[Location, PurePosixPath]], dict[str, str]]:
    """Every input file with its output-relative path, and ``{input: why it gave nothing}``.

    Local inputs go through ``styletrans stylize``'s own expansion; manifest entries keep
    their folders (relative to the manifest) in the output, like a folder input does.
    """
    from styletrans.inference.planning import expand_inputs

    files: list[tuple[Location, PurePosixPath]] = []
    errors: dict[str, str] = {}

    def add_local(specs: list[str], keep_tree_under: str | None = None) -> None:
        found, bad = expand_inputs(specs)
        errors.update(bad)
        for path, relative in found:
            rel = PurePosixPath(relative.as_posix())
            if keep_tree_under is not None:
                # An entry outside the manifest's folder (an absolute one) keeps its name alone.
                with contextlib.suppress(ValueError):
                    rel = PurePosixPath(path.resolve().relative_to(Path(keep_tree_under).resolve()).as_posix())
            # Absolute: Ray workers do not share the driver's working directory.
            files.append((Location(str(path.absolute()), label=str(path)), rel))

    def add_uri(found: list[tuple[Location, PurePosixPath]]) -> None:
        files.extend(found)

    for spec in inputs:
        if is_uri(spec):
            found, error = _expand_uri(spec, filesystems)
            add_uri(found)
            if error:
                errors[spec] = error
        else:
            add_local([spec])
    for manifest in manifests:
        base = manifest.rsplit("/", 1)[0] if is_uri(manifest) else str(Path(manifest).expanduser().parent)
        for entry in read_manifest(manifest, filesystems):
            if is_uri(entry):
                found, error = _expand_uri(entry, filesystems)
                if is_uri(manifest) and entry.startswith(base + "/"):
                    root = _filesystem(base, filesystems)[1].rstrip("/")
                    found = [(loc, PurePosixPath(loc.path[len(root):].lstrip("/"))) for loc, _ in found]
                add_uri(found)
                if error:
                    errors[entry] = error
            else:
                add_local([entry], keep_tree_under=base)
    return files, errors


# --------------------------------------------------------------------------- the plan
@dataclass
class Plan:
    """The rows to stylize, the outputs that already exist, and the inputs that gave nothing."""

    rows: list[dict[str, str]]
    skipped: list[str]
    errors: dict[str, str]


def plan_jobs(inputs: list[str], manifests: list[str], output_dir: str, style: str, fmt: str, overwrite: bool,
              filesystems: dict[str, Any]) -> Plan:
    """Name every output as ``styletrans stylize`` does; keep only those still to write."""
    from styletrans.inference.planning import plan_outputs

    out_key, out_root = (_filesystem(output_dir, filesystems) if is_uri(output_dir)
                         else (None, str(Path(output_dir).expanduser().absolute())))
    if out_key is None and Path(out_root).exists() and not Path(out_root).is_dir():
        raise BatchError(f"--output-dir {output_dir}: exists and is not a folder")
    files, errors = expand_sources(inputs, manifests, filesystems)
    if out_key is None:
        # An output folder inside an input folder: its results are not inputs of the next run.
        inside = Path(out_root).resolve()
        files = [(loc, rel) for loc, rel in files
                 if loc.fs is not None or not Path(loc.path).resolve().is_relative_to(inside)]
    # plan_outputs dedupes by resolved path and names by the relative path: give it a
    # stand-in path per source (URIs included) and an empty root, then map back.
    stand_ins: dict[Path, Location] = {}
    pairs: list[tuple[Path, Path]] = []
    for location, relative in files:
        stand_in = Path(location.path) if location.fs is None else Path("/", location.fs.replace("://", ""),
                                                                         location.path.lstrip("/"))
        stand_in = stand_in.resolve() if location.fs is None else stand_in
        stand_ins.setdefault(stand_in, location)
        pairs.append((stand_in, Path(relative)))
    jobs = plan_outputs(pairs, Path(""), style, fmt)
    existing = set() if overwrite else _existing_files(out_key, out_root, filesystems)
    rows, skipped = [], []
    for job in jobs:
        output = f"{out_root.rstrip('/')}/{job.output.as_posix()}"
        source = stand_ins[job.source]
        if output in existing:
            skipped.append(output)
            continue
        rows.append({"source": source.path, "source_fs": source.fs or "", "label": source.label or
                     f"{source.fs}{source.path}", "output": output, "output_fs": out_key or ""})
    return Plan(rows, skipped, errors)


def _existing_files(key: str | None, root: str, filesystems: dict[str, Any]) -> set[str]:
    """Every file under the output folder, listed once (cheaper than a stat per output on
    a network filesystem or an object store)."""
    if key is None:
        base = Path(root)
        found: set[str] = set()
        for folder, _, names in os.walk(base):
            found.update(f"{root.rstrip('/')}/{Path(folder).relative_to(base).as_posix()}/{n}".replace("/./", "/")
                         for n in names)
        return found
    from pyarrow import fs as pafs

    infos = filesystems[key].get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    return {i.path for i in infos if i.type == pafs.FileType.File}


# --------------------------------------------------------------------------- the actor
@dataclass(frozen=True)
class StyleSettings:
    """What every actor needs to stylize and write one image."""

    size: int | None = None
    strength: float = 1.0
    preserve_color: bool = False
    batch_size: int = 4
    overwrite: bool = False
    provider: str = "auto"
    threads: int = 0  # ONNX Runtime threads per actor; 0: as many as the CPUs each actor reserves
    max_pixels: int = DEFAULT_MAX_PIXELS
    temporal: TemporalSettings | None = None  # videos: blend along the flow (``inference.temporal``)


class StylizeActor:
    """One ONNX Runtime session per Ray actor; ``__call__`` stylizes a batch of rows.

    Reads, decodes, stylizes and writes inside the actor and returns one status row per
    input: the pixels never pass through Ray's object store.
    """

    def __init__(self, model: list[Any], settings: StyleSettings, filesystems: dict[str, Any]) -> None:
        import ray
        import torch

        from styletrans.inference import Stylizer

        torch.set_num_threads(max(1, settings.threads))  # pre- and post-processing share the actor's CPUs
        self.settings = settings
        self.filesystems = filesystems
        # The model travels as bytes through the object store, so cluster nodes need no copy
        # of the file. It comes as [ObjectRef]: Ray leaves a nested reference unresolved, so
        # the actor's constructor arguments stay small and a restarted actor fetches it again.
        with tempfile.TemporaryDirectory(prefix="styletrans-batch-") as tmp:
            model_path = Path(tmp) / "model.onnx"
            model_path.write_bytes(ray.get(model[0]))
            # The session holds the model in memory once created: the file can go.
            self.stylizer = Stylizer(model_path, backend="onnx", provider=settings.provider, threads=settings.threads)
        self.worker = f"{os.uname().nodename}:{os.getpid()}"

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from styletrans.images import ImageError, open_rgb, resize_longest
        from styletrans.inference.video import is_video

        started = time.perf_counter()
        s = self.settings
        sources, outputs = list(batch["source"]), list(batch["output"])
        source_fs, output_fs = list(batch["source_fs"]), list(batch["output_fs"])
        errors: list[str] = [""] * len(sources)
        # Same-size images share one network call; sizes come from the decoded (and
        # resized) images, so a mixed collection still batches where it can.
        by_size: dict[tuple[int, int], list[tuple[int, Any]]] = defaultdict(list)
        for i, (source, fs_key) in enumerate(zip(sources, source_fs, strict=True)):
            if is_video(source):  # a whole video in this call: its frames are batched inside
                errors[i] = self._video(source, fs_key, outputs[i], output_fs[i])
                continue
            try:
                data: str | bytes = source if not fs_key else self._read(source, fs_key)
                image = resize_longest(open_rgb(data, name=source, max_pixels=s.max_pixels), s.size)
                by_size[image.size].append((i, image))
            except (ImageError, OSError) as exc:
                errors[i] = str(exc).removeprefix(f"{source}: ")
        for group in by_size.values():
            for start in range(0, len(group), s.batch_size):
                chunk = group[start: start + s.batch_size]
                try:
                    styled = self.stylizer.stylize_batch([image for _, image in chunk], strength=s.strength,
                                                         preserve_color=s.preserve_color)
                except (RuntimeError, ValueError, MemoryError) as exc:
                    for i, _ in chunk:
                        errors[i] = f"stylizing failed: {exc}"
                    continue
                for (i, _), image in zip(chunk, styled, strict=True):
                    try:
                        self._write(image, outputs[i], output_fs[i])
                    except (OSError, ValueError) as exc:  # OutputExistsError is an OSError
                        errors[i] = str(exc)
        seconds = (time.perf_counter() - started) / max(1, len(sources))
        return {"label": list(batch["label"]), "output": [f"{k}{p}" for k, p in zip(output_fs, outputs, strict=True)],
                "error": errors, "worker": [self.worker] * len(sources), "seconds": [seconds] * len(sources)}

    def _video(self, source: str, source_fs: str, output: str, output_fs: str) -> str:
        """Stylize one video as ``styletrans stylize`` does; the error message, or "" if it worked.
        A video in an object store is copied to a local temporary file first, and its result back."""
        from styletrans.atomic import OutputExistsError
        from styletrans.inference.video import VideoError, stylize_video

        s = self.settings
        with tempfile.TemporaryDirectory(prefix="styletrans-video-") as tmp:
            try:
                local_source = source
                if source_fs:
                    local_source = os.path.join(tmp, "source" + PurePosixPath(source).suffix)
                    Path(local_source).write_bytes(self._read(source, source_fs))
                local_output = os.path.join(tmp, "output" + PurePosixPath(output).suffix) if output_fs else output
                if output_fs and not s.overwrite and self._exists(output, output_fs):
                    raise OutputExistsError(Path(output))
                stylize_video(self.stylizer, local_source, local_output, size=s.size, strength=s.strength,
                              preserve_color=s.preserve_color, batch_size=s.batch_size, overwrite=s.overwrite,
                              progress=False, temporal=s.temporal)
                if output_fs:
                    self._put(Path(local_output).read_bytes(), output, output_fs)
            except (VideoError, RuntimeError, ValueError, OSError) as exc:  # OutputExistsError is an OSError
                return str(exc).removeprefix(f"{local_source}: ").removeprefix(f"{source}: ")
        return ""

    def _exists(self, path: str, fs_key: str) -> bool:
        from pyarrow import fs as pafs

        return self.filesystems[fs_key].get_file_info(path).type != pafs.FileType.NotFound

    def _read(self, path: str, fs_key: str) -> bytes:
        with self.filesystems[fs_key].open_input_stream(path) as stream:
            return stream.read()

    def _write(self, image: Any, path: str, fs_key: str) -> None:
        from styletrans.atomic import OutputExistsError
        from styletrans.images import encode_image, save_image

        if not fs_key:
            save_image(image, path, overwrite=self.settings.overwrite)  # atomic, no overwrite: as `stylize`
            return
        if not self.settings.overwrite and self._exists(path, fs_key):
            raise OutputExistsError(Path(path))
        self._put(encode_image(image, PurePosixPath(path).suffix.lstrip(".") or "png"), path, fs_key)

    def _put(self, data: bytes, path: str, fs_key: str) -> None:
        """Object stores have no rename-into-place: write a hidden temporary object, then move it
        (the final object appears whole or not at all)."""
        from pyarrow import fs as pafs

        filesystem = self.filesystems[fs_key]
        parent, name = path.rsplit("/", 1) if "/" in path else ("", path)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        filesystem.create_dir(parent, recursive=True)
        try:
            with filesystem.open_output_stream(tmp) as stream:
                stream.write(data)
            filesystem.move(tmp, path)
        finally:
            if filesystem.get_file_info(tmp).type != pafs.FileType.NotFound:
                filesystem.delete_file(tmp)


# --------------------------------------------------------------------------- the job
@dataclass
class BatchOptions:
    """One batch job. ``address``: None starts a local Ray (``num_cpus`` CPUs, default all),
    ``auto`` joins the cluster this machine belongs to, ``HOST:PORT`` or ``ray://HOST:PORT``
    joins that one (``RAY_ADDRESS`` is honoured when ``address`` is None)."""

    inputs: list[str]
    model: str
    output_dir: str
    manifests: list[str] = field(default_factory=list)
    models_dir: str | None = None
    precision: str = "auto"
    fmt: str = "same"
    settings: StyleSettings = field(default_factory=StyleSettings)
    address: str | None = None
    num_cpus: int | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    progress: bool = True


@dataclass
class BatchSummary:
    """What a batch job did: counts, failures by input, time and throughput."""

    total: int = 0
    written: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    actors: int = 0
    per_worker: dict[str, int] = field(default_factory=dict)
    actor_seconds_per_image: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "written": self.written, "skipped": self.skipped, "failed": len(self.failed),
                "seconds": round(self.seconds, 3), "images_per_second": round(self.images_per_second, 3),
                "actors": self.actors, "per_worker": self.per_worker,
                "actor_seconds_per_image": round(self.actor_seconds_per_image, 4), "failures": self.failed}


def model_bytes_and_style(model: str, models_dir: str | None, precision: str = "auto") -> tuple[bytes, str]:
    """The model as ONNX bytes (a ``.ckpt`` is exported once, here, not in every actor),
    checked by loading it once in the driver, and its style name for output names.
    ``precision`` picks the int8 variant as ``styletrans stylize --precision`` does. A mix
    (``"a:0.7,b:0.3"``, ``inference.mixing``) is its base's mixing model with the weights bound in."""
    from styletrans.inference import Stylizer, resolve_model
    from styletrans.inference.mixing import is_mix_spec, mix_stylizer
    from styletrans.inference.registry import pick_precision

    if is_mix_spec(model):
        stylizer, plan = mix_stylizer(model, models_dir, precision=precision, provider="cpu", threads=1)
        return plan.model_bytes(), stylizer.style_name
    path = pick_precision(resolve_model(model, models_dir), precision)
    with tempfile.TemporaryDirectory() as tmp:
        if path.suffix.lower() == ".onnx":
            onnx_path = path
        else:
            from styletrans.export import export_onnx
            from styletrans.models.checkpoint import load_transformer

            net, metadata = load_transformer(path)
            onnx_path = export_onnx(net, Path(tmp) / "model.onnx", metadata=metadata)
        stylizer = Stylizer(onnx_path, backend="onnx", provider="cpu", threads=1)
        return onnx_path.read_bytes(), stylizer.style_name


def connect(address: str | None, num_cpus: int | None) -> bool:
    """Start or join Ray; True if this call started it (and so should shut it down)."""
    try:
        import ray
    except ImportError:
        raise BatchError("Ray is not installed: pip install 'styletrans[ray]'") from None
    if ray.is_initialized():
        return False
    import logging

    quiet = {"logging_level": logging.ERROR, "include_dashboard": False, "log_to_driver": True}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        # A fresh local Ray, even if `ray start` left one running here: without an address
        # the job is a laptop run, sized by --num-cpus.
        ray.init(address="local", num_cpus=num_cpus, **quiet)
    else:
        if num_cpus is not None:
            raise BatchError("--num-cpus sizes a local Ray; a cluster brings its own CPUs (use --actors)")
        ray.init(address=address, **quiet)
    return True


def stylize_collection(options: BatchOptions) -> BatchSummary:
    """Run one batch job (see the module docstring); failures are in the summary, not raised."""
    from styletrans.inference.stylizer import check_options

    s = options.settings
    try:
        check_options(strength=s.strength, size=s.size, batch_size=s.batch_size)
    except ValueError as exc:
        raise BatchError(str(exc)) from None
    if options.actors is not None and options.actors < 1:
        raise BatchError(f"--actors must be at least 1, got {options.actors}")
    if options.cpus_per_actor <= 0:
        raise BatchError(f"--cpus-per-actor must be positive, got {options.cpus_per_actor}")
    if options.num_cpus is not None and options.num_cpus < 1:
        raise BatchError(f"--num-cpus must be at least 1, got {options.num_cpus}")
    if not options.inputs and not options.manifests:
        raise BatchError("nothing to stylize: give INPUT paths or --manifest")

    model_bytes, style = model_bytes_and_style(options.model, options.models_dir, options.precision)
    from styletrans.inference.planning import safe_name

    filesystems: dict[str, Any] = {}
    plan = plan_jobs(options.inputs, options.manifests, options.output_dir, safe_name(style), options.fmt,
                     s.overwrite, filesystems)
    summary = BatchSummary(total=len(plan.rows) + len(plan.skipped), skipped=len(plan.skipped),
                           failed=dict(plan.errors))
    if not plan.rows:
        return summary

    started_ray = connect(options.address, options.num_cpus)
    try:
        started = time.perf_counter()
        seconds_sum = 0.0
        for row in _run(plan.rows, model_bytes, options, filesystems, summary):
            if row["error"]:
                summary.failed[row["label"]] = row["error"]
            else:
                summary.written += 1
                summary.per_worker[row["worker"]] = summary.per_worker.get(row["worker"], 0) + 1
            seconds_sum += row["seconds"]
        summary.seconds = time.perf_counter() - started
        summary.actor_seconds_per_image = seconds_sum / max(1, len(plan.rows))
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return summary


def _run(rows: list[dict[str, str]], model_bytes: bytes, options: BatchOptions, filesystems: dict[str, Any],
         summary: BatchSummary) -> Iterator[dict[str, Any]]:
    """Stream result rows from the actor pool, with a progress bar."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext
    from tqdm import tqdm

    context = DataContext.get_current()
    context.enable_progress_bars = False  # one bar, ours, counting images rather than blocks
    context.print_on_execution_start = False
    # Start every actor before the first call: otherwise the first one up takes calls the
    # others, still importing, would have shared (a small job ran on one actor of two).
    context.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S
    resources = ray.cluster_resources()
    if options.actors is not None:
        actors = options.actors
    elif options.gpus_per_actor > 0:
        actors = max(1, int(resources.get("GPU", 0) // options.gpus_per_actor))
    else:
        actors = max(1, int(resources.get("CPU", 1) // options.cpus_per_actor))
    if options.address is None and not os.environ.get("RAY_ADDRESS"):
        # A local Ray cannot grow: say so now rather than after ACTOR_START_TIMEOUT_S.
        for kind, per_actor in (("CPU", options.cpus_per_actor), ("GPU", options.gpus_per_actor)):
            if actors * per_actor > resources.get(kind, 0):
                raise BatchError(f"--actors {actors} x {per_actor:g} {kind} each needs {actors * per_actor:g} "
                                 f"{kind}s; the local Ray has {resources.get(kind, 0):g}")
    actors = min(actors, len(rows))
    summary.actors = actors
    import logging

    for name in ("ray.data", "ray"):  # Ray Data's own execution notes; our summary says what happened
        logging.getLogger(name).setLevel(logging.ERROR)
    settings = options.settings
    if settings.threads < 1:  # ONNX Runtime's threads follow the CPUs each actor holds
        settings = dataclasses.replace(settings, threads=max(1, int(options.cpus_per_actor)))
    # Small collections are split so that every actor gets a share; large ones in calls of
    # ROWS_PER_CALL_FACTOR network batches, one block each (rows are short strings: cheap).
    rows_per_call = max(1, min(ROWS_PER_CALL_FACTOR * settings.batch_size, -(-len(rows) // actors)))
    blocks = -(-len(rows) // rows_per_call)
    model_ref = ray.put(model_bytes)
    dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
        StylizeActor,
        fn_constructor_kwargs={"model": [model_ref], "settings": settings, "filesystems": filesystems},
        batch_size=rows_per_call,
        batch_format="numpy",
        # One call in flight per actor, so calls go to whichever actor is free.
        compute=ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1),
        num_cpus=options.cpus_per_actor,
        num_gpus=options.gpus_per_actor or None,
    )
    print(f"{len(rows)} image(s) to stylize on {actors} actor(s) "
          f"({options.cpus_per_actor:g} CPU{f', {options.gpus_per_actor:g} GPU' if options.gpus_per_actor else ''} "
          f"each); {summary.skipped} output(s) already exist", file=sys.stderr)
    with tqdm(total=len(rows), unit="image", disable=not options.progress, file=sys.stderr) as bar:
        try:
            for row in dataset.iter_rows():
                yield row
                bar.update(1)
        except ray.exceptions.GetTimeoutError:
            raise BatchError(
                f"{actors} actor(s) did not start within {ACTOR_START_TIMEOUT_S} s: the cluster lacks the CPUs or "
                f"GPUs they reserve ({options.cpus_per_actor:g} CPU, {options.gpus_per_actor:g} GPU each); "
                "lower --actors or --cpus-per-actor") from None


def write_report(summary: BatchSummary, path: str | os.PathLike, overwrite: bool = True) -> None:
    """The summary as JSON, written atomically."""
    from styletrans.atomic import atomic_path

    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
