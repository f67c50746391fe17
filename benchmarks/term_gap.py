"""Which loss term keeps a network's equivalent iterations low: its terms beside Gatys' along the curve.

Equivalent iterations compare totals. This splits them: each style's network output on a photo, and
Gatys from the photo under the network's own loss (the clipped iterate, as ``styletrans evaluate``
scores it) at the equivalent iteration, at 50 and at the last one, term by term (content, style per
layer, TV). A term where the network is above Gatys at every iteration is one that training has not
learned, whatever the total says.

    python benchmarks/term_gap.py CHECKPOINT --photo ../shared/data/dev_eval/100007.jpg \\
        --styles starry_night great_wave --json benchmarks/results/term_gap.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import cpu_name, write_json
from quality_per_hour import style_models

from styletrans.assets import resolve_image
from styletrans.evaluation import Evaluator, FastModel, equivalent_iterations
from styletrans.images import load_image
from styletrans.optimize.gatys import run_gatys


def term_gap(model: FastModel, photo: Path, size: int, iterations: int, device: torch.device) -> dict:
    """The network's terms and Gatys' terms after each iteration (clipped iterates), one photo."""
    style_path = resolve_image(str(model.training["style_image"]), "styles")
    evaluator = Evaluator(model, load_image(style_path, model.training.get("style_size")), [iterations], device,
                          use_lpips=False, progress=False, pan=False)
    content = load_image(photo, size)[None].to(device)
    targets = evaluator.loss.content_targets(content)

    def terms(image: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            return evaluator.loss(image.clamp(0, 1), targets).as_floats()

    curve = [terms(content)]
    run_gatys(content, evaluator.style, evaluator.settings, device=device, loss=evaluator.loss,
              callback=lambda step, image, record: curve.append(terms(image)), progress=False)
    network = terms(model.backend(content).float().to(device))
    equivalent = equivalent_iterations([t["total"] for t in curve], network["total"])
    return {"style": model.style_name, "network": network, "equivalent_iterations": equivalent,
            "gatys": {str(i): curve[i] for i in sorted({equivalent or 0, 50, len(curve) - 1}) if i < len(curve)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--photo", type=Path, required=True)
    parser.add_argument("--styles", nargs="+", default=None, help="default: every style of the checkpoint")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=120)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/term_gap.json"))
    args = parser.parse_args()
    device = torch.device("cpu")
    models = style_models(args.checkpoint, device)
    unknown = set(args.styles or ()) - {model.style_name for model in models}
    if unknown:
        parser.error(f"{args.checkpoint} has no style {', '.join(sorted(unknown))}")
    rows = [term_gap(model, args.photo, args.size, args.iterations, device)
            for model in models if args.styles is None or model.style_name in args.styles]
    keys = [k for k in rows[0]["network"] if k != "total"]
    print(f"{'style':16s} {'at':>8s} " + " ".join(f"{k.removeprefix('style/'):>9s}" for k in ["total", *keys]))
    for row in rows:
        for label, values in [("network", row["network"]), *((f"gatys {i}", v) for i, v in row["gatys"].items())]:
            print(f"{row['style'][:16]:16s} {label:>8s} " + " ".join(f"{values[k]:9.3g}" for k in ["total", *keys]))
    write_json(args.json, {"cpu": cpu_name(), "checkpoint": args.checkpoint.name, "photo": args.photo.name,
                           "size": args.size, "iterations": args.iterations, "styles": rows})


if __name__ == "__main__":
    main()
