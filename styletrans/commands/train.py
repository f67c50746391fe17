"""``styletrans train``: hands its arguments to the LightningCLI in ``styletrans.training.cli``."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a fast style-transfer network (see `styletrans train --help`)",
        # No options of its own: every argument, --help included, goes to LightningCLI.
        # An unused prefix character stops argparse from reading `--config` etc. as options here.
        add_help=False, prefix_chars="\0",
    )
    p.add_argument("cli_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from styletrans.training.cli import main

    # Argument errors exit through jsonargparse (status 2, with its own message); Ctrl-C
    # exits through Lightning's graceful shutdown (status 1).
    trainer = main(args.cli_args).trainer
    ckpt = trainer.checkpoint_callback
    if trainer.is_global_zero and ckpt is not None:
        print(f"run directory: {trainer.default_root_dir}")
        if ckpt.best_model_path and ckpt.best_model_score is not None:  # a resumed run may not have validated yet
            print(f"best checkpoint: {ckpt.best_model_path} (val/total {float(ckpt.best_model_score):.4g})")
        if ckpt.last_model_path:
            print(f"last checkpoint: {ckpt.last_model_path} (step {trainer.global_step})")
    return 0
