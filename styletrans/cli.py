"""The ``styletrans`` command: one subcommand per module in ``styletrans.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module defines ``add_parser(subparsers)`` (registering ``run`` as the handler).
COMMANDS = (
    "styletrans.commands.optimize",
    "styletrans.commands.weights",
)


class CommandError(Exception):
    """A user-facing failure: printed as ``error: ...`` with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="styletrans",
        description="Fast neural style transfer: train, optimize, export, stylize, serve, diagnose.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_parser(subparsers)
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
