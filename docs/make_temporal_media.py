"""The README's flicker pictures: a synthetic camera pan over a bundled photo, frame by frame and with
``--temporal``.

    python docs/make_temporal_media.py                      # coffee, starry_night, 24 frames at 320x240
    python docs/make_temporal_media.py --photo astronaut --model the_scream --frames 36

The pan is made from one public-domain photo (``styletrans/assets/photos``; real footage must not
be committed): each frame drifts ``--drift`` px right and a little down and zooms in ``--zoom`` per
frame, so the motion is sub-pixel and known exactly. Each frame is stylized by the network
alone and through ``TemporalBlender`` (what ``styletrans stylize --temporal`` runs). Writes to
``--out`` (default ``docs/temporal``):

- ``temporal_strip.png``: four consecutive frames, frame by frame on the top row and with
  ``--temporal`` below, each row led by the whole frame with the zoomed area marked: the area
  where frame by frame flickers most against the true motion, shown enlarged in the frames.
- ``temporal_pan.gif``: the whole pan, frame by frame on the left and ``--temporal`` on the right.

and prints the warping error (the evaluation's: ``styletrans.evaluation.temporal``) of the three.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from styletrans.assets import resolve_image
from styletrans.evaluation.temporal import mean_error, warp, warping_errors
from styletrans.inference import Stylizer, resolve_model
from styletrans.inference.registry import pick_precision
from styletrans.inference.temporal import TemporalBlender

HERE = Path(__file__).resolve().parent
COLUMNS = 4  # consecutive frames in the strip
CROP = 0.3  # the zoomed area's share of the frame's width and height
GIF_BYTES = 1_900_000  # under 2 MB for the README


def camera_pan(photo: np.ndarray, frames: int, width: int, drift: float, zoom: float
               ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``frames`` views (H, W, 3) uint8 of ``photo``, ``width`` px wide (4:3), drifting and zooming in,
    and the exact backward flow from each frame to the one before (frame t+1's grid; first: zeros)."""
    height = round(width * 3 / 4) // 2 * 2
    base = cv2.resize(photo, (round(width / 0.8), round(width / 0.8 * photo.shape[0] / photo.shape[1])),
                      interpolation=cv2.INTER_AREA)  # the first view covers 80 % of the photo's width
    centre_out = np.array([width / 2, height / 2])
    start = np.array([base.shape[1] / 2 - drift * frames / 2, base.shape[0] / 2 - drift * frames / 8])

    def view(t: int) -> tuple[float, np.ndarray]:
        """Scale and the photo point at the centre of frame t."""
        return 1 + zoom * t, start + np.array([drift, drift / 4]) * t

    out, flows = [], []
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    grid = np.stack([xs, ys], axis=-1)
    for t in range(frames):
        scale, centre = view(t)
        shift = centre_out - scale * centre
        matrix = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]])
        out.append(cv2.warpAffine(base, matrix, (width, height), flags=cv2.INTER_CUBIC,
                                  borderMode=cv2.BORDER_REFLECT))
        if t == 0:
            flows.append(np.zeros((height, width, 2), np.float32))
            continue
        before_scale, before_centre = view(t - 1)
        point = (grid - centre_out) / scale + centre  # frame t's pixel in the photo...
        flows.append(((point - before_centre) * before_scale + centre_out - grid).astype(np.float32))  # ...in t-1
    return out, flows


