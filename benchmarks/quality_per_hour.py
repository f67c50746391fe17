"""Quality per hour of training: a run's snapshots scored against the hours that produced them.

``styletrans train ... --snapshots.every_minutes 15`` leaves ``RUN/snapshots/minute_*.ckpt`` and an
``index.json`` of (step, seconds). Every snapshot (every style of a multi-style one) is scored on each
photo with the figures of ``styletrans evaluate``:

* **style strength** and **content ratio** against the Gatys default result (the yardstick);
* **equivalent iterations**: the first Gatys iteration, from the photo under the run's own loss, whose
  loss is as low as the network's;
* the **lattice** score, the **pan** number (1 px, grey levels), the **noise** number (a still shot
  with 1 grey level of fresh noise per frame: the boiling of flat areas in video) and the **edge frame**
  (grey levels between the outer 4 px and the strip inside them, less the photo's own; in the JSON, not
  plotted).

The Gatys runs depend only on the photo, the painting and the loss, so each runs once and is cached
(``--cache``, JSON numbers only: the photos' derivatives are not committed); adding snapshots then costs
only their forward passes. When the run's loss is the Gatys defaults' own, one run per photo gives both
the curve and the default result.

    python benchmarks/quality_per_hour.py RUN [RUN ...] --content-dir ../shared/data/dev_eval \\
        --limit 3 --size 256 --iterations 200 --label RUN=NAME [--seconds-per-step 1.1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib
import torch
from common import cpu_name, write_json
from torch import Tensor

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from styletrans.assets import resolve_image
from styletrans.evaluation import Evaluator, FastModel, equivalent_iterations, load_model
from styletrans.evaluation.artifacts import edge_frame_score, lattice_score
from styletrans.evaluation.metrics import Losses, median, style_strength, summarize_equivalent
from styletrans.evaluation.stability import noise_change, pan_change
from styletrans.export import per_style_networks
from styletrans.images import find_images, load_image
from styletrans.inference import TorchBackend
from styletrans.models.checkpoint import load_transformer
from styletrans.weights import cache_dir


def snapshots(run: Path) -> list[dict]:
    """A run's snapshots; a model file (``.onnx``, ``.ckpt``) is a run of one point, at 0 hours."""
    if run.is_file():
        return [{"file": run.name, "step": 0, "seconds": 0.0, "path": run}]
    index = run / "snapshots" / "index.json"
    if not index.is_file():
        raise SystemExit(f"{run}: no snapshots/index.json (train with --snapshots.every_minutes N)")
    entries = json.loads(index.read_text())
    return [{**entry, "path": run / "snapshots" / entry["file"]} for entry in entries]


def style_models(path: Path, device: torch.device) -> list[FastModel]:
    """The snapshot as one ``FastModel`` per style (a multi-style snapshot baked style by style; a
    fine-tune's, its new styles only)."""
    if path.suffix == ".onnx":
        return [load_model(path, device)]
    net, metadata = load_transformer(path)
    new_styles = (metadata.get("fine_tune") or {}).get("new_styles")  # a fine-tune: its new style(s) only
    networks = per_style_networks(net, metadata, new_styles) if net.config.styles > 1 else [(net, metadata)]
    return [FastModel(path, TorchBackend(style_net, device), style_meta) for style_net, style_meta in networks]


@dataclass
class Photo:
    """One photo at the evaluation size and its features under both losses: computed once, shared by
    every snapshot."""

    content: Tensor
    targets: dict[str, Tensor]  # under the run's own loss
    yardstick_targets: dict[str, Tensor]  # under the Gatys defaults' loss

    @classmethod
    def load(cls, path: Path, size: int, evaluator: Evaluator) -> Photo:
        content = load_image(path, size)[None]
        on_device = content.to(evaluator.device)
        return cls(content, evaluator.loss.content_targets(on_device),
                   evaluator.yardstick_loss.content_targets(on_device))


