"""``styletrans stylize``: apply a trained style network to photos, folders and videos."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image
    from tqdm import tqdm

    from styletrans.inference import Stylizer
    from styletrans.inference.planning import Job
    from styletrans.inference.temporal import TemporalSettings


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stylize", help="stylize images, folders and videos with a trained model",
        description="Stylize with a trained style network. INPUT: image files, folders (searched "
        "recursively), glob patterns ('photos/**/*.jpg') or videos (.mp4, .mov, .mkv, ...). Outputs are "
        "named NAME_STYLE.EXT in --output-dir (folders keep their sub-folders), never overwrite unless "
        "--overwrite, and a failing file is reported and counted without stopping the others "
        "(exit status 1 if any failed).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image, folder, glob or video")
    p.add_argument("--model", "-m", required=True,
                   help="an .onnx or .ckpt file, a model name from the model directories, or a mix of styles of "
                   "one multi-style base, 'starry_night:0.7,great_wave:0.3' (weights normalized to sum 1; needs "
                   "the base's mixing model, `styletrans export --mix`; outputs NAME_starry_night70-great_wave30.EXT)")
    p.add_argument("--models-dir", type=Path, default=None,
                   help="a folder searched first for --model by name; then ./models, ~/.cache/styletrans/models "
                   "and the styles bundled with styletrans (a user's model of a bundled name wins, with a note)")
    p.add_argument("--output-dir", "-o", type=Path, required=True, help="folder for the results")
    p.add_argument("--size", type=int, default=None, help="longest side of the output (default: the input's)")
    p.add_argument("--preserve-color", action="store_true",
                   help="keep the photo's colours (chrominance); take only luminance from the style")
    p.add_argument("--strength", type=float, default=1.0, help="0: the photo, 1: fully stylized (default: 1)")
    p.add_argument("--tile", type=int, default=None,
                   help="process images larger than this many pixels per side in overlapping tiles "
                   "(bounded memory for huge images)")
    p.add_argument("--overlap", type=int, default=64, help="tile overlap in pixels, blended seamlessly (default: 64)")
    p.add_argument("--batch-size", type=int, default=4,
                   help="same-size images (or video frames) per network call (default: 4)")
    p.add_argument("--backend", choices=("onnx", "torch"), default="onnx",
                   help="onnx (default): ONNX Runtime, a checkpoint is exported in memory first; torch: PyTorch eager")
    p.add_argument("--provider", choices=("auto", "cuda", "tensorrt", "cpu"), default="auto",
                   help="ONNX Runtime execution provider (default auto: CUDA if usable, else CPU)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: one per core)")
    p.add_argument("--precision", choices=("auto", "int8", "float"), default="auto",
                   help="auto: the model's int8 variant (STYLE.int8.onnx beside it) if there is one, else the model; "
                   "int8: only the int8 variant; float: never int8")
    p.add_argument("--format", choices=("same", "jpg", "png", "webp"), default="same",
                   help="output image format (default same: the input's; png for formats other than jpg/png/webp)")
    add_temporal_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def add_temporal_arguments(p: argparse.ArgumentParser) -> None:
    """``--temporal`` and its weight, shared with ``styletrans batch``."""
    p.add_argument("--temporal", action="store_true",
                   help="videos: carry each stylized frame forward along the source's optical flow and blend it "
                   "with the next where the flow is reliable (less flicker; a scene cut starts afresh); images "
                   "are stylized as usual")
    p.add_argument("--temporal-weight", type=float, default=None, metavar="W",
                   help="with --temporal: share of the carried frame where the flow is reliable, in [0, 1) "
                   "(default: 0.9)")


def temporal_settings(args: argparse.Namespace) -> TemporalSettings | None:
    """The ``TemporalSettings`` the flags ask for (None without --temporal); checked before any work."""
    if args.temporal_weight is not None and not args.temporal:
        raise ValueError("--temporal-weight needs --temporal")
    if not args.temporal:
        return None
    from styletrans.inference.temporal import TemporalSettings

    return TemporalSettings() if args.temporal_weight is None else TemporalSettings(weight=args.temporal_weight)


@dataclass
class Results:
    done: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def fail(self, source: Path | str, message: str) -> None:
        self.failed[str(source)] = message.removeprefix(f"{source}: ")  # ImageError names the file already


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from styletrans.inference import Stylizer, resolve_model
    from styletrans.inference.mixing import is_mix_spec, mix_stylizer
    from styletrans.inference.planning import expand_inputs, plan_outputs, safe_name
    from styletrans.inference.registry import pick_precision
    from styletrans.inference.stylizer import check_options
    from styletrans.inference.video import is_video

    check_options(strength=args.strength, size=args.size, batch_size=args.batch_size)
    temporal = temporal_settings(args)
    if is_mix_spec(args.model):  # -m "a:0.7,b:0.3": the mixing model of their base, bound to the weights
        stylizer, plan = mix_stylizer(args.model, args.models_dir, backend=args.backend, precision=args.precision,
                                      provider=args.provider, threads=args.threads)
        model = f"mix {plan.mix.spec} of {plan.mixer.path}"
    else:
        model = pick_precision(resolve_model(args.model, args.models_dir), args.precision if args.backend == "onnx"
                               else "float")
        stylizer = Stylizer(model, backend=args.backend, provider=args.provider, threads=args.threads)
    print(f"model {model}: {stylizer.describe()}", file=sys.stderr)

    files, input_errors = expand_inputs(args.inputs)
    results = Results(failed=dict(input_errors))
    jobs = plan_outputs(files, args.output_dir, safe_name(stylizer.style_name), args.format)
    pending: list[Job] = []
    for job in jobs:
        if job.output.exists() and not args.overwrite:
            results.fail(job.source, f"{job.output} already exists (pass --overwrite to replace it)")
        else:
            pending.append(job)
    images = [j for j in pending if not is_video(j.source)]
    videos = [j for j in pending if is_video(j.source)]
    if temporal is not None and images:  # a note, not an error: a folder may hold photos and clips
        print(f"note: --temporal applies to videos only; {len(images)} image(s) stylized as usual", file=sys.stderr)

    with tqdm(total=len(images), unit="image", disable=args.quiet or not images, file=sys.stderr) as bar:
        for chunk_start in range(0, len(images), 8 * args.batch_size):
            chunk = images[chunk_start: chunk_start + 8 * args.batch_size]
            _stylize_images(stylizer, chunk, args, results, bar)
    for job in videos:
        _stylize_video(stylizer, job, args, results, temporal)

    for source, message in results.failed.items():
        print(f"failed: {source}: {message}", file=sys.stderr)
    print(f"stylized {len(results.done)} file(s) into {args.output_dir}, {len(results.failed)} failed")
    return 1 if results.failed else 0


def _stylize_images(stylizer: Stylizer, jobs: list[Job], args: argparse.Namespace, results: Results,
                    bar: tqdm) -> None:
    """Load a chunk of images, group same-size ones into batches, stylize, save."""
    from styletrans.atomic import OutputExistsError
    from styletrans.images import ImageError, open_rgb, resize_longest, save_image

    by_size: dict[tuple[int, int], list[tuple[Job, Image.Image]]] = defaultdict(list)
    for job in jobs:
        try:
            image = resize_longest(open_rgb(job.source), args.size)
        except ImageError as exc:
            results.fail(job.source, str(exc))
            bar.update(1)
            continue
        by_size[image.size].append((job, image))

    options = {"strength": args.strength, "preserve_color": args.preserve_color}
    for size, group in by_size.items():
        tiled = args.tile is not None and max(size) > args.tile
        step = 1 if tiled else args.batch_size
        for start in range(0, len(group), step):
            batch = group[start: start + step]
            try:
                if tiled:
                    outputs = [stylizer.stylize(batch[0][1], tile=args.tile, overlap=args.overlap, **options)]
                else:
                    outputs = stylizer.stylize_batch([image for _, image in batch], **options)
            except (RuntimeError, ValueError, MemoryError) as exc:
                for job, _ in batch:
                    results.fail(job.source, f"stylizing failed: {exc}")
                bar.update(len(batch))
                continue
            for (job, _), output in zip(batch, outputs, strict=True):
                try:
                    save_image(output, job.output, overwrite=args.overwrite)
                    results.done.append(job.output)
                except (OutputExistsError, OSError, ValueError) as exc:
                    results.fail(job.source, str(exc))
                bar.update(1)


def _stylize_video(stylizer: Stylizer, job: Job, args: argparse.Namespace, results: Results,
                   temporal: TemporalSettings | None) -> None:
    from styletrans.atomic import OutputExistsError
    from styletrans.inference.video import VideoError, stylize_video

    try:
        summary = stylize_video(
            stylizer, job.source, job.output, size=args.size, strength=args.strength,
            preserve_color=args.preserve_color, batch_size=args.batch_size, overwrite=args.overwrite,
            progress=not args.quiet, temporal=temporal,
        )
    except (VideoError, OutputExistsError, RuntimeError, ValueError, OSError) as exc:
        results.fail(job.source, str(exc))
        return
    results.done.append(job.output)
    print(f"{job.source} -> {job.output}: {summary['frames']} frames at {summary['fps']:g} fps, "
          f"{summary['size'][0]}x{summary['size'][1]}, audio {summary['audio'] or 'none'}"
          f"{_temporal_note(summary)}", file=sys.stderr)


def _temporal_note(summary: dict) -> str:
    if not summary.get("temporal"):
        return ""
    cuts = summary["temporal"]["cuts"]
    return f", temporal blend ({cuts} scene cut{'' if cuts == 1 else 's'})"
