"""Temporal consistency on real footage: flicker, style and speed, frame by frame and with ``--temporal``.

    python benchmarks/temporal.py                 # the four clips in ../shared/data/video, every bundled style
    python benchmarks/temporal.py --clips ../shared/data/video/box.mp4 --models starry_night --limit 60

For each clip, at its own size, and each model (default: the bundled styles, run as
``styletrans stylize -m NAME`` runs them), one pass of ``styletrans.evaluation.video.evaluate_clip``:

- the warping error (Lai et al. 2018) of the source clip itself, the floor that flow errors set;
  of the network's output frame by frame; and with the ``--temporal`` blend; the ratios of the
  last two to the floor. Goal: with ``--temporal``, at most 1.5x the floor;
- the change in style loss per frame with the blend against frame by frame, sampled every
  ``--style-loss-every`` frames (the yardstick loss, a VGG pass per sample). Goal: at most +10 %;
- the pan number at 1 px and the noise number (``styletrans.evaluation.stability``) on the clip's first
  frame, both ways;
- frames per second at 640x480 (each clip's first ``--fps-frames`` frames resized), network alone
  and network plus blend, its optical flow included, one after the other; decoding and encoding not
  counted;
- frames per second of the whole ``styletrans stylize`` path (decode, network, blend, encode) on
  ``--fps-clip`` at 640 px, the first model, frame by frame and with ``--temporal``: there the blend
  of one batch overlaps the network's next batch. Goal: at least 15 with the blend.

Prints a table (warping errors x1000) and where each goal stands, writes JSON (``--output``) and a
plot of the error per frame pair (``--plot``).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

from common import cpu_name, write_json

ROOT = Path(__file__).resolve().parent
CLIPS = ROOT.parent.parent / "shared" / "data" / "video"
DEFAULT_CLIPS = ("vtest.avi", "tree.avi", "box.mp4", "cup.mp4")
RATIO_GOAL, STYLE_GOAL, FPS_GOAL = 1.5, 0.10, 15.0
FPS_SIZE = (640, 480)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", nargs="+", type=Path, default=[CLIPS / name for name in DEFAULT_CLIPS])
    parser.add_argument("--models", nargs="+", default=None,
                        help="model names or files (default: every bundled style)")
    parser.add_argument("--limit", type=int, default=None, help="the first N frames of each clip (default: all)")
    parser.add_argument("--style-loss-every", type=int, default=30, metavar="K",
                        help="measure the style loss every K frames (0: not at all; default: 30)")
    parser.add_argument("--fps-frames", type=int, default=20, help="frames timed at 640x480 (default: 20)")
    parser.add_argument("--fps-clip", type=Path, default=CLIPS / "cup.mp4",
                        help="clip timed end to end at 640 px (default: cup.mp4, 640x480); 'none' to skip")
    parser.add_argument("--flow", choices=("medium", "farneback"), default="medium",
                        help="the evaluation's flow: DIS medium (default) or Farneback, another family: the "
                        "independent check on a blend that carries its output along DIS")
    parser.add_argument("--temporal-weight", type=float, default=None, help="the blend's weight (default: its own)")
    parser.add_argument("--threads", type=int, default=2, help="threads for ONNX Runtime, OpenCV and PyTorch")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "temporal.json")
    parser.add_argument("--plot", type=Path, default=None, help="default: --output with .png")
    args = parser.parse_args()

    import cv2
    import torch

    from styletrans.evaluation.video import (
        evaluate_clip,
        format_table,
        frames_per_second,
        render_error_plot,
        style_loss_for,
        summary_rows,
    )
    from styletrans.inference import Stylizer, resolve_model
    from styletrans.inference.registry import bundled_models_dir, list_models, pick_precision
    from styletrans.inference.temporal import TemporalSettings
    from styletrans.inference.video import read_frames, stylize_video

    if args.limit is not None and args.limit < 2:
        parser.error("--limit needs at least 2 frames (one pair)")
    missing = [str(c) for c in args.clips if not c.is_file()]
    if missing:
        parser.error(f"no such clip: {', '.join(missing)}")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    settings = TemporalSettings() if args.temporal_weight is None else TemporalSettings(weight=args.temporal_weight)
    specs = args.models or list(list_models([bundled_models_dir()]))
    models = {spec: pick_precision(resolve_model(spec), "auto") for spec in specs}  # as `stylize` runs them
    stylizers = {s.style_name: s for s in (Stylizer(path, threads=args.threads) for path in models.values())}
    print(f"{cpu_name()}, {args.threads} threads; models: " + ", ".join(f"{n} ({p.name})" for n, p in
          zip(stylizers, models.values(), strict=True)), flush=True)

    results, rows, speeds = [], [], {}
    for clip in args.clips:
        started = time.perf_counter()
        first = next(read_frames(clip, limit=1))
        losses = ({name: style_loss_for(s, max(first.shape[:2])) for name, s in stylizers.items()}
                  if args.style_loss_every else {})
        result = evaluate_clip(clip, stylizers, limit=args.limit, temporal=settings, losses=losses,
                               style_every=args.style_loss_every, flow=args.flow)
        speeds[clip.name] = {}
        for row in summary_rows(result):
            frames = (cv2.resize(f, FPS_SIZE, interpolation=cv2.INTER_AREA)
                      for f in read_frames(clip, limit=max(3, args.fps_frames)))
            fps = frames_per_second(stylizers[row["style"]], frames, settings)
            speeds[clip.name][row["style"]] = fps
            row.update({f"fps_{mode}": value for mode, value in fps.items()})
            rows.append(row)
        result["seconds"] = time.perf_counter() - started
        results.append(result)
        print(f"{clip.name}: {result['frames']} frames at {result['size'][0]}x{result['size'][1]} "
              f"in {result['seconds']:.0f} s", flush=True)

    pipeline = {}
    if str(args.fps_clip) != "none":
        name, stylizer = next(iter(stylizers.items()))
        with tempfile.TemporaryDirectory() as tmp:
            for mode, temporal in (("frame_by_frame", None), ("temporal", settings)):
                started = time.perf_counter()
                done = stylize_video(stylizer, args.fps_clip, Path(tmp) / f"{mode}.mp4", size=FPS_SIZE[0],
                                     temporal=temporal, progress=False)
                pipeline[mode] = done["frames"] / (time.perf_counter() - started)
        pipeline.update(clip=args.fps_clip.name, style=name, size=done["size"])
        print(f"styletrans stylize on {args.fps_clip.name} at {done['size'][0]}x{done['size'][1]} ({name}), decode "
              f"and encode included: {pipeline['frame_by_frame']:.1f} fps frame by frame, "
              f"{pipeline['temporal']:.1f} fps with --temporal", flush=True)

    print("\nwarping error x1000 (Lai et al. 2018) at each clip's own size; ratio: to the source clip's own; "
          "style loss: change with the blend; fps: at 640x480, flow included; pan: grey levels at 1 px; "
          "noise: grey levels on a still shot with 1 level of noise")
    print(format_table(rows))
    goals = goal_summary(rows, pipeline)
    for line in goals["lines"]:
        print(line)

    report = {
        "command": " ".join(sys.argv), "cpu": cpu_name(), "threads": args.threads,
        "models": {name: str(path) for name, path in zip(stylizers, models.values(), strict=True)},
        "limit": args.limit, "flow": args.flow, "style_loss_every": args.style_loss_every, "fps_size": list(FPS_SIZE),
        "fps_frames": args.fps_frames, "goals": goals, "rows": rows, "fps_640x480": speeds,
        "fps_stylize": pipeline, "clips": results,
    }
    write_json(args.output, report)
    plot = render_error_plot(results, args.plot or args.output.with_suffix(".png"))
    print(f"wrote {plot}")


def goal_summary(rows: list[dict], pipeline: dict) -> dict:
    """Where each goal stands over the rows: how many meet it, and the worst value. The speed goal is
    judged on the whole stylize path (``pipeline``) where it was timed, else on the per-frame figures."""

    def known(key: str) -> list[float]:
        return [r[key] for r in rows if r.get(key) is not None and not math.isnan(r[key])]

    ratio, style, fps = known("ratio_temporal"), known("style_loss_change"), known("fps_temporal")
    if "temporal" in pipeline:
        fps = [pipeline["temporal"]]
    summary = {
        "warping_ratio": {"goal": RATIO_GOAL, "met": sum(v <= RATIO_GOAL for v in ratio), "of": len(ratio),
                          "worst": max(ratio, default=None)},
        "style_loss_change": {"goal": STYLE_GOAL, "met": sum(v <= STYLE_GOAL for v in style), "of": len(style),
                              "worst": max(style, default=None)},
        "fps_640x480": {"goal": FPS_GOAL, "met": sum(v >= FPS_GOAL for v in fps), "of": len(fps),
                        "worst": min(fps, default=None)},
    }
    lines = []
    for key, label, form in (("warping_ratio", "warping error with --temporal <= {goal}x the source's", "{:.2f}x"),
                             ("style_loss_change", "style loss change <= +{goal:.0%}", "{:+.1%}"),
                             ("fps_640x480", "at least {goal:g} fps at 640x480 with the blend", "{:.1f}")):
        entry = summary[key]
        worst = "not measured" if entry["worst"] is None else f"worst {form.format(entry['worst'])}"
        lines.append(f"goal: {label.format(goal=entry['goal'])}: met in {entry['met']} of {entry['of']} ({worst})")
    summary["lines"] = lines
    return summary


if __name__ == "__main__":
    main()
