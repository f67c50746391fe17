"""Content photos for training: a folder of images, random resized crops, a fixed validation split.

The training stream is a pure function of ``(seed, sample number)``: sample ``g`` is
file ``permutation(epoch)[g % N]`` with crop parameters drawn from a generator seeded
by ``(seed, g)``. Resuming at step ``s`` therefore starts the sampler at sample
``s * batch_size * world_size`` and reproduces the uninterrupted run exactly, whatever
the number of loader workers; the checkpoint carries only that sample count (so a run
resumed with another number of processes continues the stream too), no RNG state.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from styletrans.images import ImageError, find_images, open_rgb, pil_to_tensor

# Crops cover this fraction of a photo's area, with aspect ratios in RATIO. Johnson et al.
# resized whole COCO photos to 256x256; crops add variety without zooming in so far that
# the network only sees blurry, upscaled pixels.
DEFAULT_CROP_SCALE = (0.5, 1.0)
RATIO = (3 / 4, 4 / 3)
BUNDLED_PHOTOS = "bundled"


def probe(path: Path) -> str | None:
    """Why ``path`` cannot be an image (reads the header only), or ``None`` if it looks fine."""
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        with Image.open(path) as img:
            img.size  # noqa: B018 - the header parse is the check
    except (OSError, SyntaxError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    return None


def random_crop_box(width: int, height: int, rng: np.random.Generator,
                    scale: tuple[float, float] = DEFAULT_CROP_SCALE) -> tuple[int, int, int, int]:
    """A (left, top, right, bottom) box of ``scale`` x the area and an aspect ratio in ``RATIO``
    (the parameters of torchvision's RandomResizedCrop, from an explicit generator)."""
    area = width * height
    log_ratio = (math.log(RATIO[0]), math.log(RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    return center_square(width, height)  # fallback: the largest centred square


def center_square(width: int, height: int) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of the largest centred square."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


class TrainCrops(Dataset):
    """Sample number ``g`` (0, 1, 2, ... without end) -> a random crop (3, S, S) in [0, 1]."""

    def __init__(self, files: Sequence[Path], image_size: int, seed: int = 0,
                 crop_scale: tuple[float, float] = DEFAULT_CROP_SCALE) -> None:
        if not files:
            raise ValueError("no training images")
        self.files = list(files)
        self.image_size = image_size
        self.seed = seed
        self.crop_scale = crop_scale

    @lru_cache(maxsize=2)  # noqa: B019 - one permutation per epoch, cached per worker
    def permutation(self, epoch: int) -> list[int]:
        return torch.randperm(len(self.files), generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()

    def __getitem__(self, sample: int) -> Tensor:
        epoch, position = divmod(sample, len(self.files))
        index = self.permutation(epoch)[position]
        # A file that fails at load time (e.g. truncated after a valid header) is replaced by
        # the next one in the list, so the stream stays deterministic.
        for attempt in range(len(self.files)):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                img = open_rgb(path)
                break
            except ImageError as exc:
                warnings.warn(f"skipping unreadable training image: {exc}", stacklevel=2)
        else:
            raise ImageError("every training image failed to load")
        rng = np.random.default_rng([self.seed, sample])
        box = random_crop_box(img.width, img.height, rng, self.crop_scale)
        size = (self.image_size, self.image_size)
        return pil_to_tensor(img.resize(size, Image.Resampling.BILINEAR, box=box, reducing_gap=2.0))


class CenterCrops(Dataset):
    """Validation: the largest centred square of each file, resized to (3, S, S)."""

    def __init__(self, files: Sequence[Path], image_size: int) -> None:
        self.files = list(files)
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor:
        img = open_rgb(self.files[index])
        box = center_square(img.width, img.height)
        size = (self.image_size, self.image_size)
        return pil_to_tensor(img.resize(size, Image.Resampling.BILINEAR, box=box, reducing_gap=2.0))


class StreamSampler(Sampler[int]):
    """Endless sample numbers ``start + rank, start + rank + world, ...`` (no ``__len__``:
    training is counted in steps, not epochs). Each DDP rank reads a disjoint share."""

    def __init__(self, start: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.start, self.rank, self.world_size = start, rank, world_size

    def __iter__(self) -> Iterator[int]:
        sample = self.start + self.rank
        while True:
            yield sample
            sample += self.world_size


class ContentImages(pl.LightningDataModule):
    """Training and validation photos from one folder (searched recursively).

    Args:
        root: folder of content photos (any format ``styletrans.images`` reads; greyscale is fine), or
            ``bundled``: the few photos that ship with styletrans (``styletrans/assets/photos``), enough to
            try a new style on a base (``configs/recipes/new-style.yaml``), not to train a network.
        image_size: side of the square training crops (Johnson et al.: 256).
        batch_size: images per step and device (Johnson et al.: 4).
        num_workers: loader processes; ``None`` = one per CPU core beyond the first, at most 8.
        val_fraction: share of the photos held out for validation (at least 1, at most ``val_max``).
        val_max: upper bound on the validation photos.
        crop_scale: range of the area fraction each training crop covers.
        seed: seeds the split, the shuffling and the crops.
        verify: read every file's header up front to skip non-images with one warning.
    """

    def __init__(self, root: str, image_size: int = 256, batch_size: int = 4, num_workers: int | None = None,
                 val_fraction: float = 0.02, val_max: int = 256, crop_scale: tuple[float, float] = DEFAULT_CROP_SCALE,
                 seed: int = 0, verify: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters()  # logged next to the model's (W&B config)
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16, not {image_size}")
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, not {crop_scale}")
        self.root = Path(root).expanduser()
        if root == BUNDLED_PHOTOS and not self.root.is_dir():  # a folder of that name wins
            from styletrans.assets import ASSETS

            self.root = ASSETS / "photos"
        if not self.root.is_dir():
            raise ValueError(f"{self.root}: the training data must be a folder of images")
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = min(8, max(0, (os.cpu_count() or 1) - 1)) if num_workers is None else num_workers
        self.val_fraction = val_fraction
        self.val_max = val_max
        self.crop_scale = tuple(crop_scale)
        self.seed = seed
        self.verify = verify
        self.train_files: list[Path] = []
        self.val_files: list[Path] = []
        self._restored_samples: int | None = None
        self._resumed_at = (0, 0)  # (global step, samples read) when the training stream was last placed

    def setup(self, stage: str | None = None) -> None:
        if self.train_files:
            return
        files = find_images(self.root)
        if not files:
            raise ValueError(f"{self.root}: no image files found (searched recursively for common image types)")
        if self.verify:
            bad = {path: why for path in files if (why := probe(path))}
            if bad:
                shown = "; ".join(f"{p.name}: {why}" for p, why in list(bad.items())[:3])
                warnings.warn(f"{self.root}: skipping {len(bad)} of {len(files)} files that are not readable "
                              f"images ({shown}{'; ...' if len(bad) > 3 else ''})", stacklevel=2)
                files = [p for p in files if p not in bad]
            if not files:
                raise ValueError(f"{self.root}: none of the image files could be read")
        if len(files) < 2:
            raise ValueError(f"{self.root}: need at least 2 images (one is held out for validation), "
                             f"found {len(files)}")
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(self.seed)).tolist()
        n_val = min(self.val_max, len(files) - 1, max(1, round(self.val_fraction * len(files))))
        self.val_files = sorted(files[i] for i in order[:n_val])
        self.train_files = sorted(files[i] for i in order[n_val:])

    def _loader(self, dataset: Dataset, sampler: Sampler | None = None) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0,
                          drop_last=sampler is not None)

    def _samples_per_step(self) -> int:
        trainer = self.trainer
        return trainer.accumulate_grad_batches * self.batch_size * trainer.world_size if trainer else self.batch_size

    def state_dict(self) -> dict[str, int]:
        """How far the training stream has been read, saved in checkpoints: a resume with
        another number of processes (a DDP run continued on one machine) goes on from there
        rather than from ``step x`` its own samples per step."""
        if self.trainer is None:
            return {}
        steps_since = self.trainer.global_step - self._resumed_at[0]
        return {"samples_seen": self._resumed_at[1] + steps_since * self._samples_per_step()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._restored_samples = state.get("samples_seen")

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        start, rank, world = 0, 0, 1
        if trainer is not None:
            # On resume the trainer has restored global_step (and this module's state)
            # before asking for the loader. Checkpoints from before samples_seen existed
            # assume the same number of processes.
            rank, world = trainer.global_rank, trainer.world_size
            if self._restored_samples is not None:
                self._resumed_at = (trainer.global_step, self._restored_samples)
                self._restored_samples = None
            start = self._resumed_at[1] + (trainer.global_step - self._resumed_at[0]) * self._samples_per_step()
            self._resumed_at = (trainer.global_step, start)
        dataset = TrainCrops(self.train_files, self.image_size, self.seed, self.crop_scale)
        return self._loader(dataset, StreamSampler(start, rank, world))

    def val_dataloader(self) -> DataLoader:
        return self._loader(CenterCrops(self.val_files, self.image_size))

    def preview_images(self, count: int, size: int | None = None) -> Tensor:
        """The first ``count`` validation photos (centre crops, ``size`` px; default the training
        crops'), a fixed set for sample grids."""
        dataset = CenterCrops(self.val_files[:count], size or self.image_size)
        return torch.stack([dataset[i] for i in range(len(dataset))])
