"""The one interface of every diagnostic method.

A method is a dataclass of its settings with one call, ``run(context)``, in the
spirit of Captum's ``attribute()``. The ``Context`` holds what methods look at (the
photo, a folder of images) and the two networks they look with (loaded lazily, so a
method pays only for what it uses). ``run`` returns a ``Result``: panel tiles plus a
JSON-able summary, which ``Result.save`` writes as a PNG and a JSON file.

>>> from styletrans.diagnostics import Occlusion
>>> result = Occlusion(patch=32, stride=16).run(Context(image="chelsea"))  # doctest: +SKIP
>>> result.save("occlusion.png")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from styletrans.assets import resolve_image
from styletrans.atomic import OutputExistsError, atomic_path
from styletrans.diagnostics.networks import Network, load_network
from styletrans.diagnostics.plot import Tile, figure_png, tiles_figure
from styletrans.images import ImageError, find_images, open_rgb, pil_to_tensor, resize_longest, resize_tensor

PHOTO_SIZE = 512  # longest side the photo is read at; methods resize from there


def read_photo(path: str | os.PathLike) -> Tensor:
    """An image as (3, H, W) in [0, 1], shrunk to a longest side of ``PHOTO_SIZE`` if larger."""
    img = open_rgb(path)
    return pil_to_tensor(resize_longest(img, PHOTO_SIZE) if max(img.size) > PHOTO_SIZE else img)


def option(default: Any, help: str, **argparse_kwargs: Any) -> Any:
    """A method setting: its default and its ``--help`` text (the CLI is built from these)."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


def center_square(image: Tensor, size: int) -> Tensor:
    """Shorter side to ``size``, then the central ``size`` x ``size`` crop: the usual
    classifier input. (3, H, W) or (B, 3, H, W)."""
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    resized = resize_tensor(image, (max(size, round(h * scale)), max(size, round(w * scale))))
    top, left = (resized.shape[-2] - size) // 2, (resized.shape[-1] - size) // 2
    return resized[..., top:top + size, left:left + size]


def fit_longest(image: Tensor, size: int) -> Tensor:
    """Resize a (3, H, W) or (B, 3, H, W) image so that its longest side is ``size``."""
    h, w = image.shape[-2:]
    scale = size / max(h, w)
    return resize_tensor(image, (max(1, round(h * scale)), max(1, round(w * scale))))


@dataclass
class Terms:
    """An objective value for ``optimize_image`` with named parts for its history."""

    total: Tensor
    parts: dict[str, float]

    def as_floats(self) -> dict[str, float]:
        return self.parts


