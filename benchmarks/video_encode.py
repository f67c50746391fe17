"""What the H.264 encode of `styletrans stylize` costs per frame, by libx264 preset, interleaved.

    python benchmarks/video_encode.py [--clip ../shared/data/video/cup.mp4] [--frames 60] [--repeats 3]

The clip's own frames are encoded at crf 18 (the stylize default) with each preset in turn, each repeat
running every preset once, so that the presets share the machine's state alike; the table gives each
preset's fastest repeat per frame and the file size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from common import cpu_name, write_json

from styletrans.inference.video import read_frames

PRESETS = ("medium", "veryfast", "ultrafast")


def encode(frames: list[np.ndarray], preset: str, path: Path) -> float:
    """Seconds to encode ``frames`` to ``path`` with ``preset``."""
    with av.open(str(path), "w") as sink:
        stream = sink.add_stream("libx264", rate=30)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "18", "preset": preset}
        start = time.perf_counter()
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                sink.mux(packet)
        sink.mux(stream.encode(None))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=Path("../shared/data/video/cup.mp4"))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/video_encode.json"))
    args = parser.parse_args()
    frames = list(read_frames(args.clip, limit=args.frames))  # as `stylize` reads them
    times: dict[str, list[float]] = {preset: [] for preset in PRESETS}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for preset in PRESETS:
                path = Path(tmp) / f"{preset}.mp4"
                times[preset].append(encode(frames, preset, path))
                sizes[preset] = path.stat().st_size
    height, width = frames[0].shape[:2]
    print(f"{cpu_name()}: {len(frames)} frames of {args.clip.name} at {width}x{height}, crf 18")
    print(f"{'preset':10s} {'ms per frame':>12s} {'size (kB)':>10s}")
    rows = []
    for preset in PRESETS:
        ms = 1000 * min(times[preset]) / len(frames)
        rows.append({"preset": preset, "ms_per_frame": ms, "bytes": sizes[preset]})
        print(f"{preset:10s} {ms:12.1f} {sizes[preset] / 1000:10.0f}")
    write_json(args.json, {"cpu": cpu_name(), "clip": args.clip.name, "frames": len(frames),
                           "size": [width, height], "crf": 18, "rows": rows})


if __name__ == "__main__":
    main()
