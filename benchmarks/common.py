"""What the benchmark scripts share (they run as ``python benchmarks/NAME.py``, so this
folder is on ``sys.path``)."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path


def cpu_name() -> str:
    """The processor's model name, for the header of a result table."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "CPU"
