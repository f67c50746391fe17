"""Load test of ``styletrans serve`` on loopback: dynamic batching on vs off, side by side.

    python benchmarks/serve_load.py                                   # 1, 4, 16, 64 clients, ~8 min on 2 cores
    python benchmarks/serve_load.py --clients 16 --duration 8         # the goal's cell only

Starts the real server (a subprocess, 127.0.0.1, a free port) on the ``light`` network
with random weights exported to ONNX (speed does not depend on the weights), once with
batching (``--max-batch-size 8 --batch-timeout-ms 10``) and once without (batch size 1).
For each number of concurrent clients, every client sends 512x512 JPEGs back to back
for ``--duration`` seconds (at most ``--max-requests`` in all), asking for JPEG back; a
503 makes it wait ``Retry-After`` (at most 1 s), as a polite client would. Requests
still running at the end are waited for; those started in the window count, and
throughput is their number of 200s over the time until the last of them finished.

Reports throughput (200s per second), p50/p95/p99 latency of the 200s, the count of
every status, the mean batch size (from /metrics) and the server's resident memory
(sampled every 0.25 s; "flat" means it grows by less than 64 MB in the second half of
a cell, once ONNX Runtime's arena has reached the largest batch). Prints a table,
writes JSON (--json).

Goals: batching >= 1.3x the throughput of batch size 1 at 16 clients; at 64 clients
no status but 200 and 503, and the server's memory flat.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from common import write_json

ROOT = Path(__file__).resolve().parent
MODES = {"batching": ["--max-batch-size", "8", "--batch-timeout-ms", "10"], "no-batching": ["--max-batch-size", "1"]}


def export_model(folder: Path, preset: str) -> Path:
    import torch

    from styletrans.export import export_onnx
    from styletrans.models.transformer import TransformerConfig, TransformerNet

    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig.preset(preset))
    return export_onnx(net, folder / f"{preset}.onnx", metadata={"style_name": preset})


def photo_jpeg(size: int) -> bytes:
    from PIL import Image

    from styletrans.assets import bundled
    from styletrans.images import open_rgb

    photos = bundled("photos")
    image = open_rgb(photos[sorted(photos)[0]]).resize((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.samples = pid, every, []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            value = rss_mb(self.pid)
            if value is not None:
                self.samples.append(value)

    def summary(self) -> dict[str, float] | None:
        self.stopped.set()
        self.join()
        s = self.samples
        if not s:
            return None
        # ONNX Runtime's arena grows once to the largest batch; a leak keeps growing after that.
        late_growth = s[-1] - max(s[: max(1, len(s) // 2)])
        return {"first": round(s[0], 1), "last": round(s[-1], 1), "max": round(max(s), 1),
                "growth_second_half": round(late_growth, 1), "samples": len(s)}


def batch_stats(client: httpx.Client) -> tuple[float, float, float]:
    """(requests, batches, network seconds) so far, from the server's batch histograms."""
    from prometheus_client.parser import text_string_to_metric_families

    stats = {"styletrans_batch_size_sum": 0.0, "styletrans_batch_size_count": 0.0, "styletrans_batch_seconds_sum": 0.0}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name in stats:
                stats[sample.name] += sample.value
    return tuple(stats.values())


async def load(url: str, payload: bytes, clients: int, duration: float, max_requests: int) -> dict[str, Any]:
    """Closed loop: ``clients`` tasks send requests back to back until the window closes."""
    results: list[tuple[float, float, int]] = []  # (start, latency, status)
    issued = 0
    start = time.perf_counter()
    deadline = start + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one_client() -> None:
            nonlocal issued
            while time.perf_counter() < deadline and issued < max_requests:
                issued += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post(url, content=payload, params={"format": "jpeg"},
                                                 headers={"Content-Type": "image/jpeg"})
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0  # connection-level failure
                    response = None
                results.append((t0, time.perf_counter() - t0, status))
                if status == 503 and response is not None:
                    await asyncio.sleep(min(1.0, float(response.headers.get("retry-after", 1))))

        await asyncio.gather(*(one_client() for _ in range(clients)))
    ended = time.perf_counter()
    counted = [r for r in results if r[0] < deadline]
    ok = sorted(latency for _, latency, status in counted if status == 200)
    # Every counted request is measured to its end: throughput over the time until the last one finished
    # (batches finish 8 at a time, so counting completions inside the window alone would be lumpy).
    last_end = max((t0 + latency for t0, latency, _ in counted), default=deadline)
    statuses: dict[str, int] = {}
    for _, _, status in counted:
        statuses[str(status)] = statuses.get(str(status), 0) + 1

    def pct(q: float) -> float | None:
        return round(1000 * ok[min(len(ok) - 1, int(q * len(ok)))], 1) if ok else None

    return {"clients": clients, "requests": len(counted), "statuses": statuses,
            "throughput_rps": round(len(ok) / (last_end - start), 3),
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "mean_ms": round(1000 * statistics.fmean(ok), 1) if ok else None,
            "seconds": round(ended - start, 1)}


