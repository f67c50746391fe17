"""Progress you can look at: a fixed grid of validation photos, stylized every N steps, snapshots of
the network every N minutes for quality-per-hour curves, and a bar that counts steps to the end; and a
``last.ckpt`` that is the run's last step."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import WandbLogger
from torch import Tensor
from torchvision.utils import make_grid

from styletrans.atomic import atomic_path
from styletrans.images import save_image, tensor_to_pil


class StepProgressBar(TQDMProgressBar):
    """Lightning's bar counts the batches of an epoch, and the training stream is one endless epoch
    (``N/?``, no time left). This one counts optimizer steps up to ``trainer.max_steps``, so it shows
    the time remaining; a resumed run starts at its step and its rate counts only this session's steps."""

    def on_train_start(self, trainer: pl.Trainer, *args: object) -> None:
        super().on_train_start(trainer, *args)
        self._count_steps(trainer)  # a run resumed mid-epoch gets no on_train_epoch_start

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: object) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._count_steps(trainer)

    def _count_steps(self, trainer: pl.Trainer) -> None:
        if trainer.max_steps > 0:
            bar = self.train_progress_bar
            bar.reset(total=trainer.max_steps)
            bar.initial = bar.n = trainer.global_step
            bar.set_description("Training")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object,
                           batch: object, batch_idx: int) -> None:
        if trainer.max_steps <= 0:
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        bar = self.train_progress_bar
        if self._should_update(trainer.global_step, bar.total):
            bar.n = trainer.global_step
            bar.set_postfix(self.get_metrics(trainer, pl_module))  # refreshes the bar


class SampleGrid(pl.Callback):
    """Saves ``samples/step_NNNNNN.png`` (top row: the photos; below: stylized, a row per style) at the
    start, every ``every_n_steps`` optimizer steps (or ``every_minutes`` of training) and at the end of
    training, and logs it to W&B when the W&B logger is in use. The photos are the first validation
    photos, so every grid of a run shows the same pictures.

    Args:
        every_n_steps: how often to save a grid; 0 = not by steps.
        num_images: how many validation photos the grid shows.
        dirpath: where the PNGs go (default: ``<run_dir>/samples``).
        every_minutes: also save a grid once this much wall-clock time has passed since the last one
            (0, the default: not by time), so a slow machine still shows its progress every few minutes.
        size: side of the photos in the grid (default: the training crops'). Small crops at the photos'
            own scale are a poor view of a whole photo: at 128 px its strokes fill the picture.
    """

    def __init__(self, every_n_steps: int = 500, num_images: int = 4, dirpath: str | None = None,
                 every_minutes: float = 0.0, size: int | None = None) -> None:
        if every_minutes < 0:
            raise ValueError(f"every_minutes must be >= 0, not {every_minutes}")
        self.every_n_steps = every_n_steps
        self.num_images = num_images
        self.dirpath = dirpath
        self.every_seconds = 60.0 * every_minutes
        self.size = size
        self._photos: Tensor | None = None
        self._last_step = -1
        self._last_time = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_time = time.perf_counter()
        if trainer.is_global_zero:
            self._photos = trainer.datamodule.preview_images(self.num_images, self.size)
            if trainer.global_step == 0:
                self.save(trainer, pl_module)  # the untrained starting point

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        by_steps = self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0
        by_time = self.every_seconds > 0 and time.perf_counter() - self._last_time >= self.every_seconds
        if by_steps or by_time:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer, pl_module)

    @torch.no_grad()
    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Path | None:
        step = trainer.global_step
        if not trainer.is_global_zero or self._photos is None or step == self._last_step:
            return None
        self._last_step = step
        self._last_time = time.perf_counter()
        photos = self._photos.to(pl_module.device)
        rows = pl_module.preview(photos)
        grid = make_grid(torch.cat([photos, *rows]), nrow=len(photos), padding=2, pad_value=1.0)
        root = Path(self.dirpath or Path(trainer.default_root_dir) / "samples")
        path = save_image(grid, root / f"step_{step:06d}.png", overwrite=True)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="samples", images=[tensor_to_pil(grid)], step=step, caption=[f"step {step}"])
        return path


class LastStepCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` holds the final step. Lightning writes it at the end of
    training only when nothing was saved before, so a run that reaches ``max_steps`` between two
    ``every_n_train_steps`` saves would keep an older ``last.ckpt`` (and lose the end of an anneal)."""

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)

    @property
    def state_key(self) -> str:
        # Keyed as a plain ModelCheckpoint: checkpoints written before this class resume with their state.
        return "ModelCheckpoint" + super().state_key.removeprefix(type(self).__qualname__)


class TimedSnapshots(pl.Callback):
    """Saves the network every ``every_minutes`` of training wall-clock time, for quality-per-hour
    curves: ``snapshots/minute_MMM.M.ckpt`` (weights and hyper-parameters only, loadable by
    ``styletrans evaluate``/``export``) and ``snapshots/index.json`` listing step and seconds.

    The clock counts the whole fit loop (steps, validation, sample grids), since that is what a
    run costs; it survives a resume (its elapsed seconds travel in the checkpoint).

    Args:
        every_minutes: snapshot interval; 0 (the default) = off.
        dirpath: where the snapshots go (default: ``<run_dir>/snapshots``).
    """

    def __init__(self, every_minutes: float = 0.0, dirpath: str | None = None) -> None:
        if every_minutes < 0:
            raise ValueError(f"every_minutes must be >= 0, not {every_minutes}")
        self.every_seconds = 60.0 * every_minutes
        self.dirpath = dirpath
        self.elapsed_before = 0.0  # seconds trained before this process started (resume)
        self._started: float | None = None
        self._taken = 0
        self._last_step = -1

    def state_dict(self) -> dict[str, float]:
        return {"elapsed_seconds": self.elapsed()}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.elapsed_before = float(state.get("elapsed_seconds", 0.0))
        # Counted from the clock, not restored: a run resumed with another interval goes on from here.
        self._taken = int(self.elapsed_before // self.every_seconds) if self.every_seconds > 0 else 0

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._started if self._started is not None else 0.0)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if self.every_seconds > 0 and self.elapsed() >= (self._taken + 1) * self.every_seconds:
            self._taken = int(self.elapsed() // self.every_seconds)  # one snapshot, however late
            self.save(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_seconds > 0:
            self.save(trainer, pl_module)  # the end point of the curve

    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seconds, step = self.elapsed(), trainer.global_step
        if not trainer.is_global_zero or step == self._last_step:
            return
        self._last_step = step
        root = Path(self.dirpath or Path(trainer.default_root_dir) / "snapshots")
        path = root / f"minute_{seconds / 60:05.1f}.ckpt"
        state = {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}
        with atomic_path(path, overwrite=True) as tmp:
            torch.save({"state_dict": state, "hyper_parameters": dict(pl_module.hparams),
                        "global_step": step, "train_seconds": seconds}, tmp)
        index_path = root / "index.json"
        index = json.loads(index_path.read_text()) if index_path.is_file() else []
        index = [entry for entry in index if entry["step"] < step]  # a resumed run replaces what it redoes
        index.append({"file": path.name, "step": step, "seconds": round(seconds, 1)})
        with atomic_path(index_path, overwrite=True) as tmp:
            tmp.write_text(json.dumps(index, indent=1) + "\n")
