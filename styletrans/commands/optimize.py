"""``styletrans optimize``: Gatys style transfer, texture synthesis, feature inversion."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from styletrans.assets import resolve_image
from styletrans.atomic import OutputExistsError, atomic_path
from styletrans.evaluation.artifacts import dot_score, lattice_score
from styletrans.images import load_image, save_image
from styletrans.optimize.engine import OPTIMIZERS
from styletrans.optimize.gatys import (
    INITS,
    PRESETS,
    GatysSettings,
    invert_features,
    run_gatys,
    synthesize_texture,
)
from styletrans.vgg import available_layers


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    d = GatysSettings()
    big = PRESETS["default"]((341, 512))
    p = subparsers.add_parser(
        "optimize", help="slow, optimization-based style transfer (Gatys et al.)",
        description="Optimize an image against VGG content/style losses. --content and --style "
        "take a path or a bundled name (photos: astronaut, chelsea, coffee, rocket; styles: "
        "starry_night, great_wave, the_scream, ...).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--mode", choices=("style", "texture", "invert"), default="style",
                   help="style: content+style; texture: style only, from noise; invert: content only")
    p.add_argument("--content", help="content photo (modes style, invert)")
    p.add_argument("--style", help="style image (modes style, texture)")
    p.add_argument("--output", "-o", required=True, type=Path, help="output image (.png/.jpg/.webp)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="settings the flags below override: this project's (neural-style's losses from the photo, "
                   f"{d.iterations} iterations up to 256 px, above it {big.coarse_iterations[0]} at half size "
                   f"(100 for squares) and {big.iterations} at full size), or jcjohnson/neural-style's (its weights, "
                   "TV, noise init and 1000 iterations)")
    p.add_argument("--size", type=int, default=512, help="longest side of the output")
    p.add_argument("--style-size", type=int, default=None, help="longest side of the style image (default: --size)")
    p.add_argument("--iterations", type=int, default=argparse.SUPPRESS,
                   help="at the output size (default: the preset's)")
    p.add_argument("--optimizer", choices=OPTIMIZERS[:2], default=argparse.SUPPRESS,
                   help=f"default: the preset's ({d.optimizer} in both)")
    p.add_argument("--lr", type=float, default=None,
                   help="step size (default: 1 for lbfgs; for adam, 0.02 of the pixel range)")
    p.add_argument("--content-weight", type=float, default=argparse.SUPPRESS,
                   help=f"default: the preset's ({d.content_weight:g} in preset default)")
    p.add_argument("--style-weight", type=float, default=argparse.SUPPRESS,
                   help=f"default: the preset's ({d.style_weight:g} in preset default)")
    p.add_argument("--tv-weight", type=float, default=argparse.SUPPRESS,
                   help=f"default: the preset's ({d.tv_weight:g} in preset default; 1 %% of it in mode invert)")
    p.add_argument("--init", choices=INITS, default=argparse.SUPPRESS,
                   help="start image (default: the preset's in mode style, noise otherwise)")
    p.add_argument("--layer", default="relu3_3", help="layer to invert (mode invert)")
    p.add_argument("--coarse-iterations", type=_iteration_list, default=argparse.SUPPRESS,
                   help="iterations at coarser scales first, coarsest first, each half the next one's size, "
                   "e.g. 200,100; 0 for the output size only (default: the preset's)")
    p.add_argument("--preserve-color", action="store_true", help="transfer luminance only, keep the photo's colours")
    p.add_argument("--loss-network", default=argparse.SUPPRESS,
                   help=f"weight source (see `styletrans weights list`; default: {d.loss_network})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the loss network (GPU)")
    p.add_argument("--loss-json", type=Path, default=None, help="loss curve JSON (default: OUTPUT with .json)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def _iteration_list(text: str) -> tuple[int, ...]:
    """"200,100" -> (200, 100); "0" or "" -> () (no coarse scales)."""
    if text.strip() in ("", "0"):
        return ()
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError(f"expected positive iteration counts separated by commas, got {text!r}")
    return counts


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA GPU is available")
    return device


def run(args: argparse.Namespace) -> int:
    needs_content, needs_style = args.mode in ("style", "invert"), args.mode in ("style", "texture")
    if needs_content and not args.content:
        raise ValueError(f"--mode {args.mode} needs --content")
    if needs_style and not args.style:
        raise ValueError(f"--mode {args.mode} needs --style")
    loss_json = args.loss_json or args.output.with_suffix(".json")
    for path in (args.output, loss_json):  # fail before minutes of work, not after
        if path.exists() and not args.overwrite:
            raise OutputExistsError(path)

    device = pick_device(args.device)
    content = load_image(resolve_image(args.content, "photos"), args.size) if needs_content else None
    style = load_image(resolve_image(args.style, "styles"), args.style_size or args.size) if needs_style else None
    output = content if content is not None else style
    settings = PRESETS[args.preset](tuple(output.shape[-2:]))
    given = {k: v for k, v in vars(args).items()  # flags left out keep the preset's value
             if k in ("loss_network", "content_weight", "style_weight", "tv_weight", "optimizer", "iterations",
                      "coarse_iterations", "init")}
    if args.mode != "style":
        given.setdefault("init", "noise")
    if args.mode == "invert":  # the style's TV smears a reconstruction: 1 % of it keeps relu3_3's detail
        given.setdefault("tv_weight", settings.tv_weight / 100)
    settings = replace(settings, **given)
    lr = args.lr if args.lr is not None else (1.0 if settings.optimizer == "lbfgs" else 0.02 * settings.pixel_scale)
    settings = replace(settings, lr=lr)
    if args.mode == "invert" and args.layer not in available_layers():
        raise ValueError(f"unknown layer {args.layer!r}; one of {available_layers()}")

    torch.manual_seed(args.seed)
    start = time.perf_counter()
    common = dict(seed=args.seed, device=device, progress=not args.quiet,
                  autocast_dtype=torch.bfloat16 if args.bf16 else None)
    if args.mode == "texture":
        result = synthesize_texture(style, tuple(style.shape[-2:]), settings, **common)
    elif args.mode == "invert":
        result = invert_features(content, args.layer, settings, **common)
    else:
        result = run_gatys(content, style, settings, preserve_color=args.preserve_color, **common)
    seconds = time.perf_counter() - start
    save_image(result.image, args.output, overwrite=args.overwrite)
    report = {
        "mode": args.mode, "content": args.content, "style": args.style,
        "size": list(result.image.shape[-2:]), "device": str(device), "seconds": round(seconds, 3),
        "preserve_color": args.preserve_color, "seed": args.seed,
        "preset": args.preset, "settings": asdict(settings),
        # Artifact scores (styletrans.evaluation.artifacts): lattice, photos 0.01-0.05 and a visible lattice
        # 0.15+; dots (share of pixels), photos 0.000-0.02 and Gatys with relative style terms 0.08+.
        "lattice": round(lattice_score(result.image), 4),
        "dots": round(dot_score(result.image), 4),
        "final": result.history[-1] if result.history else {},
        "history": result.history,
    }
    with atomic_path(loss_json, overwrite=args.overwrite) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    final = report["final"]
    print(f"wrote {args.output} ({result.image.shape[-1]}x{result.image.shape[-2]}) in {seconds:.1f}s on "
          f"{device}; final loss {final.get('loss', float('nan')):.4g} "
          f"(content {final.get('content', 0):.4g}, style {final.get('style', 0):.4g}, tv {final.get('tv', 0):.4g}); "
          f"lattice score {report['lattice']:.3f}, dots {report['dots']:.3f}; "
          f"loss curve: {loss_json}")
    return 0
