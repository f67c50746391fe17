"""``styletrans quantize``: an exported model -> a verified static int8 (QDQ) model."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def size_argument(text: str) -> tuple[int, int]:
    """``HxW`` -> (H, W), for --verify-sizes (shared with ``export``)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 255x257, got {text!r}") from None
    return h, w


def add_calibration_arguments(p: argparse.ArgumentParser, required: bool) -> None:
    """The calibration options ``quantize`` and ``export --int8`` share."""
    from styletrans.inference.quantize import (
        CALIBRATION_IMAGES,
        CALIBRATION_METHODS,
        CALIBRATION_SIZE,
        DEFAULT_KEEP_FLOAT,
    )

    p.add_argument("--calibration", type=Path, required=required, metavar="DIR",
                   help="folder of photos like those the model will stylize (the training photos are best)"
                   + ("" if required else "; required with --int8"))
    p.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES, metavar="N",
                   help="photos drawn from --calibration (seeded)")
    p.add_argument("--calibration-size", type=int, default=CALIBRATION_SIZE, metavar="PX",
                   help="side of the square crop taken from each calibration photo")
    p.add_argument("--keep-float", nargs="*", default=list(DEFAULT_KEEP_FLOAT), metavar="CONV",
                   help="convolutions left in float: first, last, an index or a node name (none: quantize all)")
    p.add_argument("--calibration-method", choices=CALIBRATION_METHODS, default="average",
                   help="how each activation's range is set from the calibration photos")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quantize", help="quantize an exported ONNX model to int8 and verify it against the original",
        description="Static int8 quantization (ONNX Runtime QDQ: int8 convolution weights per channel, uint8 "
        "activations calibrated on your photos; instance norms and the listed convolutions stay in float) of an "
        "fp32 or fp16 styletrans model. The result keeps the model's metadata and contract and is only written "
        "if it matches the original within the int8 bounds on real photos.",
    )
    p.add_argument("model", type=Path, help="exported .onnx model (fp32 or fp16)")
    p.add_argument("--output", "-o", type=Path, default=None,
                   help="int8 model to write (default: beside the model, NAME.int8.onnx, which `--precision int8` "
                   "and `styletrans serve` pick up)")
    add_calibration_arguments(p, required=True)
    p.add_argument("--verify-sizes", type=size_argument, nargs="+", default=None, metavar="HxW",
                   help="sizes to compare at (default: 64x96 255x257 512x768)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(handler=run)


def int8_path(model: Path) -> Path:
    """``x/starry_night.onnx`` (or ``.fp16.onnx``) -> ``x/starry_night.int8.onnx``."""
    stem = model.name.removesuffix(".onnx").removesuffix(".fp16").removesuffix(".fp32")
    return model.with_name(f"{stem}.int8.onnx")


def calibration_from_args(args: argparse.Namespace) -> list[Any]:
    from styletrans.cli import CommandError
    from styletrans.images import find_images
    from styletrans.inference.quantize import calibration_images

    if args.calibration is None or not args.calibration.is_dir():
        raise CommandError(f"--calibration: {args.calibration} is not a folder of photos")
    photos = find_images(args.calibration)
    if not photos:
        raise CommandError(f"--calibration: no images in {args.calibration}")
    return calibration_images(photos, count=args.calibration_images, size=args.calibration_size)


def quantize_and_verify(source: Path, output: Path, args: argparse.Namespace, reference: Any,
                        reference_name: str, sizes: tuple[tuple[int, int], ...]) -> None:
    """Quantize ``source`` beside ``output``, verify it against ``reference``, then move it into place."""
    from styletrans.atomic import atomic_path
    from styletrans.cli import CommandError
    from styletrans.export import verify_int8
    from styletrans.inference.quantize import quantize_onnx

    calibration = calibration_from_args(args)
    start = time.perf_counter()
    with atomic_path(output, overwrite=args.overwrite) as tmp:
        quantize_onnx(source, tmp, calibration, keep_float=args.keep_float, method=args.calibration_method,
                      overwrite=True, extra_metadata={"calibration_dir": args.calibration.name})
        print(f"quantized {source.name} to int8 in {time.perf_counter() - start:.1f}s "
              f"({len(calibration)} calibration photos, float convolutions: {' '.join(args.keep_float) or 'none'})")
        report = verify_int8(tmp, reference, sizes=sizes, reference_name=reference_name)
        print(report.summary())
        if not report.passed:
            raise CommandError(f"int8 output differs too much from {reference_name}; {output} not written")
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")


def run(args: argparse.Namespace) -> int:
    from styletrans.atomic import OutputExistsError
    from styletrans.export import VERIFY_SIZES
    from styletrans.inference import OnnxBackend

    output = args.output or int8_path(args.model)
    if output.exists() and not args.overwrite:
        raise OutputExistsError(output)
    reference = OnnxBackend(args.model, provider="cpu")
    precision = reference.metadata.get("precision", "fp32")
    quantize_and_verify(args.model, output, args, reference, f"the {precision} model",
                        tuple(args.verify_sizes or VERIFY_SIZES))
    return 0
