"""Gatys optimization speed: L-BFGS iterations per second at several sizes, and the time to a
finished 512 px result with the default settings (the CPU target: at most 3 minutes on 2 cores).

    python benchmarks/optimize.py [--sizes 256 512] [--iterations 20] [--device auto]
                                  [--precision fp32 bf16] [--end-to-end] [--no-default]
                                  [--photo chelsea]

Prints a table and writes JSON (default benchmarks/results/optimize-<device>.json).
``--end-to-end`` also times a full 512 px x 300-iteration run (the GPU target: < 3 s).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import cpu_name, write_json

from styletrans.assets import bundled
from styletrans.images import load_image
from styletrans.optimize.gatys import PRESETS, GatysSettings, run_gatys

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_run(size: int, iterations: int | None, precision: str, device: torch.device, loss_network: str,
             photo: str = "chelsea") -> dict:
    """``iterations`` at ``size`` only, or the default preset's whole schedule when None."""
    content = load_image(bundled("photos")[photo], size)
    style = load_image(bundled("styles")["starry_night"], size)
    if iterations is None:
        settings = replace(PRESETS["default"](tuple(content.shape[-2:])), loss_network=loss_network)
    else:
        settings = GatysSettings(loss_network=loss_network, iterations=iterations)
    loss = settings.build_loss(device)
    common = dict(device=device, loss=loss, autocast_dtype=PRECISIONS[precision], progress=False)
    run_gatys(content, style, GatysSettings(loss_network=loss_network, iterations=2), **common)  # warm-up
    _sync(device)
    start = time.perf_counter()
    result = run_gatys(content, style, settings, **common)
    _sync(device)
    seconds = time.perf_counter() - start
    steps = len(result.history)
    return {"size": size, "hw": list(result.image.shape[-2:]), "precision": precision, "iterations": steps,
            "schedule": "default preset" if iterations is None else "at size", "seconds": round(seconds, 3),
            "iterations_per_s": round(steps / seconds, 2), "final_loss": round(result.losses[-1], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--precision", nargs="+", choices=sorted(PRECISIONS), default=None,
                        help="default: fp32 on CPU, fp32 and bf16 on GPU")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--loss-network", default="vgg16-caffe")
    parser.add_argument("--photo", default="chelsea", help="bundled photo (chelsea: 512x341; astronaut: square)")
    parser.add_argument("--end-to-end", action="store_true", help="also 512 px x 300 iterations, whole run")
    parser.add_argument("--no-default", action="store_true", help="skip the default preset's 512 px run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    precisions = args.precision or (["fp32", "bf16"] if device.type == "cuda" else ["fp32"])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{cpu_name()} ({torch.get_num_threads()} threads)"
    rows = [time_run(size, args.iterations, p, device, args.loss_network, args.photo)
            for size in args.sizes for p in precisions]
    if args.end_to_end:
        rows += [dict(time_run(512, 300, p, device, args.loss_network, args.photo), end_to_end=True)
                 for p in precisions]
    if not args.no_default:
        rows += [time_run(512, None, p, device, args.loss_network, args.photo) for p in precisions]

    print(f"Gatys L-BFGS on {name}, loss network {args.loss_network}")
    print(f"{'size':>9} {'schedule':>15} {'precision':>9} {'iters':>6} {'seconds':>8} {'iters/s':>8} "
          f"{'final loss':>11}")
    for r in rows:
        hw = f"{r['hw'][1]}x{r['hw'][0]}"
        print(f"{hw:>9} {r['schedule']:>15} {r['precision']:>9} {r['iterations']:>6}"
              f" {r['seconds']:>8.2f} {r['iterations_per_s']:>8.2f}"
              f" {r['final_loss']:>11.4g}")
    out = args.json or Path(__file__).parent / "results" / f"optimize-{device.type}.json"
    write_json(out, {"device": name, "torch": torch.__version__, "photo": args.photo, "rows": rows})


if __name__ == "__main__":
    main()
