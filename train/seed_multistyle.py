"""A multi-style network seeded from a trained single-style one: its convolutions, its instance-norm
scale and shift copied to every style.

    python train/seed_multistyle.py styletrans/assets/models/starry_night.onnx 7 /tmp/seed.ckpt
    styletrans train --config configs/recipes/multistyle.yaml --data PHOTOS --model.init_from /tmp/seed.ckpt

Why: started from random weights, or from a network trained toward texture, the multi-style run kept no
photo content (its content term stayed at a grey image's for 5,000 steps); started from a network that
already reproduces photos, the same loss adds each painting's strokes on top (models/README.md). The
source is an exported ONNX file (today's format; fp16 weights are widened to fp32) or a checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from styletrans.atomic import atomic_path
from styletrans.models.transformer import TransformerConfig, TransformerNet


def single_style_weights(source: Path) -> dict[str, torch.Tensor]:
    """The network's state dict (keys without a prefix) from an ONNX export or a checkpoint."""
    if source.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        model = onnx.load(source)
        return {i.name.removeprefix("net."): torch.from_numpy(numpy_helper.to_array(i).astype("float32"))
                for i in model.graph.initializer if i.name.startswith("net.")}
    from styletrans.models.checkpoint import load_transformer

    return load_transformer(source)[0].state_dict()


def seed(source: Path, styles: int, config: TransformerConfig) -> TransformerNet:
    weights = single_style_weights(source)
    net = TransformerNet(TransformerConfig(**{**config.as_dict(), "styles": styles}))
    state = net.state_dict()
    missing = sorted(set(state) - set(weights))
    if missing:
        raise ValueError(f"{source}: not a {config.as_dict()} network (missing {missing[:3]} ...)")
    # A per-style scale or shift is (styles, C); the source's is (C,): the same row for every style.
    net.load_state_dict({k: weights[k].expand_as(v).clone() for k, v in state.items()})
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a single-style .onnx export or .ckpt")
    parser.add_argument("styles", type=int, help="styles of the new network")
    parser.add_argument("target", type=Path)
    parser.add_argument("--transformer", default="fast", help="the source's preset (default: fast)")
    args = parser.parse_args()
    net = seed(args.source, args.styles, TransformerConfig.preset(args.transformer))
    with atomic_path(args.target, overwrite=True) as tmp:
        torch.save({"state_dict": {f"transformer.{k}": v for k, v in net.state_dict().items()}}, tmp)
    print(f"wrote {args.target}: {args.styles} styles seeded from {args.source}")


if __name__ == "__main__":
    main()
