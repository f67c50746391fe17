"""The README's Gatys gallery: the default settings on 6 photo x painting pairs at 512 px.

    python benchmarks/gatys_gallery.py [--work /tmp/gatys_gallery] [--size 512]
                                       [--neural-style chelsea:starry_night]

Runs ``styletrans optimize`` with the default preset on each pair (a result already in
``--work`` is reused, so an interrupted run resumes), prints seconds and artifact scores per
pair, writes JSON (benchmarks/results/gatys_gallery.json) and two pictures at 100 % scale:
docs/gallery/gatys_grid.jpg (every pair) and docs/gallery/gatys_vs_neural_style.jpg (the photo, the
defaults and ``--preset neural-style`` for the pairs given to ``--neural-style``). The preset's
results are only read from ``--work``, as its 1000 iterations at 512 px take about 40 minutes on 2
cores; make one with ``styletrans optimize --preset neural-style --content chelsea --style
starry_night -o WORK/chelsea_starry_night_neural-style.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import cpu_name, write_json
from PIL import Image, ImageDraw

from styletrans.assets import bundled
from styletrans.cli import main as styletrans
from styletrans.evaluation.artifacts import dot_score
from styletrans.images import load_image

PAIRS = [("chelsea", "starry_night"), ("coffee", "great_wave"), ("rocket", "the_scream"),
         ("coffee", "udnie"), ("astronaut", "composition_vii"), ("astronaut", "woman_with_a_hat")]
ROOT = Path(__file__).resolve().parent.parent
CAPTION = 18  # px of white under each picture for its label


def run_pair(photo: str, style: str, size: int, work: Path) -> dict:
    out = work / f"{photo}_{style}.png"
    if not out.with_suffix(".json").exists() and styletrans(
            ["optimize", "--content", photo, "--style", style, "--size", str(size), "--output", str(out),
             "--quiet", "--overwrite"]):
        raise SystemExit(f"styletrans optimize failed on {photo} x {style}")
    report = json.loads(out.with_suffix(".json").read_text())
    return {"photo": photo, "style": style, "image": str(out), "size": report["size"],
            "iterations": len(report["history"]), "seconds": report["seconds"], "lattice": report["lattice"],
            "dots": report.get("dots"),
            "final": {k: report["final"].get(k) for k in ("content", "style", "tv")}}


def labelled(image: Image.Image, label: str) -> Image.Image:
    tile = Image.new("RGB", (image.width, image.height + CAPTION), "white")
    tile.paste(image, (0, 0))
    ImageDraw.Draw(tile).text((4, image.height + 3), label, fill="black")
    return tile


def grid(tiles: list[Image.Image], columns: int) -> Image.Image:
    """Tiles left to right, top to bottom; each row as tall as its tallest tile."""
    width = max(t.width for t in tiles)
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    heights = [max(t.height for t in row) for row in rows]
    sheet = Image.new("RGB", (columns * width, sum(heights)), "white")
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            sheet.paste(tile, (c * width, sum(heights[:r])))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gatys_gallery"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--neural-style", nargs="*", default=["chelsea:starry_night"], metavar="PHOTO:STYLE")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "gatys_gallery.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    rows = [run_pair(photo, style, args.size, args.work) for photo, style in PAIRS]
    print(f"Gatys, default settings, {args.size} px, on {cpu_name()}")
    print(f"{'photo':>10} {'style':>18} {'seconds (as run)':>16} {'lattice':>8} {'dots':>6}")
    for r in rows:
        print(f"{r['photo']:>10} {r['style']:>18} {r['seconds']:>16.1f} {r['lattice']:>8.3f} {r['dots']:>6.3f}")
    tiles = [labelled(Image.open(r["image"]).convert("RGB"), f"{r['photo']} x {r['style']}")
             for r in rows]
    grid(tiles, columns=2).save(ROOT / "docs" / "gallery" / "gatys_grid.jpg", quality=90)

    compared = []
    for pair in args.neural_style:
        photo, style = pair.split(":")
        reference = args.work / f"{photo}_{style}_neural-style.png"
        if not reference.exists():
            print(f"skipped {pair} beside neural-style: no {reference}")
            continue
        ns = json.loads(reference.with_suffix(".json").read_text())
        ns_dots = dot_score(load_image(reference))
        ours = next(r for r in rows if (r["photo"], r["style"]) == (photo, style))
        result = Image.open(ours["image"]).convert("RGB")
        compared += [labelled(Image.open(bundled("photos")[photo]).convert("RGB").resize(result.size), photo),
                     labelled(result, f"defaults, {ours['iterations']} iterations: dots {ours['dots']:.3f}"),
                     labelled(Image.open(reference).convert("RGB"),
                              f"--preset neural-style, {len(ns['history'])} iterations: dots {ns_dots:.3f}")]
    if compared:
        grid(compared, columns=3).save(ROOT / "docs" / "gallery" / "gatys_vs_neural_style.jpg", quality=90)
    write_json(args.json, {"device": cpu_name(), "size": args.size, "pairs": rows})


if __name__ == "__main__":
    main()