def _cache_file(cache: Path, *parts: object) -> Path:
    key = json.dumps(parts, sort_keys=True, default=str)
    return cache / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _identity(style: Path, photo: Path, size: int) -> list:
    return [hashlib.sha256(style.read_bytes()).hexdigest(), photo.name, hashlib.sha256(photo.read_bytes()).hexdigest(),
            size]


def reference(evaluator: Evaluator, style: Path, photo: Path, size: int, cache: Path, curve: bool) -> dict:
    """The Gatys default result's terms (the yardstick) and, with ``curve``, the Gatys curve under the run's
    own loss, each cached. When the run's loss is the defaults' own, one run gives both."""
    content = load_image(photo, size)[None].to(evaluator.device)
    shared = evaluator.shared_run(tuple(content.shape[-2:]))
    yardstick_path = _cache_file(cache, "yardstick", *_identity(style, photo, size))
    curve_path = _cache_file(cache, "curve", asdict(evaluator.settings), *_identity(style, photo, size))
    record = {"photo": photo.name, "style": style.name, "size": size}
    if curve and curve_path.is_file():
        record.update(json.loads(curve_path.read_text()))
    elif curve:
        start = time.perf_counter()
        targets = evaluator.loss.content_targets(content)
        values, seconds, images = evaluator.run_gatys(content, targets, () if shared is None else (shared,))
        write_json(curve_path, {"curve": values, "seconds": seconds})
        record.update(curve=values, seconds=seconds)
        if shared is not None and not yardstick_path.is_file():
            _write_yardstick(evaluator, content, images[shared], yardstick_path)
        print(f"  gatys curve {style.stem} x {photo.name}: {time.perf_counter() - start:.0f} s")
    if not yardstick_path.is_file():
        start = time.perf_counter()
        _write_yardstick(evaluator, content, evaluator.gatys_default(content), yardstick_path)
        print(f"  gatys default {style.stem} x {photo.name}: {time.perf_counter() - start:.0f} s")
    record.update(json.loads(yardstick_path.read_text()))
    return record


def _write_yardstick(evaluator: Evaluator, content: Tensor, default: Tensor, path: Path) -> None:
    terms = evaluator.yardstick(content, {"photo": content, "gatys": default})
    write_json(path, {"yardstick": {"photo": asdict(terms["photo"]), "gatys": asdict(terms["gatys"])},
                      "gatys_lattice": lattice_score(default)})


def score(model: FastModel, evaluator: Evaluator, photo_in: Photo, record: dict) -> dict:
    """One network on one photo: the figures above (equivalent iterations only with a curve)."""
    content = photo_in.content
    output = model.backend(content).float()
    total = evaluator.losses(output, photo_in.targets).total
    fast = evaluator.yardstick(content, {"fast": output}, photo_in.yardstick_targets)["fast"]
    photo, gatys = (Losses(**record["yardstick"][k]) for k in ("photo", "gatys"))
    return {"loss": total,
            "equivalent_iterations": equivalent_iterations(record["curve"], total) if "curve" in record else None,
            "style_strength": style_strength(photo.style, fast.style, gatys.style),
            "content_ratio": fast.content / gatys.content if gatys.content > 0 else None,
            "lattice": lattice_score(output), "pan_1px": pan_change(model.backend, content[0], 1),
            "noise": noise_change(model.backend, content[0]), "edge_frame": edge_frame_score(output, content)}


