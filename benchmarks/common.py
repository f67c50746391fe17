"""What the benchmark scripts share (they run as ``python benchmarks/NAME.py``, so this
folder is on ``sys.path``)."""

from __future__ import annotations

import contextlib
import json
import platform
from pathlib import Path


def cpu_name() -> str:
    """The processor's model name, for the header of a result table."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "CPU"


def write_json(path: Path, report: dict) -> None:
    """Write a benchmark's results, creating the folder, and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")
