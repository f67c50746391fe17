"""Which outputs a stylize or batch job writes: inputs (files, folders, globs) expanded to
files, and each given one output name in the output folder, ``NAME_STYLE.EXT``, unique."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

GLOB_CHARS = set("*?[")
OUTPUT_FORMATS = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png", ".webp": ".webp"}


@dataclass
class Job:
    source: Path
    output: Path


def expand_inputs(inputs: list[str]) -> tuple[list[tuple[Path, Path]], dict[str, str]]:
    """``[(file, path relative to the output dir)]`` and ``{input: error}`` for unusable inputs."""
    from styletrans.images import find_images
    from styletrans.inference.video import VIDEO_SUFFIXES

    files: list[tuple[Path, Path]] = []
    errors: dict[str, str] = {}
    for spec in inputs:
        path = Path(spec).expanduser()
        if path.is_dir():
            found = [p for p in find_images(path)] + sorted(
                p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")
            )
            if not found:
                errors[spec] = "folder contains no images or videos"
            files += [(p, p.relative_to(path)) for p in found]
        elif path.is_file():
            files.append((path, Path(path.name)))
        elif GLOB_CHARS & set(spec):
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True) if Path(m).is_file())
            if not matches:
                errors[spec] = "pattern matches no files"
            files += [(m, Path(m.name)) for m in matches]
        else:
            errors[spec] = "no such file or folder"
    return files, errors


def plan_outputs(files: list[tuple[Path, Path]], output_dir: Path, style: str, fmt: str) -> list[Job]:
    """One output per distinct input; names get ``_2``, ``_3``... where two inputs would collide."""
    from styletrans.inference.video import is_video, output_suffix

    jobs: list[Job] = []
    taken: set[Path] = set()
    seen: set[Path] = set()
    for source, relative in files:
        if source.resolve() in seen:
            continue
        seen.add(source.resolve())
        if is_video(source):
            suffix = output_suffix(source)
        elif fmt == "same":
            suffix = OUTPUT_FORMATS.get(source.suffix.lower(), ".png")
        else:
            suffix = f".{fmt}"
        stem = output_dir / relative.parent / f"{relative.stem}_{style}"
        candidate, n = stem.with_name(stem.name + suffix), 1
        while candidate in taken:
            n += 1
            candidate = stem.with_name(f"{stem.name}_{n}{suffix}")
        taken.add(candidate)
        jobs.append(Job(source, candidate))
    return jobs


def safe_name(name: str) -> str:
    """A style name usable in file names."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "styled"
