"""ONNX Runtime settings for a style model, each measured side by side (interleaved medians).

    python benchmarks/ort_tuning.py --model models/starry_night.onnx --model models/starry_night.int8.onnx

Per model: session start-up time and ms per 512x512 image for
- graph optimization levels basic / extended / all;
- the model optimized offline (``optimized_model_filepath`` at level ``all``), then loaded
  with optimizations off: start-up without the optimization passes;
- intra-op threads 1 and 2, spinning on and off (``session.intra_op.allow_spinning``);
- the CPU memory arena off (what ``styletrans serve`` uses: see benchmarks/serve_memory.py).
Writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import cpu_name, write_json

ROOT = Path(__file__).resolve().parent


def session(path: Path, level: str = "all", threads: int = 2, spinning: bool = False, arena: bool = True,
            save_to: Path | None = None) -> tuple[object, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "off": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    options.intra_op_num_threads = threads
    options.enable_cpu_mem_arena = arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    start = time.perf_counter()
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return sess, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "ort_tuning.json")
    args = parser.parse_args()
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.model:
            optimized = Path(tmp) / f"{model.stem}.optimized.onnx"
            configs = {"basic": {"level": "basic"}, "extended": {"level": "extended"}, "all": {"level": "all"},
                       "all, 1 thread": {"level": "all", "threads": 1},
                       "all, spinning": {"level": "all", "spinning": True},
                       "all, no arena": {"level": "all", "arena": False}}
            sessions, startup = {}, {}
            for name, config in configs.items():
                sessions[name], startup[name] = session(model, **config)
            _, startup["offline optimize + save"] = session(model, "all", save_to=optimized)
            name = "offline-optimized, level off"
            sessions[name], startup[name] = session(optimized, "off")
            wall = {name: [] for name in sessions}
            cpu = {name: [] for name in sessions}
            for sess in sessions.values():
                sess.run(None, {"image": x})
            for _ in range(args.rounds):
                for name, sess in sessions.items():
                    start, start_cpu = time.perf_counter(), time.process_time()
                    sess.run(None, {"image": x})
                    wall[name].append(1000 * (time.perf_counter() - start))
                    cpu[name].append(1000 * (time.process_time() - start_cpu))
            results[model.name] = {
                name: {"ms": statistics.median(wall[name]), "cpu_ms": statistics.median(cpu[name]),
                       "startup_s": startup.get(name)} for name in sessions}
            results[model.name]["offline optimize + save"] = {"startup_s": startup["offline optimize + save"]}
            print(f"\n{model.name} at {args.size}x{args.size}, {args.rounds} interleaved rounds")
            for name, r in results[model.name].items():
                ms = f"{r['ms']:8.0f} ms ({r['cpu_ms']:.0f} CPU)" if "ms" in r else " " * 22
                print(f"  {name:32} {ms}  start-up {r['startup_s']:.2f} s", flush=True)
    report = {"cpu": cpu_name(), "cores": os.cpu_count(), "load_average": os.getloadavg()[0], "size": args.size,
              "models": results}
    write_json(args.json, report)


if __name__ == "__main__":
    main()
