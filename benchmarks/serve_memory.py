"""Resident memory of the server's network calls per request size, and what bounds it.

    python benchmarks/serve_memory.py                       # the bundled starry_night.onnx and its int8 variant
    python benchmarks/serve_memory.py --sizes 512 1024 2048 --modes arena no-arena shrink

Each (model, memory mode) runs in a fresh subprocess that loads the model the way
``styletrans serve`` does (``Stylizer``, 2 threads) and then runs, in order, one
batch per ``--steps`` entry (``SIDExSIDE`` photo-sized input, ``bB`` images per batch);
after each batch it records the peak resident memory so far (VmHWM) and the resident
memory once the call has returned (VmRSS), and at the end the RSS after ``--idle``
seconds. Memory modes:

- ``arena``: ONNX Runtime's CPU arena (its default): grows to the largest batch, never shrinks;
- ``shrink``: the arena, shrunk after every call (run option ``memory.enable_memory_arena_shrinkage``);
- ``no-arena``: no arena: every tensor from malloc, large ones returned to the OS when freed.

The peak of one call grows with the pixels in its batch; the server bounds it with
``--max-batch-pixels`` (a batch never holds more pixels than that, one image at least).
Prints a table, writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import cpu_name, write_json

ROOT = Path(__file__).resolve().parent
BUNDLED = ROOT.parent / "styletrans" / "assets" / "models"  # the bundled styles, package data
MODES = ("arena", "shrink", "no-arena")


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def worker(model: str, mode: str, steps: list[str], idle: float) -> None:
    import torch

    from styletrans.inference import Stylizer

    torch.set_num_threads(2)
    stylizer = Stylizer(model, backend="onnx", provider="cpu", threads=2, memory=mode)
    out = {"loaded_rss_mb": round(status_mb("VmRSS")), "steps": []}
    for step in steps:
        side, batch = step.split("b")
        h, w = (int(v) for v in side.split("x"))
        x = torch.rand(int(batch), 3, h, w)
        start = time.perf_counter()
        stylizer.run(x)
        seconds = time.perf_counter() - start
        del x
        out["steps"].append({"step": step, "seconds": round(seconds, 2), "peak_mb": round(status_mb("VmHWM")),
                             "rss_after_mb": round(status_mb("VmRSS"))})
        print(json.dumps(out["steps"][-1]), file=sys.stderr, flush=True)
    time.sleep(idle)
    out["settled_rss_mb"] = round(status_mb("VmRSS"))
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", type=Path,
                        default=[BUNDLED / "starry_night.onnx", BUNDLED / "starry_night.int8.onnx"])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--steps", nargs="+",
                        default=["512x512b1", "1024x1024b1", "2048x1365b1", "2048x2048b1", "1024x1024b4",
                                 "512x512b1"],
                        help="HxWbB: one batch of B images of H x W, in this order")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds before the settled RSS is read")
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "serve_memory.json")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.steps, args.idle)
        return
    runs = []
    for model in args.models:
        for mode in args.modes:
            print(f"{model.name} {mode}: {' '.join(args.steps)}", flush=True)
            done = subprocess.run([sys.executable, __file__, "--worker", str(model), mode, "--steps", *args.steps,
                                   "--idle", str(args.idle)], stdout=subprocess.PIPE, text=True, check=False)
            if done.returncode != 0:
                runs.append({"model": model.name, "mode": mode, "error": f"exit {done.returncode}"})
                continue
            runs.append({"model": model.name, "mode": mode, **json.loads(done.stdout.strip().splitlines()[-1])})
    header = f"{'model':26} {'mode':9} {'loaded':>7} " + " ".join(f"{s:>21}" for s in args.steps)
    units = f"{'':26} {'':9} {'MB':>7} " + " ".join(f"{'s / peak / after MB':>21}" for _ in args.steps)
    print(f"\n{header} {'settled':>8}\n{units}")
    for run in runs:
        if "error" in run:
            print(f"{run['model']:26} {run['mode']:9} {run['error']}")
            continue
        cells = " ".join(f"{s['seconds']:>5.1f} /{s['peak_mb']:>6} /{s['rss_after_mb']:>6}" for s in run["steps"])
        print(f"{run['model']:26} {run['mode']:9} {run['loaded_rss_mb']:>7} {cells} {run['settled_rss_mb']:>8}")
    report = {"cpu": cpu_name(), "cores": os.cpu_count(), "load_average_at_start": os.getloadavg()[0],
              "steps": args.steps, "runs": runs}
    write_json(args.json, report)


if __name__ == "__main__":
    main()
