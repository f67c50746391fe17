"""Score another model of a style against an earlier ``styletrans evaluate`` report's Gatys curves.

    python benchmarks/rescore.py --report REPORT/report.json --model models/starry_night.onnx

The Gatys run of ``styletrans evaluate`` depends only on the photo, the style image and the loss,
so a second network trained with the same loss can be scored against the curves the report holds,
without the slow runs: for each of the report's photos (found under its ``content_dir``, loaded at
its ``size``), the new model's output, its total loss, the equivalent Gatys iterations (the first
iteration whose loss is as low), its lattice and dot scores and its time. Beside them, the same
figures of the model the report evaluated. Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from common import cpu_name, write_json

from styletrans.evaluation.artifacts import dot_score, lattice_score
from styletrans.evaluation.metrics import equivalent_iterations, summarize_equivalent
from styletrans.evaluation.runner import Evaluator, gatys_settings, load_model
from styletrans.images import find_images, load_image


def quartiles(values: list[float]) -> list[float]:
    ordered = sorted(values)
    return [ordered[len(ordered) // 4], statistics.median(ordered), ordered[(3 * len(ordered)) // 4], ordered[-1]]


def rescore(report_path: Path, model_spec: str, threads: int) -> dict:
    report = json.loads(report_path.read_text())
    torch.set_num_threads(threads)
    device = torch.device("cpu")
    model = load_model(model_spec, device, threads)
    settings = gatys_settings(model, max(report["iterations"]))
    ours = {key: getattr(settings, key) for key in ("loss_network", "content_layers", "style_layers",
                                                     "relative_style", "content_weight", "style_weight", "tv_weight")}
    theirs = {key: report["loss"][key] for key in ours}
    if ours != theirs:
        raise SystemExit(f"{model_spec} was trained with another loss than the report's:\n  {ours}\n  {theirs}")
    style = load_image(report["style_image"], report["style_size"])
    evaluator = Evaluator(model, style, report["iterations"], device, use_lpips=False, progress=False)
    photos = {path.name: path for path in find_images(report["content_dir"])}
    rows = []
    for record in report["images"]:
        content = load_image(photos[record["name"]], report["size"])[None]
        targets = evaluator.loss.content_targets(content)
        output, ms = evaluator.time_fast(content)
        total = evaluator.losses(output, targets).total
        rows.append({"name": record["name"], "total": total, "ms": ms,
                     "equivalent_iterations": equivalent_iterations(record["curve"], total),
                     "lattice": lattice_score(output), "dots": dot_score(output),
                     "report": {"total": record["fast"]["total"], "ms": record["fast"]["ms"],
                                "equivalent_iterations": record["equivalent_iterations"],
                                "lattice": record["artifacts"]["lattice"]["fast"],
                                "dots": record["artifacts"]["dots"]["fast"]}})
    curve_end = max(report["iterations"])

    def summary(get) -> dict:
        eq = [get(r)["equivalent_iterations"] for r in rows]
        return {"equivalent_iterations": summarize_equivalent(eq, curve_end),
                "equivalent_quartiles_max": quartiles([curve_end + 1 if v is None else v for v in eq]),
                "total_median": statistics.median(get(r)["total"] for r in rows),
                "ms_median": statistics.median(get(r)["ms"] for r in rows),
                "lattice_median": statistics.median(get(r)["lattice"] for r in rows),
                "dots_median": statistics.median(get(r)["dots"] for r in rows)}

    return {"report": str(report_path), "report_model": report["model"]["path"], "model": model_spec,
            "model_transformer": model.training.get("transformer"), "size": report["size"],
            "gatys_iterations": report["iterations"], "threads": threads, "cpu": cpu_name(),
            "new": summary(lambda r: r), "old": summary(lambda r: r["report"]),
            "loss_ratio_median": statistics.median(r["total"] / r["report"]["total"] for r in rows),
            "images": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", type=Path, nargs="+", required=True, help="report.json of styletrans evaluate")
    parser.add_argument("--model", nargs="+", required=True, help="one model per report, in the same order")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "rescore.json")
    args = parser.parse_args()
    if len(args.report) != len(args.model):
        parser.error("give one --model per --report")
    results = {}
    print(f"{'model':40s} {'photos':>6} {'equivalent it. (q1 med q3 max)':>32} {'loss':>9} {'/old':>6} "
          f"{'lattice':>7} {'ms':>6}")
    for report, model in zip(args.report, args.model, strict=True):
        result = rescore(report, model, args.threads)
        results[model] = result
        for label, part, ratio in ((result["report_model"], result["old"], 1.0),
                                   (model, result["new"], result["loss_ratio_median"])):
            print(f"{label:40s} {len(result['images']):6d} {part['equivalent_quartiles_max']!s:>32} "
                  f"{part['total_median']:9.4g} {ratio:6.3f} {part['lattice_median']:7.3f} {part['ms_median']:6.0f}")
    write_json(args.json, results)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
