"""``styletrans batch`` (Ray Data, local Ray) against plain ``styletrans stylize`` on the same photos.

    python benchmarks/batch.py                                  # 200 photos of ../shared/data/dev_eval
    python benchmarks/batch.py --photos DIR --limit 50 --rounds 1

Both commands run as a user runs them (a fresh process each, model loading and, for Ray,
starting the local Ray and its actors included), on the same photos with the same model,
into fresh output folders. Rounds alternate the order (plain, Ray, then Ray, plain) so
that a load change on a shared machine hits both alike. Reported per run: wall seconds
end to end and images/s; for Ray also the per-actor rate (1 / actor-seconds per image),
from which the throughput of N actors is about N times that figure while each has its own
cores and the storage keeps up. Prints a table, writes JSON (--json).

Goal (issue 15): on 2 cores the Ray path loses at most 15 % to the single process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import cpu_name, write_json

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent


def run(cmd: list[str], expect_images: int) -> dict:
    """Run one command; wall seconds and what it wrote."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = Path(cmd[cmd.index("-o") + 1])
    written = sum(1 for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
    if written != expect_images:
        sys.exit(f"{' '.join(cmd)} wrote {written} images, expected {expect_images}")
    return {"wall_s": round(wall, 2), "images_per_s": round(written / wall, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "data" / "dev_eval")
    parser.add_argument("--limit", type=int, default=200, help="photos to use (default: 200)")
    parser.add_argument("--model", default=str(REPO / "styletrans" / "assets" / "models" / "starry_night.onnx"))
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (default: 2)")
    parser.add_argument("--rounds", type=int, default=1, help="ABBA rounds: 2 runs of each per round (default: 1)")
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "batch.json")
    args = parser.parse_args()

    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.limit]
    if len(photos) < args.limit:
        sys.exit(f"{args.photos}: {len(photos)} photos, fewer than --limit {args.limit}")
    exe = str(Path(sys.executable).parent / "styletrans")
    common = ["-m", args.model, "--precision", "float", "--quiet"]
    results: dict[str, list[dict]] = {"stylize": [], "batch": []}
    ray_reports: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "photos"  # one folder, so both commands take the same single input
        source.mkdir()
        for p in photos:
            os.symlink(p.resolve(), source / p.name)

        def once(kind: str, n: int) -> None:
            out = Path(tmp) / f"{kind}-{n}"
            if kind == "stylize":
                cmd = [exe, "stylize", str(source), "-o", str(out), *common]
            else:
                report = Path(tmp) / f"report-{n}.json"
                cmd = [exe, "batch", str(source), "-o", str(out), "--num-cpus", str(args.cpus),
                       "--report", str(report), *common]
            result = run(cmd, len(photos))
            if kind == "batch":
                summary = json.loads(report.read_text())
                result.update(job_s=summary["seconds"], actors=summary["actors"],
                              per_actor_images_per_s=round(1 / summary["actor_seconds_per_image"], 3))
                ray_reports.append(summary)
            results[kind].append(result)
            print(f"{kind:8s} run {n}: {result}", file=sys.stderr)
            shutil.rmtree(out)

        n = 0
        for _ in range(args.rounds):
            for kind in ("stylize", "batch", "batch", "stylize"):
                n += 1
                once(kind, n)

    plain = statistics.median(r["wall_s"] for r in results["stylize"])
    ray_wall = statistics.median(r["wall_s"] for r in results["batch"])
    per_actor = statistics.median(r["per_actor_images_per_s"] for r in results["batch"])
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    summary = {
        "cpu": cpu_name(), "cores": os.cpu_count(), "load_average_after": load, "photos": len(photos),
        "photo_dir": os.path.relpath(args.photos, REPO), "model": Path(args.model).name, "ray_cpus": args.cpus,
        "runs": results, "median_wall_s": {"stylize": round(plain, 2), "batch": round(ray_wall, 2)},
        "ray_over_plain_time": round(ray_wall / plain, 3), "per_actor_images_per_s": per_actor,
    }
    print(f"\n{len(photos)} photos, {Path(args.model).name}, {cpu_name()} ({os.cpu_count()} cores), "
          f"load average after: {' '.join(load)}")
    print("| command | runs: wall s | median wall s | images/s |")
    print("|---|---|---|---|")
    for kind, label in (("stylize", "styletrans stylize (1 process)"),
                        ("batch", f"styletrans batch (local Ray, {args.cpus} CPUs)")):
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in results[kind])
        median = statistics.median(r["wall_s"] for r in results[kind])
        print(f"| {label} | {walls} | {median:.1f} | {len(photos) / median:.2f} |")
    print(f"\nRay / plain wall time: {ray_wall / plain:.2f} (goal <= 1.15); per actor: {per_actor:.2f} images/s "
          f"(actor-seconds per image, 1 CPU each)")
    write_json(args.json, summary)


if __name__ == "__main__":
    main()
