"""Image input/output shared by every command.

Reading is robust (EXIF orientation; greyscale, palette, RGBA, CMYK and 16-bit to
RGB; a pixel limit against decompression bombs) and every failure is an
``ImageError`` naming the file. Writing is atomic and never overwrites unless asked.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from styletrans.atomic import atomic_path

DEFAULT_MAX_PIXELS = 80_000_000  # an 8000x8000 photo plus margin; a bomb is far larger
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class ImageError(ValueError):
    """An input could not be read as an image (the message names the file)."""


class ImageTooLargeError(ImageError):
    """The image declares more pixels than allowed (found from its header, before decoding)."""


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greyscale: scale the real range to 8 bits, not clip at 255.
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        # Transparent pixels become white, as a viewer would show them on a page.
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")


def open_rgb(source: str | os.PathLike | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
             name: str | None = None) -> Image.Image:
    """Read a file path or encoded bytes into an upright RGB PIL image."""
    label = name or ("<bytes>" if isinstance(source, bytes) else str(source))
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{label}: empty input (0 bytes)")
        stream: io.BytesIO | str | os.PathLike = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{label}: no such file")
        if path.stat().st_size == 0:
            raise ImageError(f"{label}: empty file (0 bytes)")
        stream = path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
            with Image.open(stream) as img:
                # Checked before decoding: the header alone can declare a bomb.
                if img.width * img.height > max_pixels:
                    raise ImageTooLargeError(
                        f"{label}: {img.width}x{img.height} is {img.width * img.height:,} pixels, "
                        f"above the limit of {max_pixels:,}"
                    )
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(0)  # animated: the first frame
                img.load()
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own, larger limit, hit while opening
        raise ImageTooLargeError(
            f"{label}: declared size is above the limit of {max_pixels:,} pixels ({exc})"
        ) from None
    except UnidentifiedImageError as exc:
        raise ImageError(f"{label}: not a readable image ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{label}: corrupt or truncated image ({exc})") from None


def resize_longest(img: Image.Image, size: int | None) -> Image.Image:
    """Scale so the longest side is ``size`` (no-op for ``None``)."""
    if size is None or max(img.size) == size:
        return img
    scale = size / max(img.size)
    new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(new, Image.Resampling.LANCZOS)


def pil_to_tensor(img: Image.Image) -> Tensor:
    """RGB PIL image -> float tensor (3, H, W) in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def tensor_to_pil(image: Tensor) -> Image.Image:
    """Float tensor (3, H, W) or (1, 3, H, W) in [0, 1] -> RGB PIL image."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {image.shape[0]}")
        image = image[0]
    arr = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, mode="RGB")


def tensor_to_array(image: Tensor) -> np.ndarray:
    """Float tensor (3, H, W) or (1, 3, H, W) -> (H, W, 3) float array in [0, 1], for plotting."""
    if image.dim() == 4:
        image = image[0]
    return image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def load_image(source: str | os.PathLike | bytes, size: int | None = None, *,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Tensor:
    """Read an image as a float tensor (3, H, W) in [0, 1], longest side ``size``."""
    return pil_to_tensor(resize_longest(open_rgb(source, max_pixels=max_pixels), size))


def resize_tensor(image: Tensor, hw: tuple[int, int]) -> Tensor:
    """Bilinear (antialiased) resize of a (B, 3, H, W) or (3, H, W) tensor."""
    batched = image.dim() == 4
    out = F.interpolate(image if batched else image[None], size=hw, mode="bilinear",
                        align_corners=False, antialias=True)
    return out if batched else out[0]


def encode_image(image: Tensor | Image.Image, fmt: str = "png", quality: int = 95) -> bytes:
    """Encode to PNG, JPEG or WebP bytes."""
    img = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    fmt = {"jpg": "jpeg"}.get(fmt.lower(), fmt.lower())
    if fmt not in ("png", "jpeg", "webp"):
        raise ValueError(f"unsupported output format {fmt!r}: png, jpeg or webp")
    buf = io.BytesIO()
    img.save(buf, format=fmt.upper(), **({} if fmt == "png" else {"quality": quality}))
    return buf.getvalue()


def save_image(image: Tensor | Image.Image, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write atomically; raise ``OutputExistsError`` if ``path`` exists and not ``overwrite``."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "jpg", "jpeg", "webp"):
        raise ValueError(f"{path}: unsupported output extension (use .png, .jpg or .webp)")
    data = encode_image(image, fmt)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return path


def find_images(root: str | os.PathLike) -> list[Path]:
    """Image files under ``root`` (recursive, sorted, hidden files skipped)."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )
