"""``Stylizer``: a trained style network behind one small, thread-safe API.

    stylizer = Stylizer("models/starry_night.onnx")
    out = stylizer.stylize(Image.open("photo.jpg"), preserve_color=True, strength=0.8)

Used by ``styletrans stylize`` and the HTTP server alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from styletrans.color import keep_colors
from styletrans.images import pil_to_tensor, tensor_to_pil
from styletrans.inference.backends import ModelError, OnnxBackend, TorchBackend
from styletrans.inference.tiling import stylize_tiled

BACKENDS = ("auto", "onnx", "torch")
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")
# The network needs sides >= 5 (its 9x9 reflection padding); smaller images are padded.
MIN_SIDE = 8
DEFAULT_OVERLAP = 64

ImageT = TypeVar("ImageT", Image.Image, Tensor)


def check_options(*, strength: float, size: int | None, batch_size: int) -> None:
    """The checks ``stylize`` and ``batch`` share, run before any file is read or written."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"--strength must be between 0 and 1, got {strength}")
    if size is not None and size < 8:
        raise ValueError(f"--size must be at least 8, got {size}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")


def finish(stylized: Tensor, content: Tensor, *, strength: float = 1.0, preserve_color: bool = False) -> Tensor:
    """Colour preservation (the photo's chrominance, the style's luminance), then the
    blend ``content + strength * (stylized - content)``."""
    if preserve_color:
        stylized = keep_colors(stylized, content)
    if strength < 1.0:
        stylized = torch.lerp(content, stylized, strength)
    return stylized


class Stylizer:
    """Stylize images with one trained network.

    ``model``: an exported ``.onnx`` file (or its bytes: a mix, ``inference.mixing``), a Lightning
    checkpoint (``.ckpt``), or a ``TransformerNet``. ``backend``: ``onnx`` (ONNX Runtime; a checkpoint is exported in
    memory first), ``torch`` (PyTorch eager; needs a checkpoint or a module) or ``auto``
    (ONNX for ``.onnx`` files, PyTorch otherwise). ``provider`` picks ONNX Runtime's
    execution provider: ``auto`` (CUDA if it can start, else CPU), ``cuda``,
    ``tensorrt`` or ``cpu``. ``memory``: how ONNX Runtime keeps working memory (``OnnxBackend``).

    Instances hold no per-call state: ``stylize`` may be called from many threads.
    """

    def __init__(self, model: str | os.PathLike | nn.Module | bytes, *, backend: str = "auto",
                 provider: str = "auto", threads: int | None = None, memory: str = "arena") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")
        self.metadata: dict[str, Any] = {}
        self.backend: OnnxBackend | TorchBackend
        if isinstance(model, nn.Module):
            net = model
            if backend == "onnx":
                self.backend = OnnxBackend(_export_to_bytes(net), provider, threads, memory)
            else:
                self.backend = TorchBackend(net)
            self.metadata = {"style_name": "unnamed"}
        elif isinstance(model, bytes):
            if backend == "torch":
                raise ModelError("the torch backend needs a checkpoint (.ckpt), not ONNX bytes")
            self.backend = OnnxBackend(model, provider, threads, memory)
            self.metadata = dict(self.backend.metadata)
        else:
            path = Path(model)
            if path.suffix.lower() in CHECKPOINT_SUFFIXES:
                from styletrans.models.checkpoint import load_transformer

                net, self.metadata = load_transformer(path)
                if backend == "onnx":
                    self.backend = OnnxBackend(_export_to_bytes(net, self.metadata), provider, threads, memory)
                else:
                    self.backend = TorchBackend(net)
            else:
                if backend == "torch":
                    raise ModelError(f"{path}: the torch backend needs a checkpoint (.ckpt), not an ONNX file")
                self.backend = OnnxBackend(path, provider, threads, memory)
                self.metadata = dict(self.backend.metadata)
                self.metadata.setdefault("style_name", path.stem)
        self.style_name = str(self.metadata.get("style_name", "unnamed"))

    def describe(self) -> str:
        return f"style {self.style_name!r} on {self.backend.describe()}"

    # ------------------------------------------------------------------ core
    def run(self, batch: Tensor) -> Tensor:
        """The network alone: (B, 3, H, W) float in [0, 1] -> same shape, stylized."""
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) batch, got shape {tuple(batch.shape)}")
        h, w = batch.shape[-2:]
        if min(h, w) < MIN_SIDE:  # tiny images: pad (edge pixels repeated), stylize, crop
            padded = F.pad(batch, (0, max(0, MIN_SIDE - w), 0, max(0, MIN_SIDE - h)), mode="replicate")
            return self.backend(padded)[..., :h, :w]
        return self.backend(batch.float())

    def stylize_tensor(self, batch: Tensor, *, strength: float = 1.0, preserve_color: bool = False) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> finished stylized batch (colour preservation, strength)."""
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be between 0 and 1, got {strength}")
        if strength == 0.0:
            return batch.clone()
        return finish(self.run(batch), batch, strength=strength, preserve_color=preserve_color)

    # ------------------------------------------------------------------ images
    def stylize(self, image: ImageT, *, strength: float = 1.0, preserve_color: bool = False,
                tile: int | None = None, overlap: int = DEFAULT_OVERLAP) -> ImageT:
        """Stylize one PIL image or (3, H, W) tensor in [0, 1]; returns the same kind.

        With ``tile``, an image larger than ``tile`` pixels on a side is processed in
        overlapping ``tile`` x ``tile`` pieces (bounded memory; see ``tiling``).
        """
        if tile is not None and max(_size(image)) > tile:
            if tile < 32:
                raise ValueError(f"tile must be at least 32 pixels, got {tile}")
            array = np.asarray(image if isinstance(image, Image.Image) else tensor_to_pil(image))

            def run_tile(crop: Tensor) -> Tensor:
                return self.stylize_tensor(crop, strength=strength, preserve_color=preserve_color)

            out = Image.fromarray(stylize_tiled(array, run_tile, tile, overlap), mode="RGB")
            return out if isinstance(image, Image.Image) else pil_to_tensor(out)
        return self.stylize_batch([image], strength=strength, preserve_color=preserve_color)[0]

    def stylize_batch(self, images: list[ImageT], *, strength: float = 1.0,
                      preserve_color: bool = False) -> list[ImageT]:
        """Stylize same-size images in one network call; returns them in order, same kind."""
        if not images:
            return []
        sizes = {_size(image) for image in images}
        if len(sizes) > 1:
            raise ValueError(f"stylize_batch needs images of one size, got {sorted(sizes)}")
        as_pil = isinstance(images[0], Image.Image)
        batch = torch.stack([pil_to_tensor(im.convert("RGB")) if as_pil else im for im in images])
        out = self.stylize_tensor(batch, strength=strength, preserve_color=preserve_color)
        return [tensor_to_pil(o) for o in out] if as_pil else list(out)


def _size(image: Image.Image | Tensor) -> tuple[int, int]:
    """(width, height)."""
    return image.size if isinstance(image, Image.Image) else (int(image.shape[-1]), int(image.shape[-2]))


def _export_to_bytes(net: nn.Module, metadata: dict[str, Any] | None = None) -> bytes:
    """ONNX bytes of ``net`` (for the onnx backend given a checkpoint): exported once, in memory."""
    import tempfile

    from styletrans.export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(net, Path(tmp) / "model.onnx", metadata=metadata)
        return path.read_bytes()
