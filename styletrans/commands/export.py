"""``styletrans export``: a trained checkpoint -> a verified ONNX model (one per style of a multi-style network)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from styletrans.commands.quantize import add_calibration_arguments, int8_path, quantize_and_verify, size_argument


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export a trained checkpoint to ONNX and verify it against PyTorch",
        description="Export the style network of a training checkpoint to ONNX (dynamic batch, height and "
        "width; style name, training settings and the input contract in the model's metadata), then "
        "compare ONNX Runtime with PyTorch on random and real images. The model is only written if the "
        "comparison passes. A multi-style checkpoint gives one file per style, that style's normalization "
        "baked in: the same format, speed and tools as a single-style model; with --mix, one mixing model "
        "instead (BASE.mix.onnx), which `stylize -m 'STYLE:0.7,OTHER:0.3'`, `batch` and `serve` blend styles with.",
    )
    p.add_argument("checkpoint", type=Path, help="Lightning checkpoint (.ckpt) written by `styletrans train`")
    p.add_argument("--output", "-o", type=Path, default=None,
                   help="ONNX file to write (default: ~/.cache/styletrans/models/STYLE.onnx, "
                   "where `styletrans stylize --model STYLE` finds it); for a multi-style checkpoint, a folder "
                   "that gets STYLE.onnx for each style (a file when one style is exported)")
    p.add_argument("--style", action="append", default=None, metavar="NAME",
                   help="multi-style checkpoint: export only this style (repeatable; default: every style, or "
                   "for a new style fine-tuned onto a base, the new style alone)")
    p.add_argument("--mix", action="store_true",
                   help="multi-style checkpoint: write one mixing model, BASE.mix.onnx in the --output folder, "
                   "instead of a file per style; its style-weight input blends the styles "
                   "(`styletrans stylize -m 'STYLE:0.7,OTHER:0.3'`)")
    p.add_argument("--fp16", action="store_true", help="compute in half precision (float32 input and output)")
    p.add_argument("--int8", action="store_true",
                   help="also write a static int8 model (NAME.int8.onnx beside the output), calibrated on "
                   "--calibration photos and verified against PyTorch within the int8 bounds")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    p.add_argument("--verify-sizes", type=size_argument, nargs="+", default=None, metavar="HxW",
                   help="sizes to compare at (default: 64x96 255x257 512x768)")
    p.add_argument("--triton-repo", type=Path, metavar="DIR", default=None,
                   help="also add the model to this NVIDIA Triton model repository (see serve/README.md)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output file (and remove a STYLE.int8.onnx beside it that --int8 "
                   "does not remake: it was quantized from the replaced model)")
    add_calibration_arguments(p, required=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from styletrans.atomic import OutputExistsError
    from styletrans.cli import CommandError
    from styletrans.export import per_style_networks
    from styletrans.models.checkpoint import load_transformer
    from styletrans.weights import cache_dir

    net, metadata = load_transformer(args.checkpoint)
    if args.mix:
        return export_mix(net, metadata, args)
    if net.config.styles == 1:
        if args.style:
            raise CommandError(f"--style: {args.checkpoint} holds one style ({metadata['style_name']!r}), not several")
        # STYLE.onnx whatever the precision (it is in the metadata), so that `-m STYLE` finds it.
        jobs = [(net, metadata, args.output or cache_dir() / "models" / f"{metadata['style_name']}.onnx")]
    else:
        names = args.style
        new_styles = (metadata.get("fine_tune") or {}).get("new_styles")
        if not names and new_styles:  # a fine-tune: its new style(s), not a copy of every base style
            names = list(new_styles)
            print(f"{args.checkpoint}: a new style on base {metadata['fine_tune'].get('base')!r}: exporting "
                  f"{', '.join(names)} (--style NAME for others, --mix for a mixing model of all its styles)")
        try:
            networks = per_style_networks(net, metadata, names)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if args.output is not None and args.output.suffix.lower() == ".onnx":
            if len(networks) != 1:
                raise CommandError(f"--output {args.output}: a multi-style checkpoint exports one file per style "
                                   f"({len(networks)} here); give a folder, or one --style NAME")
            jobs = [(*networks[0], args.output)]
        else:
            folder = args.output or cache_dir() / "models"
            jobs = [(style_net, style_meta, folder / f"{style_meta['style_name']}.onnx")
                    for style_net, style_meta in networks]
    # Every output is checked before any work, so a clash never leaves a half-exported set.
    for _, _, output in jobs:
        for path in (output, int8_path(output)) if args.int8 else (output,):
            if path.exists() and not args.overwrite:
                raise OutputExistsError(path)
        stale = int8_path(output)
        if not args.int8 and stale.exists() and not args.overwrite:
            raise CommandError(f"{stale}: style {output.name.removesuffix('.onnx')!r} already has an int8 model "
                               f"there, which `-m` would run instead of this export; pass --overwrite to replace "
                               "the style (the old int8 file is removed), or --int8 to quantize the new one")
    if args.int8 and args.calibration is None:
        raise CommandError("--int8 needs --calibration DIR: photos to calibrate the int8 ranges on")
    for style_net, style_meta, output in jobs:
        output.parent.mkdir(parents=True, exist_ok=True)
        export_one(style_net, style_meta, output, args)
        stale = int8_path(output)
        if not args.int8 and stale.exists():  # quantized from the model just replaced
            stale.unlink()
            print(f"removed {stale} (quantized from the model {output.name} replaced)")
    return 0


def export_mix(net: Any, metadata: dict[str, Any], args: argparse.Namespace) -> int:
    """``--mix``: the whole multi-style network as one mixing model, ``BASE.mix.onnx``, verified under a
    one-hot and a random mix of its styles at each size before it is moved into place."""
    from styletrans.atomic import OutputExistsError
    from styletrans.cli import CommandError
    from styletrans.export import VERIFY_SIZES, export_mix_onnx, mixing_metadata, verify_mix_onnx
    from styletrans.inference.mixing import MIX_SUFFIX
    from styletrans.weights import cache_dir

    if net.config.styles == 1:
        raise CommandError(f"--mix: {args.checkpoint} holds one style ({metadata['style_name']!r}); a mixing "
                           "model needs a multi-style checkpoint")
    for flag, given in (("--style", args.style), ("--int8", args.int8), ("--triton-repo", args.triton_repo)):
        if given:
            raise CommandError(f"--mix and {flag}: a mixing model holds every style of the network, in fp32 or "
                               "--fp16 (int8 and Triton take one-input style models)")
    name = metadata["style_name"]
    if args.output is not None and args.output.suffix.lower() == ".onnx":
        if not args.output.name.endswith(MIX_SUFFIX):
            raise CommandError(f"--output {args.output}: a mixing model's file name ends in {MIX_SUFFIX} "
                               "(that is how `-m 'a:0.7,b:0.3'` finds it); give a folder, or NAME" + MIX_SUFFIX)
        output = args.output
    else:
        output = (args.output or cache_dir() / "models") / f"{name}{MIX_SUFFIX}"
    if output.exists() and not args.overwrite:
        raise OutputExistsError(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_verified(
        output, args,
        lambda tmp: export_mix_onnx(net, tmp, metadata=mixing_metadata(metadata), fp16=args.fp16, opset=args.opset,
                                    overwrite=True),
        lambda tmp: verify_mix_onnx(tmp, net, sizes=tuple(args.verify_sizes or VERIFY_SIZES)),
        f"the mixing model of {name!r} ({net.config.styles} styles: {', '.join(metadata['styles'])}; "
        f"{'fp16' if args.fp16 else 'fp32'})")
    return 0


def write_verified(output: Path, args: argparse.Namespace, export: Callable[[Path], None],
                   verify: Callable[[Path], Any], what: str) -> None:
    """Export to a temporary file, verify it against PyTorch, and only then move it into place (a failed
    check leaves any previous model untouched)."""
    from styletrans.atomic import atomic_path
    from styletrans.cli import CommandError

    start = time.perf_counter()
    with atomic_path(output, overwrite=args.overwrite) as tmp:
        export(tmp)
        seconds = time.perf_counter() - start
        report = verify(tmp)
        print(f"exported {what} in {seconds:.1f}s")
        print(report.summary())
        if not report.passed:
            raise CommandError(f"ONNX output differs from PyTorch by {report.max_abs_diff:.2e} "
                               f"(bound {report.tolerance:.0e}); {output} not written")
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")


def export_one(net: Any, metadata: dict[str, Any], output: Path, args: argparse.Namespace) -> None:
    """Export, verify and only then move into place (``write_verified``); then int8 and Triton if asked."""
    from styletrans.export import VERIFY_SIZES, export_onnx, verify_onnx

    write_verified(
        output, args,
        lambda tmp: export_onnx(net, tmp, metadata=metadata, fp16=args.fp16, opset=args.opset, overwrite=True),
        lambda tmp: verify_onnx(tmp, net, sizes=tuple(args.verify_sizes or VERIFY_SIZES)),
        f"style {metadata['style_name']!r} ({'fp16' if args.fp16 else 'fp32'}, {net.config.base_channels} "
        f"channels, {net.config.residual_blocks} residual blocks)")
    if args.int8:
        quantize_and_verify(output, int8_path(output), args, net, "PyTorch fp32",
                            tuple(args.verify_sizes or VERIFY_SIZES))
    if args.triton_repo is not None:
        from styletrans.serving.triton import write_triton_repo

        (folder,) = write_triton_repo([output], args.triton_repo, max_batch_size=8, fp16_tensorrt=args.fp16,
                                      overwrite=args.overwrite)
        print(f"wrote {folder}/config.pbtxt")
