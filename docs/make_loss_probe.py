"""What a training loss asks for, seen without the photo's help: models/loss_probe.jpg.

    python docs/make_loss_probe.py [--checkpoint styletrans/assets/models/multistyle7.ckpt] \\
        [--pairs chelsea:starry_night astronaut:great_wave] [--iterations 150] [--extra relu2_1=0.003]

Per photo x painting, a row at 256 px: the photo; the network's output; Gatys under the network's own
training loss (layers, weights, style factor: read from the checkpoint) started from the photo; the same
started from noise; and from noise with the ``--extra`` content layers added. A feedforward network has
no starting picture, so the run from noise shows what its loss asks for; the run from the photo keeps
tones and colours that the loss never asks for (models/README.md, "What the loss asks for").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from styletrans.assets import resolve_image
from styletrans.images import load_image, tensor_to_pil
from styletrans.models.checkpoint import load_transformer
from styletrans.optimize.gatys import GatysSettings, run_gatys

OUTPUT = Path(__file__).resolve().parents[1] / "models" / "loss_probe.jpg"


def add_extra_argument(parser: argparse.ArgumentParser) -> None:
    """``--extra LAYER=WEIGHT ...``: content layers added to the checkpoint's loss; ``dict(args.extra)``."""
    def layer_weight(item: str) -> tuple[str, float]:
        layer, weight = item.split("=")
        return layer, float(weight)

    parser.add_argument("--extra", nargs="*", type=layer_weight, default=[("relu2_1", 0.003)],
                        help="content layers added: LAYER=WEIGHT")


def training_loss(hparams: dict, style: str, extra: dict[str, float], init: str, iterations: int) -> GatysSettings:
    """The checkpoint's training loss as Gatys settings (the stability term needs a network: left out)."""
    factor = (hparams.get("style_factors") or {}).get(style, 1.0)
    return GatysSettings(content_layers={**hparams["content_layers"], **extra}, style_layers=hparams["style_layers"],
                         content_weight=hparams["content_weight"], style_weight=hparams["style_weight"] * factor,
                         tv_weight=hparams["tv_weight"], iterations=iterations, init=init)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("styletrans/assets/models/multistyle7.ckpt"))
    parser.add_argument("--pairs", nargs="+", default=["chelsea:starry_night", "astronaut:great_wave"])
    parser.add_argument("--iterations", type=int, default=150)
    add_extra_argument(parser)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    extra = dict(args.extra)
    net, metadata = load_transformer(args.checkpoint)
    hparams = metadata["training"]  # the loss settings the checkpoint recorded
    rows = []
    for pair in args.pairs:
        photo_name, style_name = pair.split(":")
        photo = load_image(resolve_image(photo_name, "photos"), args.size)[None]
        style = load_image(resolve_image(style_name, "styles"), hparams["style_size"])[None]
        with torch.no_grad():
            row = [photo, net(photo, torch.tensor([metadata["styles"].index(style_name)])).clamp(0, 1)]
        for init, added in (("content", {}), ("noise", {}), ("noise", extra)):
            settings = training_loss(hparams, style_name, added, init, args.iterations)
            row.append(run_gatys(photo, style, settings, progress=False).image)
            print(f"{pair}: Gatys from {init} {added or ''} done", flush=True)
        rows.append(torch.cat(row, -1))
    width = min(row.shape[-1] for row in rows)
    tensor_to_pil(torch.cat([row[..., :width] for row in rows], -2)[0]).save(args.output, quality=92)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
