"""``styletrans diagnose``: look inside the CNNs, one method per subcommand, or all.

Each method's options are generated from its settings dataclass, so the command
line, the Python API and the JSON ``settings`` always agree.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

from styletrans.diagnostics import METHODS
from styletrans.diagnostics.base import Method

DEFAULT_CLASSIFIER = "efficientnet-lite0"
DEFAULT_FEATURES = "vgg16-caffe"


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except empty ones (None, False, ()), whose help says what happens."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == ():
            return action.help
        return super()._get_help_string(action)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "diagnose", help="visualize what a CNN sees: filters, saliency, class images, DeepDream, ...",
        description="Twelve visualization methods; each writes a PNG panel and a JSON summary. "
        "`diagnose all` renders them all into a gallery folder with an index.html.",
    )
    sub = p.add_subparsers(dest="method", required=True, metavar="METHOD")
    for name, cls in METHODS.items():
        mp = sub.add_parser(name, help=cls.summary, description=(cls.__doc__ or "").strip(),
                            formatter_class=_Formatter)
        _add_common(mp, gallery=False)
        group = mp.add_argument_group(f"{name} options")
        _add_method_options(group, cls)
        mp.set_defaults(handler=run_method, method_class=cls)

    ap = sub.add_parser("all", help="every method into a gallery folder (PNGs, JSONs, index.html)",
                        formatter_class=_Formatter)
    _add_common(ap, gallery=True)
    ap.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS), metavar="METHOD",
                    help="methods to run, in order")
    ap.add_argument("--set", action="append", default=[], metavar="METHOD.SETTING=VALUE",
                    help="change a method's setting, repeatable: --set texture.sample=starry_night "
                    "--set max-patches.per-image=3 (several values: space-separated, quoted)")
    ap.set_defaults(handler=run_all)

    lp = sub.add_parser("layers", help="list a network's layer names and output shapes")
    lp.add_argument("--network", default=DEFAULT_FEATURES, help="any network source (efficientnet-lite0, "
                    "vgg16-caffe, torchvision:NAME, ...)")
    lp.add_argument("--size", type=int, default=224, help="input side used to compute the shapes")
    lp.set_defaults(handler=run_layers)


def _add_common(p: argparse.ArgumentParser, gallery: bool) -> None:
    p.add_argument("--image", help="photo: a path or a bundled name (astronaut, chelsea, coffee, rocket)")
    p.add_argument("--folder", type=Path, help="folder of images (neighbors, embedding, max-patches)")
    if gallery:
        p.add_argument("--out", "-o", type=Path, required=True, help="gallery folder")
    else:
        p.add_argument("--out", "-o", type=Path, required=True, help="panel PNG")
        p.add_argument("--json", type=Path, default=None, help="summary JSON (default: OUT with .json)")
    p.add_argument("--classifier", default=DEFAULT_CLASSIFIER, help="class-level network: efficientnet-lite0, "
                   "torchvision:NAME (e.g. torchvision:resnet50, needs a network once), tiny-random[:SEED]")
    p.add_argument("--features", default=DEFAULT_FEATURES, help="layer-level network: a VGG weight source "
                   "(vgg16-caffe, vgg16-torchvision, file:PATH, random[:SEED]) or any network source")
    p.add_argument("--max-images", type=int, default=300, help="use at most this many folder images")
    p.add_argument("--dpi", type=int, default=80, help="panel resolution (pixels per inch; tiles are 1-4 inches)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _option_type(hint: Any) -> tuple[type, bool]:
    """(element type, is a tuple) of a setting's annotation."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return args[0], True
    return hint, False