@dataclass
class Result:
    """What a method found: panel tiles (rows of ``Tile``) and a JSON-able summary."""

    method: str
    settings: dict[str, Any]
    summary: dict[str, Any]
    rows: list[list[Tile]] = field(default_factory=list)
    title: str = ""
    tile_inches: float = 2.4

    def figure(self):  # -> matplotlib.figure.Figure
        return tiles_figure(self.rows, self.title, self.tile_inches)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "settings": self.settings, **self.summary}

    def save(self, png: str | os.PathLike, json_path: str | os.PathLike | None = None, *,
             overwrite: bool = False, dpi: int = 80) -> tuple[Path, Path]:
        """Write the panel PNG (``dpi`` pixels per inch of panel) and the JSON summary
        (default: beside it) atomically."""
        png = Path(png)
        json_path = Path(json_path) if json_path is not None else png.with_suffix(".json")
        if png.suffix.lower() != ".png":
            raise ValueError(f"{png}: the panel is written as PNG (use a .png name)")
        for path in (png, json_path):  # both or neither
            if path.exists() and not overwrite:
                raise OutputExistsError(path)
        data = figure_png(self.figure(), dpi)
        with atomic_path(png, overwrite=overwrite) as tmp:
            tmp.write_bytes(data)
        with atomic_path(json_path, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=1, default=_jsonable))
        return png, json_path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic | Tensor):
        return value.item() if value.ndim == 0 else value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class Context:
    """The inputs of a diagnostic run and the networks it looks with.

    ``image`` is a path, a bundled photo name (``chelsea``) or a (3, H, W) tensor in
    [0, 1]; ``folder`` a directory or a list of image files. ``classifier`` and
    ``features`` are source names (see ``styletrans.diagnostics.networks``) or
    ``Network`` objects; names are loaded on first use.
    """

    def __init__(self, image: str | os.PathLike | Tensor | None = None,
                 folder: str | os.PathLike | Sequence[Path] | None = None, *,
                 classifier: str | Network = "efficientnet-lite0", features: str | Network = "vgg16-caffe",
                 device: str | torch.device = "cpu", progress: bool = True, max_images: int = 300,
                 seed: int = 0) -> None:
        self._image_spec = image
        self._folder_spec = folder
        self._networks: dict[str, str | Network] = {"classifier": classifier, "features": features}
        self.device = torch.device(device)
        self.progress = progress
        self.max_images = max_images
        self.seed = seed
        self.skipped: list[str] = []  # folder files that could not be read
        self._folder_cache: dict[int, tuple[list[Path], Tensor]] = {}

    # ----------------------------------------------------------------- networks
    def network(self, kind: str) -> Network:
        """``classifier`` or ``features``, loaded and moved to the device once."""
        if kind not in self._networks:
            raise ValueError(f"network must be 'classifier' or 'features', not {kind!r}")
        net = self._networks[kind]
        if isinstance(net, str):
            net = load_network(net)
        net = net.to(self.device)
        self._networks[kind] = net
        return net

    @property
    def classifier(self) -> Network:
        net = self.network("classifier")
        if not net.is_classifier:
            raise ValueError(f"{net.source} is not a classifier (use --classifier efficientnet-lite0)")
        return net

    @property
    def features(self) -> Network:
        return self.network("features")

    def vgg_features(self, method: str) -> Network:
        """``features``, which must be a VGG weight source: ``method`` runs the Gatys optimization path on it."""
        net = self.features
        if net.vgg_source is None:
            raise ValueError(f"{method} uses the Gatys optimization path, which needs a VGG --features source, "
                             f"not {net.source}")
        return net

    # ----------------------------------------------------------------- inputs
    @cached_property
    def image(self) -> Tensor:
        """The photo, (3, H, W) in [0, 1] on the device, longest side at most 512."""
        spec = self._image_spec
        if spec is None:
            raise ValueError("this method needs a photo: pass --image PHOTO")
        if isinstance(spec, Tensor):
            image = spec if spec.dim() == 3 else spec[0]
        else:
            image = read_photo(resolve_image(str(spec), "photos"))
        return image.float().to(self.device)

    @property
    def has_image(self) -> bool:
        return self._image_spec is not None

    @property
    def image_name(self) -> str:
        spec = self._image_spec
        return Path(spec).stem if isinstance(spec, str | os.PathLike) else "image"

    @cached_property
    def folder_paths(self) -> list[Path]:
        spec = self._folder_spec
        if spec is None:
            raise ValueError("this method needs a folder of images: pass --folder DIR")
        if isinstance(spec, str | os.PathLike):
            if not Path(spec).is_dir():
                raise ValueError(f"{spec}: not a directory")
            paths = find_images(spec)
        else:
            paths = [Path(p) for p in spec]
        if not paths:
            raise ValueError(f"{spec}: no images found")
        return paths[: self.max_images]

    def folder_images(self, size: int) -> tuple[list[Path], Tensor]:
        """The readable folder images as central squares, (N, 3, size, size) on the CPU;
        unreadable files are skipped and listed in ``skipped``."""
        if size not in self._folder_cache:
            kept: list[Path] = []
            squares: list[Tensor] = []
            for path in tqdm(self.folder_paths, desc="read folder", disable=not self.progress, leave=False):
                try:
                    squares.append(center_square(read_photo(path), size))  # as the photo: comparable
                except ImageError as exc:
                    if str(exc) not in self.skipped:
                        self.skipped.append(str(exc))
                    continue
                kept.append(path)
            if len(kept) < 2:
                raise ValueError(f"need at least 2 readable images in the folder, found {len(kept)}")
            self._folder_cache[size] = (kept, torch.stack(squares))
        return self._folder_cache[size]

    def batched(self, fn: Callable[[Tensor], Tensor], images: Tensor, batch_size: int = 16,
                desc: str = "forward") -> Tensor:
        """``fn`` over ``images`` in batches on the device, without gradients; CPU result."""
        outputs = []
        with torch.no_grad():
            for start in tqdm(range(0, len(images), batch_size), desc=desc, disable=not self.progress, leave=False):
                outputs.append(fn(images[start:start + batch_size].to(self.device)).float().cpu())
        return torch.cat(outputs)


class Method:
    """Base of every diagnostic: subclasses are dataclasses of settings (``option``)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()  # "image" and/or "folder"

    def run(self, context: Context) -> Result:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def result(self, summary: dict[str, Any], rows: list[list[Tile]], title: str, **kwargs: Any) -> Result:
        return Result(self.name, self.settings(), summary, rows, title, **kwargs)
