"""``styletrans batch``: stylize a large photo collection on Ray Data (this machine or a cluster)."""

from __future__ import annotations

import argparse
import sys

from styletrans.commands.stylize import add_temporal_arguments, temporal_settings


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "batch", help="stylize a large photo collection on Ray (one machine or a cluster), resumably",
        description="Stylize many photos, and videos (a whole video per actor call), with ONNX Runtime in Ray "
        "actors. INPUT: image or video files, folders (recursive), globs, or URIs pyarrow reads (s3://, gs://, "
        "hdfs://, file://); --manifest adds the "
        "files listed in a .txt (one a line) or .csv ('path' column) file. Outputs are named as by "
        "`styletrans stylize` (NAME_STYLE.EXT, sub-folders kept, _2 for clashes) and written atomically. "
        "Outputs that already exist are skipped, so a re-run continues a killed job; --overwrite "
        "redoes them. Unreadable inputs are listed at the end and never stop the job; the exit status is 1 "
        "if anything failed. Without --address a local Ray starts on this machine.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image, folder, glob or URI")
    p.add_argument("--manifest", action="append", default=[], metavar="FILE",
                   help="a .txt or .csv list of images (paths relative to the manifest's folder, or URIs); "
                   "repeatable")
    p.add_argument("--model", "-m", required=True,
                   help="an .onnx or .ckpt file, a model name from the model directories, or a mix of styles "
                   "of one base, 'starry_night:0.7,great_wave:0.3' (as for `styletrans stylize`)")
    p.add_argument("--models-dir", default=None, help="where to look up models by name")
    p.add_argument("--precision", choices=("auto", "int8", "float"), default="auto",
                   help="as for `styletrans stylize`: auto runs STYLE.int8.onnx where it exists beside the model")
    p.add_argument("--output-dir", "-o", required=True,
                   help="folder (or URI) for the results; on a cluster, one that every node can write")
    p.add_argument("--size", type=int, default=None, help="longest side of the output (default: the input's)")
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours")
    p.add_argument("--strength", type=float, default=1.0, help="0: the photo, 1: fully stylized (default: 1)")
    p.add_argument("--format", choices=("same", "jpg", "png", "webp"), default="same",
                   help="output image format (default same: the input's; png for others)")
    p.add_argument("--batch-size", type=int, default=4, help="same-size images per network call (default: 4)")
    add_temporal_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="redo and replace outputs that exist")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join: 'auto' (the cluster this machine is in), HOST:PORT, or "
                   "ray://HOST:10001 (Ray Client); default: $RAY_ADDRESS, else a new local Ray")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--actors", type=int, default=None,
                   help="actors (ONNX Runtime sessions) in the pool (default: cluster CPUs / --cpus-per-actor, "
                   "or GPUs / --gpus-per-actor)")
    p.add_argument("--cpus-per-actor", type=float, default=1.0,
                   help="CPUs each actor reserves; also its ONNX Runtime threads (default: 1)")
    p.add_argument("--gpus-per-actor", type=float, default=0.0,
                   help="GPUs each actor reserves (e.g. 1, or 0.5 to share); actors then use CUDA")
    p.add_argument("--provider", choices=("auto", "cuda", "tensorrt", "cpu"), default="auto",
                   help="ONNX Runtime execution provider in the actors (default auto: CUDA if usable)")
    p.add_argument("--report", default=None, metavar="FILE.json",
                   help="write the summary (counts, images/s, every failure) as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from styletrans.inference.batch import (
        SHOWN_FAILURES,
        BatchOptions,
        StyleSettings,
        stylize_collection,
        write_report,
    )

    options = BatchOptions(
        inputs=list(args.inputs), manifests=list(args.manifest), model=args.model, models_dir=args.models_dir,
        precision=args.precision,
        output_dir=args.output_dir, fmt=args.format, address=args.address, num_cpus=args.num_cpus,
        actors=args.actors, cpus_per_actor=args.cpus_per_actor, gpus_per_actor=args.gpus_per_actor,
        progress=not args.quiet,
        settings=StyleSettings(size=args.size, strength=args.strength, preserve_color=args.preserve_color,
                               batch_size=args.batch_size, overwrite=args.overwrite, provider=args.provider,
                               threads=0, temporal=temporal_settings(args)),
    )
    summary = stylize_collection(options)
    for i, (source, message) in enumerate(sorted(summary.failed.items())):
        if i == SHOWN_FAILURES:
            print(f"... and {len(summary.failed) - SHOWN_FAILURES} more failure(s)"
                  f"{f' (all in {args.report})' if args.report else ' (--report FILE lists them all)'}",
                  file=sys.stderr)
            break
        print(f"failed: {source}: {message}", file=sys.stderr)
    if args.report:
        write_report(summary, args.report)
    rate = f" in {summary.seconds:.1f} s ({summary.images_per_second:.2f} images/s on {summary.actors} actor(s))" \
        if summary.written else ""
    print(f"stylized {summary.written} image(s) into {args.output_dir}{rate}, {summary.skipped} already done, "
          f"{len(summary.failed)} failed")
    return 1 if summary.failed else 0
