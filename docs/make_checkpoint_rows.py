"""The same photos through several multi-style checkpoints, to see how runs differ: one figure.

    python docs/make_checkpoint_rows.py OLD.ckpt train/resume/multistyle7.ckpt \\
        [--styles starry_night great_wave] [--photos astronaut chelsea coffee] [--output F.jpg]

Top row: the photos (centre squares, 256 px). Below, per style, one row per checkpoint in the order given.
Photos are bundled names or paths.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torchvision.utils import make_grid

from styletrans.assets import resolve_image
from styletrans.images import tensor_to_pil
from styletrans.models.checkpoint import load_transformer
from styletrans.training.data import CenterCrops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--styles", nargs="+", default=["starry_night", "great_wave"])
    parser.add_argument("--photos", nargs="+", default=["astronaut", "chelsea", "coffee"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--output", type=Path, default=Path("checkpoint_rows.jpg"))
    args = parser.parse_args()
    crops = CenterCrops([resolve_image(photo, "photos") for photo in args.photos], args.size)
    photos = torch.stack([crops[i] for i in range(len(crops))])
    networks = [load_transformer(path) for path in args.checkpoints]
    rows = [photos]
    with torch.no_grad():
        for style in args.styles:
            for net, metadata in networks:
                index = torch.full((len(photos),), metadata["styles"].index(style))
                rows.append(net(photos, index).clamp(0, 1))
    grid = make_grid(torch.cat(rows), nrow=len(photos), padding=2, pad_value=1.0)
    tensor_to_pil(grid).save(args.output, quality=92)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
