"""``styletrans train``: LightningCLI over the style-transfer module and the photo folder.

Every option is a YAML key and a flag (``--trainer.max_steps 500``, ``--model.style_weight 10``).
Project defaults on top of Lightning's: W&B logging in offline mode, step-based
validation and checkpoints (last + best by validation loss), a sample grid every N steps,
and mixed precision chosen per device. Everything a run writes goes into one run
directory (``runs/<style_name>/version_N`` unless ``--run_dir`` is given).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from jsonargparse import DefaultHelpFormatter, lazy_instance
from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import Callback, ProgressBar
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import WandbLogger

from styletrans.training.callbacks import LastStepCheckpoint, SampleGrid, StepProgressBar, TimedSnapshots
from styletrans.training.data import ContentImages
from styletrans.training.module import StyleTransferModule

USAGE = "styletrans train [--config CONFIG.yaml] --data DIR [--ckpt_path CKPT] [--SECTION.OPTION VALUE ...]"
DESCRIPTION = """Train a fast style-transfer network for one style image.

  styletrans train --config configs/starry_night.yaml --data PHOTOS_DIR
  styletrans train --config configs/starry_night.yaml --data PHOTOS_DIR --trainer.max_steps 2000
  styletrans train --config configs/starry_night.yaml --data PHOTOS_DIR \\
      --ckpt_path runs/starry_night/version_0/checkpoints/last.ckpt     # resume

--data DIR is short for --data.root DIR. Logs go to W&B in offline mode (sync later with
`wandb sync`); --trainer.logger.offline false or WANDB_MODE=online logs online,
--trainer.logger CSVLogger writes CSV instead. --trainer.precision defaults to bf16-mixed
on GPUs that support it, 16-mixed on other GPUs, 32-true on CPU."""


def default_precision(accelerator: str = "auto") -> str:
    """bf16 autocast on GPUs that have it, fp16 autocast (with loss scaling) on other GPUs, fp32 on CPU."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def next_run_dir(parent: Path) -> Path:
    """``parent/version_N`` with the first unused N."""
    taken = {p.name for p in parent.glob("version_*")} if parent.is_dir() else set()
    return parent / next(f"version_{n}" for n in range(len(taken) + 1) if f"version_{n}" not in taken)


def expand_data_shorthand(args: Sequence[str]) -> list[str]:
    """``--data DIR`` / ``--data=DIR`` -> ``--data.root DIR``. ``--data`` keeps its LightningCLI
    meaning (a data config file, or inline YAML) when given an existing file or ``{...}``."""

    def is_config(value: str) -> bool:
        return value.lstrip().startswith("{") or Path(value).expanduser().is_file()

    out = list(args)
    for i, arg in enumerate(out):
        if arg == "--data" and i + 1 < len(out) and not is_config(out[i + 1]):
            out[i] = "--data.root"
        elif arg.startswith("--data=") and not is_config(arg[7:]):
            out[i] = "--data.root=" + arg[7:]
    return out


class HelpFormatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of DESCRIPTION (its examples)."""


TRAINER_DEFAULTS: dict[str, Any] = {
    "max_steps": 40_000,  # Johnson et al.: 40k iterations of batch 4 (two epochs of COCO)
    "val_check_interval": 1000,  # Johnson et al.: validation and checkpoint every 1000 iterations
    "check_val_every_n_epoch": None,  # the training stream has no epochs: validate by step
    "log_every_n_steps": 50,
    "num_sanity_val_steps": 1,
    "use_distributed_sampler": False,  # ContentImages shards the stream per rank itself
    "benchmark": True,  # fixed input sizes: let cuDNN pick the fastest kernels
    "logger": lazy_instance(WandbLogger, project="styletrans",
                            offline=os.environ.get("WANDB_MODE", "offline") != "online"),
}


class StyleTransferCLI(LightningCLI):
    """LightningCLI with ``--ckpt_path``, ``--run_dir``, ``checkpoint.*``, ``samples.*``, ``snapshots.*``,
    and a progress bar that counts steps to ``trainer.max_steps``."""

    def __init__(self, args: Sequence[str] | None = None) -> None:
        super().__init__(
            StyleTransferModule,
            ContentImages,
            trainer_defaults=TRAINER_DEFAULTS,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},  # a resumed run rewrites its config.yaml
            parser_kwargs={"prog": "styletrans train", "usage": USAGE, "description": DESCRIPTION,
                           "formatter_class": HelpFormatter},
            auto_configure_optimizers=False,  # the module's own Adam + schedule
            load_from_checkpoint_support=False,  # keep hyper_parameters plain
            run=False,
            args=args,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="resume from this checkpoint (e.g. RUN/checkpoints/last.ckpt): same step, "
                                 "optimizer state and data order")
        parser.add_argument("--run_dir", type=str | None, default=None,
                            help="where checkpoints, samples, logs and config.yaml go (default: "
                                 "runs/<style_name>/version_N, or RUN when resuming from RUN/checkpoints/*.ckpt)")
        parser.link_arguments("data.image_size", "model.image_size")
        parser.add_lightning_class_args(LastStepCheckpoint, "checkpoint")
        parser.set_defaults({
            "checkpoint.monitor": "val/total",
            "checkpoint.filename": "best-{step:06d}",
            "checkpoint.save_last": True,
            "checkpoint.save_top_k": 1,
        })
        parser.add_lightning_class_args(SampleGrid, "samples")
        parser.add_lightning_class_args(TimedSnapshots, "snapshots")

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        listed = config.get("callbacks") or []
        listed = listed if isinstance(listed, list) else [listed]
        if config.get("enable_progress_bar") is not False and not any(
                isinstance(c, ProgressBar) for c in [*listed, *callbacks]):
            callbacks = [*callbacks, StepProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        if args is None:
            args = sys.argv[1:]
        if isinstance(args, dict):
            self.config = parser.parse_object(args)
        else:  # not super(): it warns when called with args from inside another command
            self.config = parser.parse_args(expand_data_shorthand(args))

    def before_instantiate_classes(self) -> None:
        cfg = self.config
        if cfg.ckpt_path and not Path(cfg.ckpt_path).is_file():  # before W&B starts a run
            raise ValueError(f"--ckpt_path {cfg.ckpt_path}: no such checkpoint file")
        if cfg.trainer.precision is None:
            cfg.trainer.precision = default_precision(str(cfg.trainer.accelerator))
        cfg.run_dir = str(self.resolve_run_dir())
        run_dir = Path(cfg.run_dir)
        cfg.trainer.default_root_dir = str(run_dir)
        if cfg.checkpoint.dirpath is None:
            cfg.checkpoint.dirpath = str(run_dir / "checkpoints")
        if cfg.samples.dirpath is None:
            cfg.samples.dirpath = str(run_dir / "samples")
        if cfg.snapshots.dirpath is None:
            cfg.snapshots.dirpath = str(run_dir / "snapshots")
        loggers = cfg.trainer.logger if isinstance(cfg.trainer.logger, list) else [cfg.trainer.logger]
        for logger in loggers:
            if getattr(logger, "init_args", None) is not None:
                self.place_logger(logger, run_dir)

    def place_logger(self, logger: Any, run_dir: Path) -> None:
        """Loggers without an explicit save_dir write into the run directory (CSVLogger's
        name/version sub-folders flattened, so metrics.csv sits in the run directory)."""
        init = logger.init_args
        if init.get("save_dir") in (None, ".", "lightning_logs"):
            init.save_dir = str(run_dir)
        kind = logger.class_path.rsplit(".", 1)[-1]
        if kind == "WandbLogger" and not init.get("name"):
            init.name = f"{Path(run_dir).parent.name}/{run_dir.name}"
        if kind == "CSVLogger":
            init.name, init.version = "", ""

    def resolve_run_dir(self) -> Path:
        cfg = self.config
        if cfg.run_dir:
            return Path(cfg.run_dir)
        if cfg.ckpt_path and Path(cfg.ckpt_path).parent.name == "checkpoints":
            return Path(cfg.ckpt_path).parent.parent
        style = cfg.model.style_name or Path(cfg.model.style_image).stem
        # Only rank 0 writes; other DDP ranks may compute a different (unused) version.
        return next_run_dir(Path("runs") / style)

    def fit(self) -> None:
        self.trainer.fit(self.model, datamodule=self.datamodule, ckpt_path=self.config.ckpt_path)


def main(args: Sequence[str] | None = None) -> StyleTransferCLI:
    """Parse ``args`` (default: ``sys.argv[1:]``), train, and return the CLI (its trainer holds the results)."""
    cli = StyleTransferCLI(args)
    cli.fit()
    return cli
