"""A training checkpoint small enough to commit: the same resumable file without the style Gram targets.

    python train/slim_checkpoint.py runs/ms7/checkpoints/last.ckpt train/resume/multistyle7.ckpt
    python train/slim_checkpoint.py --base runs/ms7/checkpoints/last.ckpt styletrans/assets/models/multistyle7.ckpt

The Gram targets are a record (a multi-style checkpoint's are about 10 MB); a resumed run recomputes them
from the style files, whose SHA-256 stays in the file. Everything a resume needs (weights, optimizer state,
step, data position, callbacks' state) is kept, and the result loads with ``weights_only=True``.
``--base`` keeps only what a fine-tune needs from its base (the network's weights, the hyper-parameters
and the style records): the bundled base, not resumable.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from styletrans.atomic import atomic_path

BASE_KEYS = ("state_dict", "hyper_parameters", "styles", "pytorch-lightning_version")


def slim(source: Path, target: Path, base: bool = False) -> Path:
    payload = torch.load(source, map_location="cpu", weights_only=True)
    if base:
        payload = {k: v for k, v in payload.items() if k in BASE_KEYS}
        payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if k.startswith("transformer.")}
    for record in payload.get("styles", []) + ([payload["style"]] if "style" in payload else []):
        record.pop("grams", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, overwrite=True) as tmp:
        torch.save(payload, tmp)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--base", action="store_true", help="weights, hyper-parameters and styles only")
    args = parser.parse_args()
    path = slim(args.source, args.target, base=args.base)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, from {args.source.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
