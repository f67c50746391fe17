"""One request's image work around the shared network call: decode, resize, finish, encode.

Decoding goes through ``open_rgb`` (EXIF orientation, odd colour modes, the pixel
limit checked from the header before decoding). The network call itself is batched
(``run_batch``): same-size images are stacked and run through ``Stylizer.run``; colour
preservation and strength are per request, so they are applied afterwards, with the
same ``finish`` the ``Stylizer`` uses.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from styletrans.images import encode_image, open_rgb, pil_to_tensor, resize_longest
from styletrans.inference import Stylizer, finish

MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class StylizeOptions(BaseModel):
    """Options of ``POST /v1/stylize/{style}`` (query string, form fields or a JSON ``options`` field)."""

    model_config = ConfigDict(extra="forbid")

    size: int | None = Field(None, ge=8, description="longest side of the result (default: the input's)")
    preserve_color: bool = Field(False, description="keep the photo's colours, take the style's luminance")
    strength: float = Field(1.0, ge=0.0, le=1.0, description="0: the photo, 1: fully stylized")
    format: Literal["png", "jpeg", "jpg", "webp"] = Field("png", description="encoding of the result")
    quality: int = Field(90, ge=1, le=100, description="JPEG/WebP quality")

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.encoding]

    @property
    def encoding(self) -> str:
        return "jpeg" if self.format == "jpg" else self.format


class MixOptions(StylizeOptions):
    """Options of ``POST /v1/stylize/mix``: the mix, and those of a single style."""

    styles: str = Field(..., max_length=1000, description="the mix: NAME:WEIGHT pairs separated by commas, styles "
                        "of one multi-style base, e.g. starry_night:0.7,great_wave:0.3 (normalized to sum 1)")


def decode(data: bytes, options: StylizeOptions, *, max_pixels: int, max_side: int) -> Tensor:
    """Image bytes -> (3, H, W) float tensor at the size the network will run at.

    The result's longest side is ``options.size`` if given, else the input's, and never
    more than ``max_side`` (larger inputs are scaled down). Raises ``ImageError``
    (``ImageTooLargeError`` above ``max_pixels``).
    """
    image = open_rgb(data, max_pixels=max_pixels, name="request body")
    target = min(options.size or max(image.size), max_side)
    return pil_to_tensor(resize_longest(image, target))


def run_batch(stylizer: Stylizer, images: list[Tensor]) -> list[Tensor]:
    """Same-size (3, H, W) images -> the network's outputs, one call for all of them."""
    import torch

    return list(stylizer.run(torch.stack(images)))


def finish_and_encode(stylized: Tensor, content: Tensor, options: StylizeOptions) -> bytes:
    """Per-request colour preservation and strength, then PNG/JPEG/WebP bytes."""
    out = finish(stylized[None], content[None], strength=options.strength, preserve_color=options.preserve_color)
    return encode_image(out[0], options.encoding, quality=options.quality)
