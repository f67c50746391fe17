"""Progress you can look at: a fixed grid of validation photos, stylized every N steps."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from torch import Tensor
from torchvision.utils import make_grid

from styletrans.images import save_image, tensor_to_pil


class SampleGrid(pl.Callback):
    """Saves ``samples/step_NNNNNN.png`` (top row: the photos; bottom row: stylized) at the
    start, every ``every_n_steps`` optimizer steps and at the end of training, and logs it
    to W&B when the W&B logger is in use. The photos are the first validation photos, so
    every grid of a run shows the same pictures.

    Args:
        every_n_steps: how often to save a grid; 0 = only at start and end.
        num_images: how many validation photos the grid shows.
        dirpath: where the PNGs go (default: ``<run_dir>/samples``).
    """

    def __init__(self, every_n_steps: int = 500, num_images: int = 4, dirpath: str | None = None) -> None:
        self.every_n_steps = every_n_steps
        self.num_images = num_images
        self.dirpath = dirpath
        self._photos: Tensor | None = None
        self._last_step = -1

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self._photos = trainer.datamodule.preview_images(self.num_images)
            if trainer.global_step == 0:
                self.save(trainer, pl_module)  # the untrained starting point

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer, pl_module)

    @torch.no_grad()
    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Path | None:
        step = trainer.global_step
        if not trainer.is_global_zero or self._photos is None or step == self._last_step:
            return None
        self._last_step = step
        photos = self._photos.to(pl_module.device)
        stylized = pl_module.transformer(photos).float()
        grid = make_grid(torch.cat([photos, stylized]), nrow=len(photos), padding=2, pad_value=1.0)
        root = Path(self.dirpath or Path(trainer.default_root_dir) / "samples")
        path = save_image(grid, root / f"step_{step:06d}.png", overwrite=True)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="samples", images=[tensor_to_pil(grid)], step=step, caption=[f"step {step}"])
        return path
