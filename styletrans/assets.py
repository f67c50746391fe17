"""Bundled public-domain images (see ``assets/ATTRIBUTION.md``), addressable by name."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from styletrans.images import ImageError

ASSETS = Path(str(files("styletrans") / "assets"))


def bundled(kind: str) -> dict[str, Path]:
    """``{name: path}`` of bundled ``styles`` or ``photos``."""
    return {p.stem: p for p in sorted((ASSETS / kind).glob("*.jpg"))}


def resolve_image(spec: str, kind: str) -> Path:
    """A path as given, or the bundled image of that name (``starry_night``, ``chelsea``)."""
    path = Path(spec).expanduser()
    if path.exists() or path.suffix:
        return path
    named = bundled(kind)
    if spec in named:
        return named[spec]
    raise ImageError(f"{spec}: neither a file nor a bundled {kind[:-1]} (bundled: {', '.join(named)})")
