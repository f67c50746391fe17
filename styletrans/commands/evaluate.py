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
    p.add_argument("--content-dir", required=True, type=Path, help="folder of content photos (searched recursively)")
    p.add_argument("--report-dir", "-o", required=True, type=Path, help="where report.md, report.json and PNGs go")
    p.add_argument("--size", type=int, default=512, help="longest side the photos are scaled to (default: 512)")
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
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N photos (sorted by path)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default); both methods run there")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for both methods (default: PyTorch's and ONNX Runtime's own choice)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS even if its weights are available")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report's files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
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
              f"pan {_figure(result.pan.get('fast_1px'))} grey levels")
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
          f"({_figure(pan.get('fast_4px'))} at 4 px)")
    print(f"wrote {args.report_dir / 'report.md'}")
    return 0


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