def run_mode(mode: str, models_dir: Path, payload: bytes, args: argparse.Namespace) -> list[dict[str, Any]]:
    port = free_port()
    command = [sys.executable, "-m", "styletrans", "serve", "--models-dir", str(models_dir), "--port", str(port),
               "--reload-interval", "0", "--log-level", "warning", "--request-timeout", str(args.request_timeout),
               *MODES[mode]]
    if args.threads:
        command += ["--threads", str(args.threads)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            deadline = time.monotonic() + 180
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"server exited with status {server.returncode}")
                try:
                    if client.get("/health/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server not ready after 180 s")
                time.sleep(0.2)
            style = client.get("/v1/styles").json()["styles"][0]["name"]
            for _ in range(2):  # warm-up: first-call allocations
                client.post(f"/v1/stylize/{style}", content=payload, headers={"Content-Type": "image/jpeg"})
            for clients in args.clients:
                before = batch_stats(client)
                sampler = RssSampler(server.pid)
                sampler.start()
                row = asyncio.run(load(f"{base}/v1/stylize/{style}", payload, clients, args.duration,
                                       args.max_requests))
                row["rss_mb"] = sampler.summary()
                after = batch_stats(client)
                served, batches, seconds = (a - b for a, b in zip(after, before, strict=True))
                row["mean_batch_size"] = round(served / batches, 2) if batches else None
                # The network's own time per image: batching can only win if this falls with the batch size.
                row["network_ms_per_image"] = round(1000 * seconds / served, 1) if served else None
                row["mode"] = mode
                rows.append(row)
                print(format_row(row), flush=True)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    return rows


HEADER = (f"{'mode':<12} {'clients':>7} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'batch':>5} {'net ms':>6} {'RSS MB first/last/max':>22}  statuses")


def format_row(row: dict[str, Any]) -> str:
    rss = row["rss_mb"]
    memory = f"{rss['first']:.0f}/{rss['last']:.0f}/{rss['max']:.0f}" if rss else "n/a"

    def ms(value: float | None) -> str:
        return f"{value:8.0f}" if value is not None else f"{'-':>8}"

    batch = f"{row['mean_batch_size']:5.2f}" if row["mean_batch_size"] else f"{'-':>5}"
    network = f"{row['network_ms_per_image']:6.0f}" if row["network_ms_per_image"] else f"{'-':>6}"
    return (f"{row['mode']:<12} {row['clients']:>7} {row['requests']:>8} {row['throughput_rps']:>7.2f} "
            f"{ms(row['p50_ms'])} {ms(row['p95_ms'])} {ms(row['p99_ms'])} {batch} {network} {memory:>22}  "
            f"{row['statuses']}")


def checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = {(r["mode"], r["clients"]): r for r in rows}
    out: dict[str, Any] = {}
    if ("batching", 16) in by and ("no-batching", 16) in by and by[("no-batching", 16)]["throughput_rps"]:
        ratio = by[("batching", 16)]["throughput_rps"] / by[("no-batching", 16)]["throughput_rps"]
        out["batching_speedup_16_clients"] = {"value": round(ratio, 2), "goal": ">= 1.3", "pass": ratio >= 1.3}
    at64 = [r for r in rows if r["clients"] == 64]
    if at64:
        others = {s: n for r in at64 for s, n in r["statuses"].items() if s not in ("200", "503")}
        out["only_200_or_503_at_64_clients"] = {"other_statuses": others, "pass": not others}
        growth = [r["rss_mb"]["growth_second_half"] for r in at64 if r["rss_mb"]]
        if growth:
            out["memory_flat_at_64_clients"] = {"growth_second_half_mb": growth, "goal": "< 64 MB",
                                                "pass": max(growth) < 64}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds of load per cell (several times a full batch's latency)")
    parser.add_argument("--max-requests", type=int, default=2000, help="requests per cell at most")
    parser.add_argument("--size", type=int, default=512, help="side of the square test photo")
    parser.add_argument("--preset", default="light", choices=["light", "default", "fast"])
    parser.add_argument("--model", type=Path, default=None, help="an exported .onnx to serve instead")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: the server's)")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "serve_load.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(tmp)
        if args.model:
            os.symlink(args.model.resolve(), models_dir / args.model.name)
        else:
            print(f"exporting the {args.preset} network (random weights) ...", flush=True)
            export_model(models_dir, args.preset)
        payload = photo_jpeg(args.size)
        print(HEADER)
        rows = [row for mode in args.modes for row in run_mode(mode, models_dir, payload, args)]

    verdicts = checks(rows)
    for name, verdict in verdicts.items():
        print(f"{'PASS' if verdict['pass'] else 'FAIL'}  {name}: {json.dumps(verdict)}")
    report = {"config": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                         "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                         "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None},
              "rows": rows, "checks": verdicts}
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
