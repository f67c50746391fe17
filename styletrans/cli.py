"""The ``styletrans`` command: one subcommand per module in ``styletrans.commands``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import styletrans.commands

# Each module in ``styletrans.commands`` defines ``add_parser(subparsers)``, which
# registers its handler with ``set_defaults(handler=...)``; listed in this order.
ORDER = ("demo", "optimize", "train", "export", "stylize", "serve", "evaluate", "diagnose", "weights")


class CommandError(Exception):
    """A user-facing failure: printed as ``error: ...`` with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="styletrans",
        description="Fast neural style transfer: train, optimize, export, stylize, serve, diagnose.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    found = [m.name for m in pkgutil.iter_modules(styletrans.commands.__path__)]
    for name in sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        importlib.import_module(f"styletrans.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from styletrans.atomic import OutputExistsError
    from styletrans.images import ImageError
    from styletrans.weights import WeightsError

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (CommandError, ImageError, WeightsError, OutputExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