def _add_method_options(group: argparse._ArgumentGroup, cls: type[Method]) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind, many = _option_type(hints[f.name])
        kwargs: dict[str, Any] = {"default": f.default, "help": f.metadata.get("help", ""), "dest": f"opt_{f.name}",
                                  "metavar": f.name.upper()}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
            del kwargs["metavar"]
        else:
            kwargs["type"] = kind
            if many:
                kwargs["nargs"] = "+"
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
                kwargs["metavar"] = "{" + ",".join(f.metadata["choices"]) + "}"
        group.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def _method_from_args(cls: type[Method], args: argparse.Namespace) -> Method:
    values = {f.name: getattr(args, f"opt_{f.name}") for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _parse_assignment(assignment: str, methods: dict[str, Method]) -> tuple[str, str, Any]:
    """``"max-patches.per-image=3"`` -> ``("max-patches", "per_image", 3)``, typed by the setting."""
    key, equals, text = assignment.partition("=")
    name, dot, setting = key.partition(".")
    if not equals or not dot:
        raise ValueError(f"--set {assignment!r}: expected METHOD.SETTING=VALUE")
    if name not in methods:
        raise ValueError(f"--set {assignment!r}: {name!r} is not among the methods run ({', '.join(methods)})")
    cls = type(methods[name])
    fields = {f.name: f for f in dataclasses.fields(cls)}
    setting = setting.replace("-", "_")
    if setting not in fields:
        raise ValueError(f"--set {assignment!r}: {name} has no setting {setting!r}; "
                         f"settings: {', '.join(f.replace('_', '-') for f in fields)}")
    kind, many = _option_type(typing.get_type_hints(cls)[setting])

    def convert(word: str) -> Any:
        if kind is bool:
            return word.lower() in ("1", "true", "yes", "on")
        value = kind(word)
        choices = fields[setting].metadata.get("choices")
        if choices and value not in choices:
            raise ValueError(f"--set {assignment!r}: {setting} must be one of {', '.join(choices)}")
        return value

    return name, setting, tuple(convert(w) for w in text.split()) if many else convert(text)


def _context(args: argparse.Namespace):
    from styletrans.commands.optimize import pick_device
    from styletrans.diagnostics import Context

    return Context(args.image, args.folder, classifier=args.classifier, features=args.features,
                   device=pick_device(args.device), progress=not args.quiet, max_images=args.max_images,
                   seed=args.seed)


def _check_inputs(cls: type[Method], args: argparse.Namespace) -> None:
    if "image" in cls.needs and not args.image:
        raise ValueError(f"{cls.name} needs --image PHOTO")
    if "folder" in cls.needs and not args.folder:
        raise ValueError(f"{cls.name} needs --folder DIR")


def run_method(args: argparse.Namespace) -> int:
    import torch

    from styletrans.atomic import OutputExistsError

    cls = args.method_class
    _check_inputs(cls, args)
    method = _method_from_args(cls, args)
    json_path = args.json or args.out.with_suffix(".json")
    if args.out.suffix.lower() != ".png":
        raise ValueError(f"{args.out}: the panel is written as PNG (use a .png name)")
    for path in (args.out, json_path):  # fail before the work, not after
        if path.exists() and not args.overwrite:
            raise OutputExistsError(path)
    torch.manual_seed(args.seed)
    result = method.run(_context(args))
    png, js = result.save(args.out, json_path, overwrite=args.overwrite, dpi=args.dpi)
    print(f"wrote {png} and {js}")
    return 0


def run_all(args: argparse.Namespace) -> int:
    import torch

    from styletrans.diagnostics.gallery import render_gallery

    names = list(dict.fromkeys(args.methods))
    if not args.image and any("image" in METHODS[n].needs for n in names):
        raise ValueError("diagnose all needs --image PHOTO (or --methods without image-based methods)")
    if not args.folder and any("folder" in METHODS[n].needs for n in names):
        raise ValueError("diagnose all needs --folder DIR (or --methods without folder-based methods)")
    methods = {name: METHODS[name]() for name in names}
    for assignment in args.set:
        name, setting, value = _parse_assignment(assignment, methods)
        methods[name] = dataclasses.replace(methods[name], **{setting: value})
    torch.manual_seed(args.seed)
    index = render_gallery(_context(args), methods, args.out, overwrite=args.overwrite, dpi=args.dpi)
    print(f"wrote {args.out / 'index.html'} ({len(names) - len(index['failed'])}/{len(names)} panels)")
    return 1 if index["failed"] else 0


def run_layers(args: argparse.Namespace) -> int:
    import torch

    from styletrans.diagnostics.hooks import record_activations
    from styletrans.diagnostics.networks import load_network

    net = load_network(args.network)
    modules = {name: net.layer(name) for name in net.layer_names}
    with record_activations(modules) as recorded, torch.no_grad():
        net(torch.rand(1, 3, args.size, args.size))
    for name in net.layer_names:
        shape = tuple(recorded[name].shape) if isinstance(recorded.get(name), torch.Tensor) else "-"
        print(f"{name:<32} {type(modules[name]).__name__:<22} {shape}")
    return 0