def evaluate_run(run: Path, photos: list[Path], size: int, iterations: int, device: torch.device, cache: Path,
                 seconds_per_step: float | None = None) -> dict:
    entries = snapshots(run)
    first = style_models(entries[0]["path"], device)
    styles = {}  # style name -> (evaluator, the photos with their features, the cached Gatys references)
    for model in first:
        style_path = resolve_image(str(model.training["style_image"]), "styles")
        style = load_image(style_path, model.training.get("style_size"))
        evaluator = Evaluator(model, style, [max(1, iterations)], device, use_lpips=False, progress=False,
                              yardstick_style=load_image(style_path, size), pan=False)
        records = [reference(evaluator, style_path, photo, size, cache, iterations > 0) for photo in photos]
        styles[model.style_name] = (evaluator, [Photo.load(p, size, evaluator) for p in photos], records)
    points = []
    for entry in entries:
        per_style = {}
        for model in style_models(entry["path"], device):
            evaluator, photo_inputs, records = styles[model.style_name]
            scores = [score(model, evaluator, photo_in, record)
                      for photo_in, record in zip(photo_inputs, records, strict=True)]
            eq = summarize_equivalent([s["equivalent_iterations"] for s in scores], iterations)
            per_style[model.style_name] = {
                "equivalent_iterations": eq["median"], "reached": eq["reached"],
                **{key: median(s[key] for s in scores) for key in ("style_strength", "content_ratio", "lattice",
                                                                   "pan_1px", "noise", "edge_frame", "loss")},
                "photos": scores,
            }
        # Runs that shared the cores are put on one clock: the steps at a standalone run's pace.
        hours = entry["step"] * seconds_per_step / 3600 if seconds_per_step else entry["seconds"] / 3600
        points.append({"step": entry["step"], "hours": hours, "wall_hours": entry["seconds"] / 3600,
                       "file": entry["file"], "styles": per_style})
        line = ", ".join(f"{name} {_short(v['style_strength'])}/{_short(v['equivalent_iterations'])}"
                         f"/{_short(v['pan_1px'])}/{_short(v['noise'])}/{_short(v['edge_frame'])}"
                         for name, v in per_style.items())
        print(f"  {entry['file']} (step {entry['step']}, {hours:.2f} h): strength/equivalent/pan/noise/frame {line}")
    gatys_lattice = {name: median(r["gatys_lattice"] for r in records) for name, (_, _, records) in styles.items()}
    return {"run": str(run), "training": first[0].training, "iterations": iterations, "gatys_lattice": gatys_lattice,
            "points": points}


def _short(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) and value < 10 else f"{value:.0f}"


PANELS = (("style_strength", "style strength (median; 1 = Gatys defaults)", 0.6),
          ("content_ratio", "content ratio (median; to the Gatys defaults')", 1.5),
          ("equivalent_iterations", "equivalent Gatys iterations (median)", 50),
          ("lattice", "lattice score (median)", None),
          ("pan_1px", "pan: change at 1 px (grey levels, median)", 1.0),
          ("noise", "noise: still shot, 1 level (grey levels, median)", None))


