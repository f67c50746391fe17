"""The README's row of mixes: one bundled photo stylized by mixes of two bundled styles.

    python docs/make_mix_row.py [--styles starry_night the_scream] [--photo chelsea] [--size 256]

Each picture is `styletrans stylize -m "A:W,B:1-W"` (the bundled mixing model, multistyle7.mix.onnx), for
W = 1, 0.75, 0.5, 0.25, 0; written to docs/mix_row.jpg at 100 % scale.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from styletrans.assets import resolve_image
from styletrans.images import load_image
from styletrans.inference.mixing import mix_stylizer

OUTPUT = Path(__file__).resolve().parent / "mix_row.jpg"
SHARES = (1.0, 0.75, 0.5, 0.25, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--styles", nargs=2, default=["starry_night", "the_scream"])
    parser.add_argument("--photo", default="chelsea")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--models-dir", default=None, help="where the mixing model is (default: the usual lookup)")
    args = parser.parse_args()
    first, second = args.styles
    photo = load_image(resolve_image(args.photo, "photos"), args.size).unsqueeze(0)
    tiles = []
    for share in SHARES:
        stylizer, _ = mix_stylizer(f"{first}:{share},{second}:{1 - share}", args.models_dir)
        with torch.no_grad():
            out = stylizer.stylize_tensor(photo)[0].clamp(0, 1)
        tiles.append(Image.fromarray(out.mul(255).round().byte().permute(1, 2, 0).numpy()))
    width, height = tiles[0].size
    row = Image.new("RGB", (len(tiles) * width + (len(tiles) - 1) * 4, height), "white")
    for i, tile in enumerate(tiles):
        row.paste(tile, (i * (width + 4), 0))
    row.save(args.output, quality=92)
    print(f"wrote {args.output}: {first} share {', '.join(f'{s:g}' for s in SHARES)} (rest {second})")


if __name__ == "__main__":
    main()
