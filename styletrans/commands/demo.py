"""``styletrans demo``: every bundled style on the bundled photos, as one picture grid."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image

CELL = 256  # side of one square cell of the grid, in pixels
GAP = 4


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="stylize the bundled photos with every bundled style (one picture grid)",
        description="Stylize the photos bundled with styletrans with every style bundled with it "
        "(or every model in --models-dir) in one pass each, on ONNX Runtime, and write a grid: the paintings "
        "across the top, one row per photo. The Gatys optimization demo is `styletrans optimize --content "
        "chelsea --style starry_night` (`make demo-gatys`).",
    )
    p.add_argument("--output", "-o", type=Path, default=Path("out/demo.jpg"), help="grid image (default: out/demo.jpg)")
    p.add_argument("--models-dir", type=Path, default=None, help="folder of .onnx models (default: bundled)")
    p.add_argument("--size", type=int, default=512, help="longest side the photos are stylized at (default: 512)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: one per core)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing grid")
    p.set_defaults(handler=run)


def square(image: Image.Image, side: int = CELL) -> Image.Image:
    """The largest centred square, scaled to ``side``."""
    s = min(image.size)
    left, top = (image.width - s) // 2, (image.height - s) // 2
    return image.crop((left, top, left + s, top + s)).resize((side, side), Image.Resampling.LANCZOS)


def grid(header: list[Image.Image], rows: list[list[Image.Image]]) -> Image.Image:
    """A white sheet: a blank corner and ``header`` across the top, then ``rows`` (photo first)."""
    columns, lines = len(header) + 1, len(rows) + 1
    sheet = Image.new("RGB", (columns * CELL + (columns - 1) * GAP, lines * CELL + (lines - 1) * GAP), "white")
    for r, line in enumerate([[None, *header], *rows]):
        for c, cell in enumerate(line):
            if cell is not None:
                sheet.paste(square(cell), (c * (CELL + GAP), r * (CELL + GAP)))
    return sheet


def run(args: argparse.Namespace) -> int:
    from styletrans.assets import bundled
    from styletrans.atomic import OutputExistsError
    from styletrans.cli import CommandError
    from styletrans.images import open_rgb, resize_longest, save_image
    from styletrans.inference import ModelError, Stylizer
    from styletrans.inference.registry import bundled_models_dir, list_models, missing_model_hint

    if args.output.exists() and not args.overwrite:
        raise OutputExistsError(args.output)
    models_dir = args.models_dir or bundled_models_dir()
    models = {name: path for name, path in list_models([models_dir]).items() if path.suffix == ".onnx"}
    if not models:
        raise CommandError(f"{models_dir}: no .onnx models; {missing_model_hint()}")
    photos = {name: resize_longest(open_rgb(path), args.size) for name, path in bundled("photos").items()}
    styles = bundled("styles")
    header, columns = [], []
    for name, path in list(models.items()):
        try:
            stylizer = Stylizer(path, backend="onnx", provider="cpu", threads=args.threads)
        except ModelError as exc:  # one broken file does not cost the others
            print(f"skipped {name}: {exc}", file=sys.stderr)
            del models[name]
            continue
        painting = styles.get(str(stylizer.metadata.get("training", {}).get("style_image"))) or styles.get(name)
        header.append(open_rgb(painting) if painting else Image.new("RGB", (CELL, CELL), "grey"))
        start = time.perf_counter()
        columns.append([stylizer.stylize(photo) for photo in photos.values()])
        print(f"{name}: {len(photos)} photos in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if not columns:
        raise CommandError(f"{models_dir}: none of the .onnx models could be loaded")
    rows = [[photo, *(column[i] for column in columns)] for i, photo in enumerate(photos.values())]
    save_image(grid(header, rows), args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}: {len(photos)} bundled photos x {len(models)} style(s) ({', '.join(models)})")
    return 0
