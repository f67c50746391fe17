"""Stylization speed: PyTorch eager fp32 vs ONNX Runtime fp32 and fp16, side by side.

    python benchmarks/stylize.py                      # both presets, all sizes (a few minutes on 2 cores)
    python benchmarks/stylize.py --presets light --sizes 512 --batches 1 --no-tiled   # one quick figure

Milliseconds per image (median over repeated runs after a warm-up) at 256, 512, 1024 px
squares and 1920x1080, batch 1 and 8, for the ``default`` and ``light`` networks with
random weights (speed does not depend on the weights). Cells whose batch holds more
than --max-batch-pixels are skipped (a 8x1080p batch of the default network takes a
minute per run here). Then a tiled 8000x8000 stylization runs in a subprocess and its
peak resident memory is reported. Prints a table, writes JSON (--json).

Goals on the 2-core CPU: ONNX Runtime >= 1.5x PyTorch eager on the same network, and the
light network at 512x512 in <= 115 ms through ONNX Runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from common import cpu_name

from styletrans.models.transformer import TransformerConfig, TransformerNet

ENGINES = ("torch", "onnx-fp32", "onnx-fp16")
ROOT = Path(__file__).resolve().parent


def parse_size(text: str) -> tuple[int, int]:
    """``512`` -> (512, 512); ``1920x1080`` -> (height 1080, width 1920)."""
    if "x" in text:
        w, h = (int(v) for v in text.split("x"))
        return h, w
    return int(text), int(text)


def time_call(fn: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, min_time: float,
              max_runs: int) -> tuple[list[float], list[float]]:
    """Wall and process-CPU seconds per call: one warm-up, then runs until ``min_time`` has
    passed (at least one). CPU time is the load-independent figure on a shared machine."""
    fn(batch)
    wall: list[float] = []
    cpu: list[float] = []
    while not wall or (sum(wall) < min_time and len(wall) < max_runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(batch)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def run_grid(args: argparse.Namespace, workdir: Path) -> list[dict]:
    from styletrans.export import export_onnx
    from styletrans.inference import OnnxBackend, TorchBackend

    rows = []
    for preset in args.presets:
        torch.manual_seed(0)
        net = TransformerNet(TransformerConfig.preset(preset)).eval()
        engines = {}
        if "torch" in args.engines:
            engines["torch"] = TorchBackend(net, device="cpu")
        for precision in ("fp32", "fp16"):
            if f"onnx-{precision}" in args.engines:
                path = export_onnx(net, workdir / f"{preset}-{precision}.onnx", fp16=precision == "fp16",
                                   overwrite=True)
                engines[f"onnx-{precision}"] = OnnxBackend(path, provider=args.provider, threads=args.threads)
        for h, w in args.sizes:
            for batch_size in args.batches:
                row = {"preset": preset, "size": f"{w}x{h}", "batch": batch_size}
                if batch_size * h * w > args.max_batch_pixels:
                    row["skipped"] = f"batch holds more than {args.max_batch_pixels:.0f} pixels"
                    rows.append(row)
                    print(f"{preset:8} {w}x{h} b{batch_size}: skipped (--max-batch-pixels)", flush=True)
                    continue
                batch = torch.rand(batch_size, 3, h, w)
                for name, engine in engines.items():
                    wall, cpu = time_call(engine, batch, args.min_time, args.max_runs)
                    row[name] = 1000 * statistics.median(wall) / batch_size
                    row[f"{name}_cpu"] = 1000 * statistics.median(cpu) / batch_size
                    row[f"{name}_runs"] = len(wall)
                    print(f"{preset:8} {w}x{h} b{batch_size} {name:10} {row[name]:9.1f} ms/image "
                          f"({row[f'{name}_cpu']:.1f} ms CPU, {len(wall)} runs)", flush=True)
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


def print_table(rows: list[dict], engines: tuple[str, ...]) -> None:
    header = f"{'preset':8} {'size':>9} {'batch':>5} " + " ".join(f"{e + ' ms':>14}" for e in engines)
    header += f" {'ORT/torch':>9}   (CPU ms: " + ", ".join(engines) + ")"
    print("\nms per image, wall clock (median)\n" + header + "\n" + "-" * len(header))
    for row in rows:
        cells = " ".join(f"{row[e]:14.1f}" if e in row else f"{'-':>14}" for e in engines)
        speedup = f"{row['torch'] / row['onnx-fp32']:8.2f}x" if "torch" in row and "onnx-fp32" in row else f"{'-':>9}"
        cpu = ", ".join(f"{row[e + '_cpu']:.0f}" for e in engines if e + "_cpu" in row)
        print(f"{row['preset']:8} {row['size']:>9} {row['batch']:>5} {cells} {speedup}   ({cpu or row.get('skipped')})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["default", "light"], choices=["default", "light"])
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=["256", "512", "1024", "1920x1080"],
                        help="N (square) or WxH")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--max-batch-pixels", type=float, default=4.2e6,
                        help="skip cells whose batch holds more pixels (8x1024x1024 is 8.4e6)")
    parser.add_argument("--min-time", type=float, default=1.5, help="seconds of timed runs per cell (after warm-up)")
    parser.add_argument("--max-runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda", "tensorrt"])
    parser.add_argument("--tiled", type=int, default=8000, help="side of the tiled-memory test image (0: skip)")
    parser.add_argument("--no-tiled", dest="tiled", action="store_const", const=0)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--tiled-preset", default="light", choices=["default", "light"])
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
    engines = tuple(e for e in ENGINES if e in args.engines)
    print_table(rows, engines)
    speedups = [r["torch"] / r["onnx-fp32"] for r in rows if "torch" in r and "onnx-fp32" in r]
    goals = {}
    if speedups:
        goals["onnx_vs_torch_speedup"] = {"min": min(speedups), "median": statistics.median(speedups), "goal": 1.5}
        print(f"\nONNX Runtime fp32 vs PyTorch eager: {min(speedups):.2f}x to {max(speedups):.2f}x "
              f"(median {statistics.median(speedups):.2f}x; goal >= 1.5x)")
    light512 = [r for r in rows if r["preset"] == "light" and r["size"] == "512x512" and "onnx-fp32" in r]
    if light512:
        best = min(r["onnx-fp32"] for r in light512)
        goals["light_512_onnx_ms"] = {"value": best, "goal": 115}
        print(f"light network, 512x512, ONNX Runtime fp32: {best:.1f} ms/image (goal <= 115 ms)")
    if tiled:
        print(f"tiled: {json.dumps(tiled)}")
    report = {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": args.threads, "load_average_at_start": load,
              "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "provider": args.provider,
              "rows": rows, "goals": goals, "tiled": tiled}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
