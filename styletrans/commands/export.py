"""``styletrans export``: a trained checkpoint -> a verified ONNX model."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from styletrans.commands.quantize import add_calibration_arguments, int8_path, quantize_and_verify


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 255x257, got {text!r}") from None
    return h, w


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export a trained checkpoint to ONNX and verify it against PyTorch",
        description="Export the style network of a training checkpoint to ONNX (dynamic batch, height and "
        "width; style name, training settings and the input contract in the model's metadata), then "
        "compare ONNX Runtime with PyTorch on random and real images. The model is only written if the "
        "comparison passes.",
    )
    p.add_argument("checkpoint", type=Path, help="Lightning checkpoint (.ckpt) written by `styletrans train`")
    p.add_argument("--output", "-o", type=Path, default=None,
                   help="ONNX file to write (default: ~/.cache/styletrans/models/STYLE.onnx, "
                   "where `styletrans stylize --model STYLE` finds it)")
    p.add_argument("--fp16", action="store_true", help="compute in half precision (float32 input and output)")
    p.add_argument("--int8", action="store_true",
                   help="also write a static int8 model (NAME.int8.onnx beside the output), calibrated on "
                   "--calibration photos and verified against PyTorch within the int8 bounds")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    p.add_argument("--verify-sizes", type=_size, nargs="+", default=None, metavar="HxW",
                   help="sizes to compare at (default: 64x96 255x257 512x768)")
    p.add_argument("--triton-repo", type=Path, metavar="DIR", default=None,
                   help="also add the model to this NVIDIA Triton model repository (see serve/README.md)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_calibration_arguments(p, required=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from styletrans.atomic import OutputExistsError, atomic_path
    from styletrans.cli import CommandError
    from styletrans.export import VERIFY_SIZES, export_onnx, verify_onnx
    from styletrans.models.checkpoint import load_transformer
    from styletrans.weights import cache_dir

    net, metadata = load_transformer(args.checkpoint)
    output = args.output or cache_dir() / "models" / f"{metadata['style_name']}{'.fp16' if args.fp16 else ''}.onnx"
    if output.exists() and not args.overwrite:
        raise OutputExistsError(output)
    if args.int8:
        if args.calibration is None:
            raise CommandError("--int8 needs --calibration DIR: photos to calibrate the int8 ranges on")
        if int8_path(output).exists() and not args.overwrite:  # fail before the slow export
            raise OutputExistsError(int8_path(output))
    start = time.perf_counter()
    # Export beside the target, verify, and only then move it into place: a failed
    # check leaves any previous model untouched.
    with atomic_path(output, overwrite=args.overwrite) as tmp:
        export_onnx(net, tmp, metadata=metadata, fp16=args.fp16, opset=args.opset, overwrite=True)
        seconds = time.perf_counter() - start
        report = verify_onnx(tmp, net, sizes=tuple(args.verify_sizes or VERIFY_SIZES))
        print(f"exported style {metadata['style_name']!r} ({'fp16' if args.fp16 else 'fp32'}, "
              f"{net.config.base_channels} channels, {net.config.residual_blocks} residual blocks) in {seconds:.1f}s")
        print(report.summary())
        if not report.passed:
            raise CommandError(f"ONNX output differs from PyTorch by {report.max_abs_diff:.2e} "
                               f"(bound {report.tolerance:.0e}); {output} not written")
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")
    if args.int8:
        quantize_and_verify(output, int8_path(output), args, net, "PyTorch fp32",
                            tuple(args.verify_sizes or VERIFY_SIZES))
    if args.triton_repo is not None:
        from styletrans.serving.triton import write_triton_repo

        (folder,) = write_triton_repo([output], args.triton_repo, max_batch_size=8, fp16_tensorrt=args.fp16,
                                      overwrite=args.overwrite)
        print(f"wrote {folder}/config.pbtxt")
    return 0
