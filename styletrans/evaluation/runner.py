"""Run a fast model and the Gatys optimization on the same photos under the same loss.

The loss is the one the model was trained with, rebuilt from its metadata (loss
network, layers, weights, style size); Gatys starts from the content photo and runs
once to the largest requested iteration count, with snapshots at the others. Both
are timed on the same device, model loading and loss-network loading excluded.

Beside that, every model is scored on one yardstick whatever its own loss: the style strength and
content ratio under the Gatys defaults' loss against the Gatys default result (``metrics``), and the
pan number (``stability``). When the model's loss is the defaults' own, the one Gatys run serves both.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from styletrans.evaluation.artifacts import dot_score, edge_frame_score, lattice_score
from styletrans.evaluation.metrics import ImageEvaluation, Losses, nearest
from styletrans.evaluation.similarity import load_lpips, similarity
from styletrans.evaluation.stability import pan_scores
from styletrans.inference import ModelError, OnnxBackend, TorchBackend, resolve_model
from styletrans.losses import PerceptualLoss
from styletrans.optimize.gatys import GatysSettings, default_settings, run_gatys

# Training settings that define the loss (see StyleTransferModule.build_loss).
LOSS_KEYS = ("loss_network", "content_layers", "style_layers", "content_weight", "style_weight", "tv_weight")
# Everything else that decides a Gatys run's result (whether two runs are the same run).
RUN_KEYS = (*LOSS_KEYS, "relative_style", "optimizer", "lr", "init", "pixel_scale", "max_step", "clip_every_step")
FAST_REPEATS = 5  # timed runs after one warm-up; the median is reported (robust to a busy CPU)


@dataclass
class FastModel:
    """A trained style network on one device, with the metadata it was saved with."""

    path: Path
    backend: OnnxBackend | TorchBackend
    metadata: dict[str, Any]

    @property
    def style_name(self) -> str:
        return str(self.metadata.get("style_name") or self.path.stem)

    @property
    def training(self) -> dict[str, Any]:
        training = self.metadata.get("training")
        return training if isinstance(training, dict) else {}

    def describe(self) -> str:
        return f"{self.path.name} (style {self.style_name!r}) on {self.backend.describe()}"


def load_model(spec: str | os.PathLike, device: torch.device, threads: int | None = None) -> FastModel:
    """An ``.onnx`` file (ONNX Runtime) or a checkpoint (PyTorch), by path or model name,
    placed on ``device`` so that it is timed where Gatys runs (``threads``: ONNX Runtime's
    CPU threads; PyTorch uses ``torch.set_num_threads``)."""
    path = resolve_model(spec)
    if path.suffix.lower() == ".onnx":
        backend = OnnxBackend(path, provider="cuda" if device.type == "cuda" else "cpu", threads=threads)
        metadata = dict(backend.metadata)
    else:
        from styletrans.models.checkpoint import load_transformer

        net, metadata = load_transformer(path)
        backend = TorchBackend(net, device)
    return FastModel(path, backend, metadata)


def gatys_settings(model: FastModel, iterations: int, optimizer: str = "lbfgs", lr: float = 1.0) -> GatysSettings:
    """The optimization under exactly the loss ``model`` was trained with, from the content
    photo, ``iterations`` steps; L-BFGS with step 1 over 0-255 pixels by default, as in the
    neural-style code Johnson et al. compare against, and as ``styletrans optimize`` runs."""
    training = model.training
    missing = [key for key in LOSS_KEYS if key not in training]
    if missing:
        raise ModelError(
            f"{model.path}: its metadata lacks the training setting(s) {', '.join(missing)}, so the loss it was "
            "trained with cannot be rebuilt; evaluate the training checkpoint, or an ONNX file exported from it "
            "by `styletrans export` (which copies the settings)"
        )
    return GatysSettings(
        loss_network=str(training["loss_network"]),
        content_layers={str(k): float(v) for k, v in training["content_layers"].items()},
        style_layers={str(k): float(v) for k, v in training["style_layers"].items()},
        # Training builds PerceptualLoss with its default (absolute) style terms unless told otherwise.
        relative_style=bool(training.get("relative_style", False)),
        content_weight=float(training["content_weight"]),
        style_weight=float(training["style_weight"]),
        tv_weight=float(training["tv_weight"]),
        optimizer=optimizer, lr=lr, iterations=iterations, init="content",
        # Unconstrained, as the neural-style L-BFGS that Johnson et al. compare against: clipping
        # every step made L-BFGS unstable under these absolute losses (on 4 dev_eval photos at
        # 128 px the loss kept jumping 2-300x until the end; free, it settles after a few early
        # jumps, and 200 steps ended 5-22% lower, even after the final clip).
        clip_every_step=False,
        # 0-255 pixels and capped steps, as the optimize defaults: in [0, 1] units the first L-BFGS step under
        # absolute Gram terms is 255x longer and can stall the run (GatysSettings). The figures in models/README.md
        # before the multi-style network were measured in [0, 1] units, uncapped.
    )


@dataclass
class Outputs:
    """The images behind one ``ImageEvaluation`` (each (1, 3, H, W) on the CPU)."""

    content: Tensor
    fast: Tensor
    gatys: dict[int, Tensor]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Evaluator:
    """Scores a fast model against Gatys photo by photo (one loss network, loaded once)."""

    def __init__(self, model: FastModel, style: Tensor, counts: list[int], device: torch.device, *,
                 optimizer: str = "lbfgs", lr: float = 1.0, use_lpips: bool = True, progress: bool = True,
                 yardstick_style: Tensor | None = None, yardstick_iterations: int | None = None,
                 pan: bool = True) -> None:
        """``style``: the painting at the model's training size; ``yardstick_style``: at the output size,
        for the style strength (default: ``style``); ``yardstick_iterations``: the Gatys default result's
        iterations at the output size (default: the defaults' own); ``pan``: measure the pan number."""
        self.model, self.counts, self.device, self.progress, self.pan = model, sorted(counts), device, progress, pan
        self.reference = nearest(self.counts)
        self.settings = gatys_settings(model, max(self.counts), optimizer, lr)
        self.style = style[None] if style.dim() == 3 else style
        self.loss: PerceptualLoss = self.settings.build_loss(device)
        self.loss.set_style(self.style.to(device))
        yardstick_style = self.style if yardstick_style is None else yardstick_style
        self.yardstick_style = yardstick_style[None] if yardstick_style.dim() == 3 else yardstick_style
        # The defaults' layers and weights on the model's own loss network (the same VGG for every real model).
        self.yardstick_settings = replace(GatysSettings(), loss_network=self.settings.loss_network)
        self.yardstick_iterations = yardstick_iterations
        self.yardstick_loss = self.yardstick_settings.build_loss(device)
        self.yardstick_loss.set_style(self.yardstick_style.to(device))
        self.lpips, self.lpips_note = load_lpips(device) if use_lpips else (None, "LPIPS not computed (--no-lpips)")

    def default_settings(self, hw: tuple[int, int]) -> GatysSettings:
        """The settings of the Gatys default result at ``hw``, on the model's loss network."""
        settings = replace(default_settings(hw), loss_network=self.yardstick_settings.loss_network)
        if self.yardstick_iterations is not None:
            settings = replace(settings, iterations=self.yardstick_iterations)
        return settings

    def shared_run(self, hw: tuple[int, int]) -> int | None:
        """The iteration count of the Gatys default result inside this evaluation's own run, when the model's
        loss, painting and optimizer are the defaults' (so one run gives both); None otherwise."""
        defaults = self.default_settings(hw)
        same = all(getattr(defaults, key) == getattr(self.settings, key) for key in RUN_KEYS)
        fits = not defaults.coarse_iterations and defaults.iterations <= max(self.counts)
        same_style = self.style.shape == self.yardstick_style.shape and torch.equal(self.style, self.yardstick_style)
        return defaults.iterations if same and fits and same_style else None

    def gatys_default(self, content: Tensor) -> Tensor:
        """The Gatys default result of ``content`` (1, 3, H, W) on ``device``: ``styletrans optimize``'s."""
        settings = self.default_settings(tuple(content.shape[-2:]))
        return run_gatys(content, self.yardstick_style, settings, device=self.device, loss=self.yardstick_loss,
                         progress=self.progress).image

    @torch.no_grad()
    def yardstick(self, content: Tensor, images: dict[str, Tensor],
                  targets: dict[str, Tensor] | None = None) -> dict[str, Losses]:
        """Each of ``images`` under the Gatys defaults' loss, against ``content``'s features (``targets``:
        those features, ``yardstick_loss.content_targets(content)``, when they are at hand already)."""
        if targets is None:
            targets = self.yardstick_loss.content_targets(content.to(self.device))
        return {name: Losses.from_record(self.yardstick_loss(image.to(self.device), targets).as_floats())
                for name, image in images.items()}

    @torch.no_grad()
    def losses(self, image: Tensor, targets: dict[str, Tensor]) -> Losses:
        return Losses.from_record(self.loss(image.to(self.device), targets).as_floats())

    def time_fast(self, content: Tensor) -> tuple[Tensor, float]:
        """The fast output and the median milliseconds of ``FAST_REPEATS`` runs after a warm-up
        (the first run at a new size plans memory and kernels)."""
        output = self.model.backend(content)
        times = []
        for _ in range(FAST_REPEATS):
            start = time.perf_counter()
            output = self.model.backend(content)  # both backends return CPU tensors: the call has finished
            times.append(time.perf_counter() - start)
        return output.float(), 1000 * statistics.median(times)

    def run_gatys(self, content: Tensor, targets: dict[str, Tensor], extra: tuple[int, ...] = ()
                  ) -> tuple[list[float], list[float], dict[int, Tensor]]:
        """One optimization run to the largest count: the total loss and the cumulative seconds
        after 0..N iterations, and the image after each requested count (and each ``extra`` one).

        The run is unconstrained (see ``gatys_settings``), so every iterate is scored as the
        picture it would give, clipped to [0, 1]; that scoring is left out of the seconds."""
        wanted = set(self.counts) | set(extra)
        snapshots: dict[int, Tensor] = {}
        curve = [self.losses(content, targets).total]
        seconds = [0.0]
        scoring = 0.0

        def on_step(step: int, image: Tensor, record: dict[str, float]) -> None:
            nonlocal scoring
            _synchronize(self.device)
            now = time.perf_counter()
            seconds.append(now - start - scoring)
            clipped = image.detach().clamp(0, 1)
            curve.append(self.losses(clipped, targets).total)
            if step + 1 in wanted:
                snapshots[step + 1] = clipped
            _synchronize(self.device)
            scoring += time.perf_counter() - now

        _synchronize(self.device)
        start = time.perf_counter()
        run_gatys(content, self.style, self.settings, device=self.device, loss=self.loss,
                  callback=on_step, progress=self.progress)
        return curve, seconds, snapshots

    def evaluate(self, content: Tensor, name: str) -> tuple[ImageEvaluation, Outputs]:
        """Score one content photo (3, H, W) in [0, 1]."""
        content = (content[None] if content.dim() == 3 else content).float().contiguous()
        targets = self.loss.content_targets(content.to(self.device))
        fast_output, fast_ms = self.time_fast(content)
        shared = self.shared_run(tuple(content.shape[-2:]))
        extra = () if shared is None else (shared,)
        curve, seconds, snapshots = self.run_gatys(content.to(self.device), targets, extra)
        default = snapshots[shared] if shared is not None else self.gatys_default(content.to(self.device))
        gatys = {n: self.losses(snapshots[n], targets) for n in self.counts}
        reference = snapshots[self.reference]
        scores = similarity(fast_output.to(self.device), reference, self.lpips)
        evaluation = ImageEvaluation(
            name=name, height=int(content.shape[-2]), width=int(content.shape[-1]),
            fast=self.losses(fast_output, targets), fast_ms=fast_ms, gatys=gatys, curve=curve,
            seconds=seconds, similarity=scores, reference=self.reference,
            artifacts={**{name: {"photo": score(content), "fast": score(fast_output), "gatys": score(reference)}
                          for name, score in (("lattice", lattice_score), ("dots", dot_score))},
                       "edge_frame": {"fast": edge_frame_score(fast_output, content),
                                      "gatys": edge_frame_score(reference, content)}},
            yardstick=self.yardstick(content, {"photo": content, "fast": fast_output, "gatys": default}),
            pan=pan_scores(self.model.backend, content[0]) if self.pan else {},
        )
        outputs = Outputs(content.cpu(), fast_output.cpu(), {n: image.cpu() for n, image in snapshots.items()})
        return evaluation, outputs