def stylize_both(stylizer: Stylizer, frames: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each frame by the network alone and through the temporal blend, as uint8."""
    blender = TemporalBlender()
    plain, blended = [], []
    for frame in frames:
        tensor = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
        network = stylizer.stylize_tensor(tensor)[0].clamp(0, 1).permute(1, 2, 0).numpy()
        plain.append(to_uint8(network))
        blended.append(to_uint8(blender(frame, network)))
    return plain, blended


def to_uint8(frame: np.ndarray) -> np.ndarray:
    return (np.clip(frame, 0, 1) * 255).round().astype(np.uint8)


def flicker_map(frames: list[np.ndarray], flows: list[np.ndarray], first: int, last: int) -> np.ndarray:
    """Mean |frame t - frame t-1 moved by the true motion|, grey levels, over t in (first, last]."""
    total = np.zeros(frames[0].shape[:2], np.float32)
    for t in range(first + 1, last + 1):
        moved = warp(frames[t - 1].astype(np.float32), flows[t])
        total += np.abs(frames[t].astype(np.float32) - moved).mean(axis=-1)
    return total / (last - first)


def worst_area(plain: np.ndarray, blended: np.ndarray, size: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of the ``size`` (w, h) area where frame by frame flickers most beyond the blend."""
    w, h = size
    score = cv2.boxFilter(plain - blended, -1, (w, h), normalize=True, borderType=cv2.BORDER_CONSTANT)
    margin = 8  # the edge pixels are extrapolated by the warp
    inner = score[h // 2 + margin: score.shape[0] - h // 2 - margin, w // 2 + margin: score.shape[1] - w // 2 - margin]
    y, x = np.unravel_index(np.argmax(inner), inner.shape)
    return int(x) + margin, int(y) + margin


def label(image: Image.Image, text: str) -> Image.Image:
    """``text`` in white on black at the bottom-left of ``image`` (changed in place)."""
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=15)
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    _, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    at = (6, image.height - bottom - 6)
    draw.rectangle((at[0] - 4, at[1] + top - 3, at[0] + right + 4, at[1] + bottom + 3), fill=(0, 0, 0))
    draw.text(at, text, fill=(255, 255, 255), font=font)
    return image


def strip(rows: dict[str, list[np.ndarray]], start: int, corner: tuple[int, int], size: tuple[int, int]) -> Image.Image:
    """Per row: the whole frame ``start`` with the area boxed, then that area enlarged in ``COLUMNS``
    consecutive frames, as tall as the frame."""
    x, y = corner
    w, h = size
    lines = []
    for name, frames in rows.items():
        height = frames[0].shape[0]
        whole = frames[start].copy()
        cv2.rectangle(whole, (x, y), (x + w - 1, y + h - 1), (255, 255, 255), 2)
        zoom_w = round(w * height / h)
        crops = [cv2.resize(frames[t][y: y + h, x: x + w], (zoom_w, height), interpolation=cv2.INTER_NEAREST)
                 for t in range(start, start + COLUMNS)]
        gap = np.full((height, 6, 3), 255, np.uint8)
        line = np.concatenate([whole, gap, *[np.concatenate([c, gap], axis=1) for c in crops]], axis=1)[:, :-6]
        lines.append(np.asarray(label(Image.fromarray(line), f"{name}: frames {start}-{start + COLUMNS - 1}")))
        lines.append(np.full((6, line.shape[1], 3), 255, np.uint8))
    return Image.fromarray(np.concatenate(lines[:-1], axis=0))


def write_gif(plain: list[np.ndarray], blended: list[np.ndarray], path: Path, fps: float) -> int:
    """Side by side, one palette for every frame (no colour shimmer between frames), with as many
    colours as keep the file under ``GIF_BYTES``; returns the colours used."""
    gap = np.full((plain[0].shape[0], 4, 3), 255, np.uint8)
    frames = [label_right(label(Image.fromarray(np.concatenate([a, gap, b], axis=1)), "frame by frame"),
                          "--temporal", a.shape[1] + gap.shape[1]) for a, b in zip(plain, blended, strict=True)]
    sample = Image.fromarray(np.concatenate([np.asarray(f) for f in frames[:: max(1, len(frames) // 6)]]))
    for colours in (256, 192, 128, 96, 64, 48, 32):
        palette = sample.quantize(colours, method=Image.Quantize.MEDIANCUT)
        quantized = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
        data = io.BytesIO()
        quantized[0].save(data, format="GIF", save_all=True, append_images=quantized[1:],
                          duration=round(1000 / fps), loop=0, optimize=True)
        if data.tell() <= GIF_BYTES:
            break
    path.write_bytes(data.getvalue())
    return colours


def label_right(image: Image.Image, text: str, left: int) -> Image.Image:
    """``label`` on the panel that starts ``left`` px in."""
    panel = label(image.crop((left, 0, image.width, image.height)), text)
    image.paste(panel, (left, 0))
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default="coffee", help="bundled photo name or a file (default: coffee)")
    parser.add_argument("--model", default="starry_night", help="model name or file (default: starry_night)")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--width", type=int, default=320, help="frame width, px (4:3; default: 320)")
    parser.add_argument("--drift", type=float, default=0.6, help="px per frame (default: 0.6)")
    parser.add_argument("--zoom", type=float, default=0.002, help="zoom per frame (default: 0.002)")
    parser.add_argument("--fps", type=float, default=12, help="GIF frame rate (default: 12)")
    parser.add_argument("--out", type=Path, default=HERE / "temporal")
    args = parser.parse_args()
    if args.frames < COLUMNS + 2:
        parser.error(f"--frames must be at least {COLUMNS + 2}")

    photo = np.asarray(Image.open(resolve_image(args.photo, "photos")).convert("RGB"))
    frames, flows = camera_pan(photo, args.frames, args.width, args.drift, args.zoom)
    stylizer = Stylizer(pick_precision(resolve_model(args.model), "auto"), threads=2)
    plain, blended = stylize_both(stylizer, frames)

    errors = warping_errors(frames, {"frame by frame": plain, "--temporal": blended})
    print(f"{stylizer.style_name} on a {args.frames}-frame pan over {args.photo}; warping error x1000: "
          + ", ".join(f"{name} {1000 * mean_error(e):.2f}" for name, e in errors.items()))

    start = args.frames - COLUMNS - 1  # late in the pan: the blend has settled
    size = (round(args.width * CROP), round(frames[0].shape[0] * CROP))
    corner = worst_area(flicker_map(plain, flows, start, start + COLUMNS - 1),
                        flicker_map(blended, flows, start, start + COLUMNS - 1), size)
    args.out.mkdir(parents=True, exist_ok=True)
    picture = strip({"frame by frame": plain, "--temporal": blended}, start, corner, size)
    picture.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        args.out / "temporal_strip.png", optimize=True)
    colours = write_gif(plain, blended, args.out / "temporal_pan.gif", args.fps)
    print(f"GIF with {colours} colours")
    for name in ("temporal_strip.png", "temporal_pan.gif"):
        path = args.out / name
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
