"""Quality per hour of training: equivalent Gatys iterations of a run's snapshots against the
minutes of training that produced them.

``styletrans train ... --snapshots.every_minutes 4`` leaves ``RUN/snapshots/minute_*.ckpt`` and
an ``index.json`` of (step, seconds). For each photo this script runs the Gatys optimization
once, from the photo, under the run's own loss (as ``styletrans evaluate`` does), and scores
every snapshot against that curve: the first iteration count at which Gatys reaches the
snapshot's loss. Curves are cached per photo and loss, so adding a run of the same style
costs only its forward passes.

    python benchmarks/quality_per_hour.py RUN [RUN ...] --content-dir ../shared/data/dev_eval \\
        --limit 10 --size 256 --iterations 300 --label RUN=NAME
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import matplotlib
import torch
from common import cpu_name

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from styletrans.assets import resolve_image
from styletrans.evaluation import Evaluator, equivalent_iterations, load_model
from styletrans.evaluation.artifacts import lattice_score
from styletrans.evaluation.metrics import summarize_equivalent
from styletrans.images import find_images, load_image
from styletrans.weights import cache_dir

GATYS_MARKS = (10, 50, 100, 200)  # Gatys losses recorded beside each snapshot


def snapshots(run: Path) -> list[dict]:
    index = run / "snapshots" / "index.json"
    if not index.is_file():
        raise SystemExit(f"{run}: no snapshots/index.json (train with --snapshots.every_minutes N)")
    entries = json.loads(index.read_text())
    return [{**entry, "path": run / "snapshots" / entry["file"]} for entry in entries]


def curve_cache(evaluator: Evaluator, style: Path, photo: Path, size: int) -> Path:
    """One file per (loss settings, style file, photo, size, iteration count)."""
    key = json.dumps([asdict(evaluator.settings), hashlib.sha256(style.read_bytes()).hexdigest(),
                      str(photo.resolve()), size], sort_keys=True)
    return cache_dir() / "gatys_curves" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def gatys_curve(evaluator: Evaluator, style: Path, photo: Path, size: int) -> list[float]:
    cache = curve_cache(evaluator, style, photo, size)
    if cache.is_file():
        return json.loads(cache.read_text())["curve"]
    content = load_image(photo, size)[None].to(evaluator.device)
    targets = evaluator.loss.content_targets(content)
    curve, seconds, _ = evaluator.run_gatys(content, targets)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"photo": str(photo), "curve": curve, "seconds": seconds}))
    return curve


def evaluate_run(run: Path, photos: list[Path], size: int, iterations: int, device: torch.device,
                 seconds_per_step: float | None = None) -> dict:
    entries = snapshots(run)
    first = load_model(entries[0]["path"], device)
    style_path = resolve_image(str(first.training["style_image"]), "styles")
    style = load_image(style_path, first.training.get("style_size"))
    evaluator = Evaluator(first, style, [iterations], device, use_lpips=False, progress=False)
    curves = {}
    for number, photo in enumerate(photos, 1):
        start = time.perf_counter()
        curves[photo] = gatys_curve(evaluator, style_path, photo, size)
        print(f"  gatys curve {number}/{len(photos)} {photo.name}: {time.perf_counter() - start:.0f} s")
    contents = {photo: load_image(photo, size)[None] for photo in photos}  # shared by every snapshot
    targets = {photo: evaluator.loss.content_targets(content.to(device)) for photo, content in contents.items()}
    points = []
    for entry in entries:
        net = load_model(entry["path"], device).backend
        values, totals, lattice = [], [], []
        for photo in photos:
            output = net(contents[photo]).float()
            total = evaluator.losses(output, targets[photo]).total
            totals.append(total)
            values.append(equivalent_iterations(curves[photo], total))
            lattice.append(lattice_score(output))
        summary = summarize_equivalent(values, iterations)
        gatys_at = {n: statistics.fmean(curves[p][n] for p in photos) for n in GATYS_MARKS if n <= iterations}
        # Runs that shared the cores are put on one clock: the steps at a standalone run's pace.
        minutes = entry["step"] * seconds_per_step / 60 if seconds_per_step else entry["seconds"] / 60
        points.append({"step": entry["step"], "minutes": minutes, "wall_minutes": entry["seconds"] / 60,
                       "file": entry["file"],
                       "equivalent_iterations": values, "median": summary["median"], "reached": summary["reached"],
                       "loss": statistics.fmean(totals), "gatys_loss": gatys_at,
                       "lattice": statistics.fmean(lattice)})
        print(f"  {entry['file']}: step {entry['step']}, {minutes:.1f} min, "
              f"median equivalent iterations {summary['median']}, loss {statistics.fmean(totals):.4g}, "
              f"lattice {statistics.fmean(lattice):.3f}")
    return {"run": str(run), "style": first.style_name, "training": first.training, "points": points}


def plot(results: list[dict], labels: dict[str, str], iterations: int, photo_lattice: float, path: Path) -> None:
    """Left: equivalent iterations; right: the lattice score, both against training minutes."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    for result in results:
        xs = [p["minutes"] for p in result["points"]]
        # A photo Gatys never caught up with counts as the cap, so the line stays on the chart.
        ys = [iterations if p["median"] is None else p["median"] for p in result["points"]]
        label = labels.get(result["run"], Path(result["run"]).name)
        left.plot(xs, ys, marker="o", label=label)
        right.plot(xs, [p["lattice"] for p in result["points"]], marker="o", label=label)
    for n in (50, 100):
        left.axhline(n, color="grey", linestyle=":", linewidth=1)
        left.text(xs[0], n, f"Gatys@{n}", va="bottom", fontsize=8, color="grey")
    right.axhline(photo_lattice, color="grey", linestyle=":", linewidth=1)
    right.text(xs[0], photo_lattice, "the photos themselves", va="bottom", fontsize=8, color="grey")
    left.set_ylabel("equivalent Gatys iterations (median)")
    right.set_ylabel("lattice score (mean)")
    for ax in (left, right):
        ax.set_xlabel("training minutes (2 CPU cores)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    left.set_title("Loss, in L-BFGS iterations of Gatys from the photo", fontsize=10)
    right.set_title("Dot lattice (styletrans.evaluation.artifacts)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories with snapshots/")
    parser.add_argument("--content-dir", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=300, help="length of each Gatys curve")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seconds-per-step", type=float, default=None,
                        help="plot steps at this standalone pace instead of the snapshots' own clock "
                             "(for runs that shared the machine)")
    parser.add_argument("--label", action="append", default=[], metavar="RUN=NAME", help="legend name of a run")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/quality_per_hour.json"))
    parser.add_argument("--plot", type=Path, default=Path("models/quality_per_hour.png"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    photos = find_images(args.content_dir)[: args.limit]
    labels = {str(Path(run)): name for run, name in (item.split("=", 1) for item in args.label)}
    device = torch.device("cpu")
    results = []
    for run in args.runs:
        print(f"{run}:")
        results.append(evaluate_run(run, photos, args.size, args.iterations, device, args.seconds_per_step))
    photo_lattice = statistics.fmean(lattice_score(load_image(p, args.size)) for p in photos)
    payload = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "size": args.size,
               "photo_lattice": photo_lattice,
               "seconds_per_step": args.seconds_per_step,
               "iterations": args.iterations, "photos": [p.name for p in photos], "runs": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1) + "\n")
    plot(results, labels, args.iterations, photo_lattice, args.plot)
    print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
