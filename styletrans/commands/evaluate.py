"""``styletrans evaluate``: a fast model against the Gatys optimization, as a report."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import asdict
from pathlib import Path

from styletrans.atomic import OutputExistsError

MIN_SIZE = 32  # below this the deeper VGG layers and SSIM's 11-pixel window see almost nothing


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="compare a fast model with the Gatys optimization (losses, speed, report)",
        description="Stylize photos with a trained model and optimize them with Gatys et al. (from the photo; "
        "L-BFGS by default) under the loss the model was trained with; report both losses, the iteration count at "
        "which the optimization catches up with the model, the speed of both, loss curves and side-by-side panels.",
    )
    p.add_argument("--model", required=True, help="an .onnx file, a .ckpt checkpoint, or a model name")
    p.add_argument("--style", default=None,
                   help="style image the model was trained on (path or bundled name; default: the model's own)")
    p.add_argument("--content-dir", type=Path, default=None,
                   help="folder of content photos (searched recursively); required unless --video is given")
    p.add_argument("--report-dir", "-o", required=True, type=Path, help="where report.md, report.json and PNGs go")
    p.add_argument("--size", type=int, default=None,
                   help="longest side the photos are scaled to (default: 512; with --video: the clip's own size)")
    p.add_argument("--style-size", type=int, default=None,
                   help="longest side of the style image (default: the size the model was trained with)")
    p.add_argument("--iterations", default="50,100,300,500",
                   help="Gatys iteration counts to report; one run to the largest per photo (default: 50,100,300,500)")
    p.add_argument("--yardstick-iterations", type=int, default=None, metavar="N",
                   help="iterations of the Gatys default result that the style strength is measured against "
                   "(default: `styletrans optimize`'s own; fewer for a quick look)")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs",
                   help="Gatys' optimizer (default: lbfgs, as Johnson et al. compare)")
    p.add_argument("--lr", type=float, default=None, help="step size (default: 1 for lbfgs, 0.02 for adam)")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate only the first N photos (sorted by path); with --video, N frames")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default); both methods run there")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for both methods (default: PyTorch's and ONNX Runtime's own choice)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS even if its weights are available")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report's files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    video = p.add_argument_group(
        "video", "--video CLIP measures temporal consistency instead: the warping error (Lai et al. 2018) of the "
        "model's output on CLIP, frame by frame and with `stylize --temporal`, beside the clip's own (the floor), "
        "and the pan number; report-dir gets temporal.json and temporal.png")
    video.add_argument("--video", type=Path, default=None, metavar="CLIP", help="a video to measure on")
    video.add_argument("--stylized", type=Path, action="append", default=[], metavar="FILE",
                       help="also score this stylized version of CLIP (e.g. `styletrans stylize` output) with "
                       "CLIP's flow; repeatable")
    video.add_argument("--start-frame", type=int, default=0, help="skip this many frames first (default: 0)")
    video.add_argument("--style-loss-every", type=int, default=0, metavar="K",
                       help="also measure the style loss every K frames, with and without the blend (a VGG pass "
                       "each: seconds per frame on a CPU; default 0: not measured)")
    video.add_argument("--temporal-weight", type=float, default=None, metavar="W",
                       help="the blend's weight, as `stylize --temporal-weight` (default: 0.9)")
    video.add_argument("--flow", choices=("medium", "farneback"), default="medium",
                       help="the evaluation's flow: DIS medium (default; the blend uses DIS fast) or Farneback, "
                       "another family that checks the blend independently")
    p.set_defaults(handler=run)


def command_line(args: argparse.Namespace, style: str) -> str:
    """The command that reproduces this report (recorded in it)."""
    parts = ["styletrans", "evaluate", "--model", str(args.model), "--style", style,
             "--content-dir", str(args.content_dir), "--report-dir", str(args.report_dir),
             "--size", str(args.size), "--iterations", args.iterations]
    if args.optimizer != "lbfgs":
        parts += ["--optimizer", args.optimizer]
    optional = {"--lr": args.lr, "--style-size": args.style_size, "--limit": args.limit, "--threads": args.threads,
                "--yardstick-iterations": args.yardstick_iterations}
    for flag, value in optional.items():
        if value is not None:
            parts += [flag, str(value)]
    if args.device != "auto":
        parts += ["--device", args.device]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    if args.video is not None:
        return run_video(args)
    if args.content_dir is None:
        raise ValueError("give --content-dir PHOTOS (or --video CLIP)")
    if args.size is None:
        args.size = 512
    import torch

    from styletrans.assets import resolve_image
    from styletrans.commands.optimize import pick_device
    from styletrans.evaluation import (
        Evaluator,
        build_report,
        load_model,
        panel_file,
        parse_iterations,
        render_loss_plot,
        render_panel,
        report_files,
        write_report,
    )
    from styletrans.images import ImageError, find_images, load_image

    counts = parse_iterations(args.iterations)
    if args.size < MIN_SIZE:
        raise ValueError(f"--size must be at least {MIN_SIZE} pixels, got {args.size}")
    for flag, value in (("--limit", args.limit), ("--threads", args.threads),
                        ("--yardstick-iterations", args.yardstick_iterations)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}")
    if not args.content_dir.is_dir():
        raise ValueError(f"{args.content_dir}: not a folder of content photos")
    photos = find_images(args.content_dir)[: args.limit]
    if not photos:
        raise ValueError(f"{args.content_dir}: no images found (looked for .jpg, .png, .webp, ...)")
    names = [p.relative_to(args.content_dir).as_posix() for p in photos]
    if not args.overwrite:  # fail before minutes of work, not after
        for path in report_files(args.report_dir, names):
            if path.exists():
                raise OutputExistsError(path)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    model = load_model(args.model, device, args.threads)
    style_spec = args.style or model.training.get("style_image")
    if not style_spec:
        raise ValueError(f"{model.path}: its metadata names no style image; pass --style")
    style_path = resolve_image(str(style_spec), "styles")
    if not args.style and not style_path.is_file():
        raise ValueError(f"{model.path} was trained on the style image {style_spec}, which is not here; pass --style")
    style_size = args.style_size or model.training.get("style_size")
    style = load_image(style_path, style_size)
    lr = args.lr if args.lr is not None else (1.0 if args.optimizer == "lbfgs" else 0.02)
    evaluator = Evaluator(model, style, counts, device, optimizer=args.optimizer, lr=lr,
                          use_lpips=not args.no_lpips, progress=not args.quiet,
                          yardstick_style=load_image(style_path, args.size),  # the painting at the output size
                          yardstick_iterations=args.yardstick_iterations)
    print(f"evaluating {model.describe()} against {max(counts)} Gatys iterations on {len(photos)} photo(s), "
          f"{args.size} px, {device}")

    results, panels, panel_files, notes = [], [], [], []
    if evaluator.lpips_note:
        notes.append(evaluator.lpips_note)
    for number, (path, name) in enumerate(zip(photos, names, strict=True), start=1):
        try:
            content = load_image(path, args.size)
        except ImageError as exc:  # one unreadable file does not cost the others
            notes.append(f"skipped {name}: {exc}")
            print(f"[{number}/{len(photos)}] skipped: {exc}")
            continue
        result, outputs = evaluator.evaluate(content, name)
        results.append(result)
        panels.append(render_panel(outputs, style, result))  # kept as PNG bytes, written with the report
        panel_files.append(panel_file(number, name))
        eq = result.equivalent_iterations
        print(f"[{number}/{len(photos)}] {name}: fast {result.fast_ms:.0f} ms, loss {result.fast.total:.4g}; "
              f"Gatys {max(counts)} it {result.seconds[-1]:.1f} s, loss {result.curve[-1]:.4g}; "
              f"equivalent iterations {'> ' + str(max(counts)) if eq is None else eq}; "
              f"style strength {_figure(result.style_strength)}, content ratio {_figure(result.content_ratio)}, "
              f"pan {_figure(result.pan.get('fast_1px'))}, noise {_figure(result.pan.get('fast_noise'))} grey levels")
    if not results:
        raise ValueError(f"{args.content_dir}: none of the {len(photos)} image(s) could be read")

    setup = {
        "command": command_line(args, str(style_spec)),
        "model": {"path": str(model.path), "style_name": model.style_name, "runtime": model.backend.describe(),
                  "transformer": model.metadata.get("transformer"), "metadata": model.metadata},
        "style_image": str(style_path), "style_size": style_size, "content_dir": str(args.content_dir),
        "size": args.size, "device": str(device), "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "loss": asdict(evaluator.settings),
    }
    report = build_report(results, counts, setup, panel_files, notes)
    write_report(args.report_dir, report, panels, render_loss_plot(results, counts), overwrite=args.overwrite)

    summary = report["summary"]
    eq, speed = summary["equivalent_iterations"], summary["speed"]
    ref = str(summary["similarity"]["gatys_iterations"])
    median = f"> {max(counts)}" if eq["median"] is None else f"{eq['median']:g}"
    print(f"equivalent iterations (median): {median} ({eq['reached']}/{eq['images']} photos reached the fast "
          f"model's loss); fast {speed['fast_ms']:.1f} ms vs Gatys {speed['gatys_seconds'][ref]:.2f} s for {ref} "
          f"iterations ({speed['speedup'][ref]:.0f}x)")
    pan = summary["pan"]
    print(f"style strength (median) {_figure(summary['style_strength'])}, content ratio "
          f"{_figure(summary['content_ratio'])}, pan {_figure(pan.get('fast_1px'))} grey levels at 1 px "
          f"({_figure(pan.get('fast_4px'))} at 4 px), noise {_figure(pan.get('fast_noise'))} on a still shot "
          f"(the frames: {_figure(pan.get('photo_noise'))})")
    print(f"wrote {args.report_dir / 'report.md'}")
    return 0


def run_video(args: argparse.Namespace) -> int:
    """``--video``: warping errors on one clip (``styletrans.evaluation.video``), as JSON, a plot and a table."""
    import json

    from tqdm import tqdm

    from styletrans.atomic import atomic_path
    from styletrans.evaluation.video import evaluate_clip, format_table, render_error_plot, style_loss_for, summary_rows
    from styletrans.inference import Stylizer, resolve_model
    from styletrans.inference.registry import pick_precision
    from styletrans.inference.temporal import TemporalSettings
    from styletrans.inference.video import read_frames

    if args.content_dir is not None:
        raise ValueError("give --content-dir PHOTOS or --video CLIP, not both")
    for flag, value, least in (("--limit", args.limit, 1), ("--threads", args.threads, 1),
                               ("--size", args.size, MIN_SIZE)):
        if value is not None and value < least:
            raise ValueError(f"{flag} must be at least {least}, got {value}")
    if args.start_frame < 0 or args.style_loss_every < 0:
        raise ValueError("--start-frame and --style-loss-every must not be negative")
    settings = TemporalSettings() if args.temporal_weight is None else TemporalSettings(weight=args.temporal_weight)
    files = [args.report_dir / "temporal.json", args.report_dir / "temporal.png"]
    if not args.overwrite:
        for path in files:
            if path.exists():
                raise OutputExistsError(path)
    size = args.size
    if size is None and args.stylized:  # score the source at the size the stylized clips were written at
        size = max(next(read_frames(args.stylized[0], limit=1)).shape[:2])
    model = pick_precision(resolve_model(args.model), "auto")  # the file `styletrans stylize` runs
    stylizer = Stylizer(model, threads=args.threads)
    losses = {}
    if args.style_loss_every:  # the painting at the frames' size
        side = max(next(read_frames(args.video, size=size, limit=1)).shape[:2])
        losses[stylizer.style_name] = style_loss_for(stylizer, side, args.style)
    print(f"measuring {stylizer.describe()} on {args.video}", flush=True)
    with tqdm(unit="frame", disable=args.quiet) as bar:
        result = evaluate_clip(args.video, {stylizer.style_name: stylizer},
                               stylized={str(p): p for p in args.stylized}, size=size, start=args.start_frame,
                               limit=args.limit, temporal=settings, losses=losses,
                               style_every=args.style_loss_every, flow=args.flow, progress=bar.update)
    result["model"] = str(model)
    with atomic_path(files[0], overwrite=args.overwrite) as tmp:
        tmp.write_text(json.dumps(result, indent=1, default=float) + "\n")
    with atomic_path(files[1], overwrite=args.overwrite) as tmp:
        render_error_plot([result], tmp)  # the temporary name ends in .png too
    print(f"{result['frames']} frames at {result['size'][0]}x{result['size'][1]}; warping error x1000 "
          f"({result['flow']['evaluation']} flow), ratios to "
          f"the source clip's own (the floor); style loss: change with the blend; pan: grey levels at 1 px")
    print(format_table(summary_rows(result)))
    for label, entry in result["stylized_clips"].items():
        print(f"{label}: {1000 * entry['mean']:.3f} ({entry['ratio_to_source']:.2f}x)")
    print(f"wrote {files[0]} and {files[1]}")
    return 0


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
