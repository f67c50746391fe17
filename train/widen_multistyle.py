"""A wider copy of a trained network that computes exactly what it computes (Net2Net's idea, Chen et al. 2016).

    python train/widen_multistyle.py train/resume/multistyle7.ckpt 48 /tmp/wide.ckpt
    styletrans train --config configs/recipes/multistyle.yaml --data PHOTOS --model.init_from /tmp/wide.ckpt \\
        --model.transformer '{base_channels: 48, residual_blocks: 4, space_to_depth: true}'

Why: the 24-channel network's output stays far above its loss's optimum, and the question was whether
width is what it lacks (models/README.md, "Why the trained network does not get there": at step 33,500,
48/96 channels learned no faster). Widening keeps the hours the network was trained.
Every convolution keeps its weights; the channels it gains read the old ones through fresh random weights,
and the old channels read the new ones through zeros, so the output is unchanged until training moves
those zeros (their gradients are not zero: the new channels are not).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from styletrans.atomic import atomic_path
from styletrans.models.checkpoint import load_transformer
from styletrans.models.transformer import TransformerNet


def widen(net: TransformerNet, base_channels: int, seed: int = 0) -> TransformerNet:
    """``net`` with ``base_channels`` (at least its own), the same function of its input."""
    if base_channels < net.config.base_channels:
        raise ValueError(f"base_channels {base_channels} is narrower than the network's {net.config.base_channels}")
    with torch.random.fork_rng():  # the new channels' draw leaves the caller's generator alone
        torch.manual_seed(seed)
        wide = TransformerNet(replace(net.config, base_channels=base_channels))
    state = wide.state_dict()
    for name, old in net.state_dict().items():
        new = state[name]
        new[tuple(slice(0, size) for size in old.shape)] = old
        if new.dim() == 4:  # conv (out, in, kh, kw): the old outputs ignore the new inputs
            new[: old.shape[0], old.shape[1]:] = 0
    wide.load_state_dict(state)
    return wide.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a checkpoint (multi-style or not)")
    parser.add_argument("base_channels", type=int)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    net, _ = load_transformer(args.source)
    wide = widen(net, args.base_channels)
    with atomic_path(args.target, overwrite=True) as tmp:
        torch.save({"state_dict": {f"transformer.{k}": v for k, v in wide.state_dict().items()}}, tmp)
    print(f"wrote {args.target}: {wide.config.as_dict()} from {args.source}")


if __name__ == "__main__":
    main()