def plot(results: list[dict], labels: dict[str, str], iterations: int, path: Path) -> None:
    """One panel per figure against training hours (minutes for runs under an hour); a line per style
    and run. Without Gatys curves (``iterations`` 0) there is no equivalent-iterations panel, and without
    noise figures (JSONs older than them) no noise panel."""
    scored = {key for r in results for p in r["points"] for v in p["styles"].values() for key in v}
    panels = [p for p in PANELS if (iterations or p[0] != "equivalent_iterations") and p[0] in scored]
    longest = max(p["hours"] for r in results for p in r["points"])
    unit, per_hour = ("hours", 1) if longest >= 1 else ("minutes", 60)  # a fine-tune's curve is in minutes
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), dpi=110)
    colours: dict[str, str] = {}  # a colour per style and a line style per run: the legend names each once
    for run_index, result in enumerate(results):
        linestyle, marker = ("-", "--", ":", "-.")[run_index % 4], "osv^D"[run_index % 5]
        if len(results) > 1:
            run_label = labels.get(result["run"], Path(result["run"]).name)
            axes[0].plot([], [], color="black", linestyle=linestyle, marker=marker, markersize=3, label=run_label)
        cap = result.get("iterations", iterations)  # each run's own Gatys-curve length (older JSONs: the file's)
        xs = [p["hours"] * per_hour for p in result["points"]]
        for name in result["points"][0]["styles"]:
            label = None if name in colours else name
            colour = colours.setdefault(name, f"C{len(colours) % 10}")
            for ax, (key, _, _) in zip(axes, panels, strict=True):
                ys = [p["styles"][name].get(key, math.nan) for p in result["points"]]  # older JSONs: no noise
                if key == "equivalent_iterations":
                    if not cap:
                        continue  # scored without Gatys curves: no line
                    ys = [cap if y is None else y for y in ys]  # never caught up: drawn at the cap
                ax.plot(xs, ys, marker=marker, markersize=3, label=label, color=colour, linestyle=linestyle)
    for ax, (key, title, goal) in zip(axes, panels, strict=True):
        if goal is not None:
            ax.axhline(goal, color="grey", linestyle=":", linewidth=1)
            ax.text(0.01, goal, "goal", va="bottom", fontsize=8, color="grey", transform=ax.get_yaxis_transform())
        if key == "lattice":
            gatys = median(v for r in results for v in r["gatys_lattice"].values())
            ax.axhline(gatys, color="grey", linestyle=":", linewidth=1)
            ax.text(0.01, gatys, "Gatys defaults", va="bottom", fontsize=8, color="grey",
                    transform=ax.get_yaxis_transform())  # x in axes fractions: the panel may not start at 0
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"training {unit} (2 CPU cores)")
        ax.grid(alpha=0.3)
    # Below the panels, not inside one: with several runs the legend outgrew the first panel.
    handles, names = axes[0].get_legend_handles_labels()
    columns = min(len(names), 4)
    legend_height = 0.18 * math.ceil(len(names) / columns)  # inches, a line of 7-point text per row
    height = fig.get_figheight() + legend_height
    fig.set_figheight(height)
    fig.legend(handles, names, loc="lower center", ncol=columns, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, legend_height / height + 0.01, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path,
                        help="run directories with snapshots/, or model files (scored as one point each)")
    parser.add_argument("--content-dir", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=200,
                        help="length of each Gatys curve under the run's loss; 0: no curve, no equivalent iterations")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seconds-per-step", type=float, default=None,
                        help="plot steps at this standalone pace instead of the snapshots' own clock "
                             "(for runs that shared the machine)")
    parser.add_argument("--label", action="append", default=[], metavar="RUN=NAME", help="legend name of a run")
    parser.add_argument("--cache", type=Path, default=cache_dir() / "gatys_references",
                        help="folder of cached Gatys runs (JSON)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/quality_per_hour.json"))
    parser.add_argument("--plot", type=Path, default=None,
                        help="the figure (default: the JSON's path with .png; never a committed figure by accident)")
    parser.add_argument("--replot", type=Path, default=None, metavar="JSON",
                        help="only draw --plot from a JSON this script wrote (nothing is scored)")
    args = parser.parse_args()
    labels = {str(Path(run)): name for run, name in (item.split("=", 1) for item in args.label)}
    if args.plot is None:
        args.plot = (args.replot or args.json).with_suffix(".png")
    if args.replot is not None:
        saved = json.loads(args.replot.read_text())
        plot(saved["runs"], labels, saved["iterations"], args.plot)
        print(f"wrote {args.plot}")
        return
    if not args.runs or args.content_dir is None:
        parser.error("give RUN ... and --content-dir (or --replot JSON)")
    if args.threads:
        torch.set_num_threads(args.threads)
    photos = find_images(args.content_dir)[: args.limit]
    device = torch.device("cpu")
    results = []
    for run in args.runs:
        print(f"{run}:")
        results.append(evaluate_run(run, photos, args.size, args.iterations, device, args.cache,
                                    args.seconds_per_step))
    write_json(args.json, {"cpu": cpu_name(), "threads": torch.get_num_threads(), "size": args.size,
                           "seconds_per_step": args.seconds_per_step, "iterations": args.iterations,
                           "photos": [p.name for p in photos], "runs": results})
    plot(results, labels, args.iterations, args.plot)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
