"""The LightningModule: one transformer network trained against a frozen perceptual loss.

One style image trains the paper's per-style network. A list of style images trains one
multi-style network (conditional instance norm, Dumoulin et al. 2017): the convolutions are shared,
each style has its own norm scales and shifts, and the samples of a batch take the styles in turn,
so every style gets the same share of the steps. Each style's Gram targets are computed once.
With ``base``, new styles are trained onto a trained multi-style network: only their scales and shifts
by default (``styletrans.training.finetune``).

Checkpoint contract (ONNX export and evaluation load these): the network is
``self.transformer`` (state-dict keys ``transformer.*``); the loss network is never
part of the state dict, so a checkpoint loads without VGG weights or the style image;
``hyper_parameters`` hold plain values only (``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor

from styletrans.assets import bundled, resolve_image
from styletrans.images import ImageError, load_image
from styletrans.losses import LossTerms, PerceptualLoss
from styletrans.models.checkpoint import load_transformer
from styletrans.models.transformer import TransformerConfig, TransformerNet
from styletrans.training import finetune
from styletrans.training.stability import random_shift, shift_consistency, shift_noise

# Content at relu2_2 (Johnson et al. 2016, section 4.1). Style at Johnson's relu1_2, relu2_2,
# relu3_3, relu4_3, each weighted by 1000 / (its typical style loss between a photo and the
# bundled paintings), because with vgg16-caffe those losses span 8 orders of magnitude
# (relu1_2 ~2e5, relu4_3 ~9e-4): equal weights would leave only the first two layers
# active. The measurement and the visual tuning are described in configs/johnson2016.yaml.
DEFAULT_CONTENT_LAYERS: dict[str, float] = {"relu2_2": 1.0}
DEFAULT_STYLE_LAYERS: dict[str, float] = {"relu1_2": 0.004, "relu2_2": 0.03, "relu3_3": 2.0, "relu4_3": 1.0e6}


def transformer_config(spec: str | Mapping[str, int | bool]) -> TransformerConfig:
    """A preset name (``default``, ``light``, ``fast``) or a dict of TransformerConfig fields."""
    if isinstance(spec, str):
        return TransformerConfig.preset(spec)
    try:
        return TransformerConfig(**spec)
    except TypeError as exc:
        names = ", ".join(f.name for f in fields(TransformerConfig) if f.name != "styles")
        raise ValueError(f"transformer: {exc} (fields: {names})") from None


class StyleTransferModule(pl.LightningModule):
    """A fast style-transfer network for one style image, or for several.

    Args:
        style_image: a path or a bundled style name (``starry_night``, ``the_scream``, ...), or a list
            of them: one multi-style network.
        style_name: the style's name in checkpoints and logs (default: the file's stem); for a
            multi-style network, the network's name (default ``multistyle``). Its styles are named
            after their files' stems.
        style_factors: ``{style name: factor}`` multiplying that style's term in a multi-style
            network (default 1 for each).
        style_size: longest side the style image is scaled to before its Gram targets are
            computed; ``None`` keeps its own size.
        image_size: training crop size (linked from ``data.image_size``; kept for the record).
        transformer: ``default`` (the paper), ``light``, ``fast`` (space-to-depth) or
            ``{base_channels: C, residual_blocks: N, space_to_depth: bool, margin: PX}`` (margin:
            replicated edge px around the input, cut from the output; ``styletrans.models.transformer``).
        loss_network: VGG weight source (``styletrans weights list``).
        content_layers: ``{layer: weight}``; default ``{relu2_2: 1}``.
        style_layers: ``{layer: weight}``; default ``DEFAULT_STYLE_LAYERS`` (relu1_2 ... relu4_3).
        content_weight, style_weight, tv_weight: the loss weights (styletrans.losses normalization);
            unset (``None``): 1, 10 and 2.5e4, or with ``base``, the base's (as for the layers and
            ``shift_weight``: a new style is trained under its base's loss unless the run says otherwise).
        lr: Adam learning rate.
        lr_schedule: ``constant`` (the paper) or ``cosine`` decay to 0 at ``trainer.max_steps``.
        warmup_steps: linear warm-up before the schedule.
        decay_steps: with ``cosine``, decay over only the last this many steps before
            ``trainer.max_steps`` (constant before): a long constant-rate run ends in an anneal.
        channels_last: NHWC memory format; ``None`` = on for CUDA, off elsewhere.
        compile: ``torch.compile`` the transformer and the loss network (state-dict keys unchanged).
        init_from: a checkpoint whose transformer weights this run starts from (fine-tuning a
            trained style with other settings); ``--ckpt_path`` resumes a run instead.
        shift_weight: weight of the stability term (``styletrans.training.stability``): the output of
            a crop shifted by 1-3 px against the shifted output, mean squared on [0, 1] pixels (default 0).
        shift_factor: with ``base`` and no ``shift_weight``, multiplies the stability weight inherited from
            the base: a new style can be held steadier than the base's styles were (an explicit
            ``shift_weight`` is used as it is; the checkpoint records the resulting weight).
        shift_noise: standard deviation of the Gaussian noise (on [0, 1] pixels) added to the shifted crop
            of the stability term: the output should not answer a camera's noise either (default 0, or with
            ``base``, the base's).
        base: train new styles onto this multi-style checkpoint (``bundled``: the base that ships with
            styletrans; a bundled base's name; or a path): ``style_image`` names the new style(s); the
            network is the base's plus them (``styletrans.training.finetune``); only their scales and
            shifts train, from the mean of the base styles'. ``style_name`` then names that network
            (default ``BASE-NEW``).
        base_lr: with ``base``, the learning rate of the shared convolutions (0, the default: frozen, and
            the base's styles stay exactly as they were).
        balance_to_base: with ``base``, give each new style without a ``style_factors`` entry the factor
            that makes its style term of the bundled photos the median of the base styles'
            (``finetune.balanced_factors``); the factor is recorded in ``style_factors``.
    """

    def __init__(
        self,
        style_image: str | list[str] = "starry_night",
        style_name: str | None = None,
        style_factors: dict[str, float] | None = None,
        style_size: int | None = 256,
        image_size: int = 256,
        transformer: str | dict[str, int | bool] = "default",
        loss_network: str = "vgg16-caffe",
        content_layers: dict[str, float] | None = None,
        style_layers: dict[str, float] | None = None,
        content_weight: float | None = None,
        style_weight: float | None = None,
        tv_weight: float | None = None,
        lr: float = 1e-3,
        lr_schedule: Literal["constant", "cosine"] = "constant",
        warmup_steps: int = 0,
        decay_steps: int | None = None,
        channels_last: bool | None = None,
        compile: bool = False,
        init_from: str | None = None,
        shift_weight: float | None = None,
        shift_factor: float = 1.0,
        shift_noise: float | None = None,
        base: str | None = None,
        base_lr: float = 0.0,
        balance_to_base: bool = False,
    ) -> None:
        super().__init__()
        # Resolved before save_hyperparameters (which reads these locals), so a checkpoint
        # states exactly what it was trained with, in plain types.
        style_images = [style_image] if isinstance(style_image, str) else list(style_image)
        if not style_images:
            raise ValueError("style_image: give a style image, or a list of them")
        start: finetune.Base | None = None
        new_images: list[str] = []
        if base is not None:
            if init_from is not None:
                raise ValueError("base and init_from: a new style starts from its base; give one of them")
            if base_lr < 0:
                raise ValueError(f"base_lr must be >= 0, not {base_lr}")
            start = finetune.load_base(base)
            new_images = finetune.new_style_images(start, style_images)
            for image in new_images:
                finetune.check_painting(image)
            finetune.check_compatible(start, transformer_config(transformer), loss_network)
            style_images = [*start.images, *new_images]
            style_image = style_images
            style_name = style_name or "-".join([start.name, *(Path(i).stem for i in new_images)])
        inherited = start.loss_settings() if start is not None else {}
        content_layers = inherited.get("content_layers") if content_layers is None else content_layers
        style_layers = inherited.get("style_layers") if style_layers is None else style_layers
        content_weight = float(inherited.get("content_weight", 1.0) if content_weight is None else content_weight)
        style_weight = float(inherited.get("style_weight", 10.0) if style_weight is None else style_weight)
        tv_weight = float(inherited.get("tv_weight", 2.5e4) if tv_weight is None else tv_weight)
        if shift_factor < 0:
            raise ValueError(f"shift_factor must be >= 0, not {shift_factor}")
        if shift_weight is None:  # a given weight is taken as it is: a reloaded checkpoint is not multiplied again
            shift_weight = inherited.get("shift_weight", 0.0) * shift_factor
        shift_weight = float(shift_weight)
        shift_noise = float(inherited.get("shift_noise", 0.0) if shift_noise is None else shift_noise)
        if shift_noise < 0:
            raise ValueError(f"shift_noise must be >= 0, not {shift_noise}")
        style_names = [Path(image).stem for image in style_images]
        if len(set(style_names)) != len(style_names):
            raise ValueError(f"style_image: two styles share a name: {style_names}")
        unknown = sorted(set(style_factors or {}) - set(style_names))
        if unknown:
            raise ValueError(f"style_factors names {unknown}, which are not among the styles {style_names}")
        config = transformer_config(transformer)
        if start is not None:  # a new style runs with its base's margin (it holds no weights to check)
            config = replace(config, margin=start.net.config.margin)
        if config.styles not in (1, len(style_images)):  # a saved config states it; otherwise the list does
            raise ValueError(f"transformer.styles is {config.styles}, but {len(style_images)} style image(s) are given")
        config = TransformerConfig(**{**config.as_dict(), "styles": len(style_images)})
        transformer = config.as_dict()
        style_name = style_name or (style_names[0] if len(style_images) == 1 else "multistyle")
        content_layers = dict(DEFAULT_CONTENT_LAYERS if content_layers is None else content_layers)
        style_layers = dict(DEFAULT_STYLE_LAYERS if style_layers is None else style_layers)
        self.save_hyperparameters()
        self.style_names = style_names
        self.transformer = TransformerNet(config)
        # The styles this run trains: every style, or with a base, the new ones (the last of the network).
        self.trained = list(range(config.styles - len(new_images), config.styles)) if start else None
        self.base_record = start.record() if start is not None else None
        if start is not None:
            self.hparams["fine_tune"] = {"base": start.name, "base_styles": start.styles,
                                         "new_styles": [style_names[i] for i in self.trained],
                                         "base_style_factors": dict(start.training.get("style_factors") or {})}
            self.transformer.load_state_dict(finetune.extend(start.net, len(new_images)).state_dict())
            if base_lr == 0:
                for parameter in finetune.shared_parameters(self.transformer):
                    parameter.requires_grad_(False)
        if init_from is not None:
            start, _ = load_transformer(init_from)
            if replace(start.config, margin=config.margin) != config:  # the margin holds no weights: the run's
                raise ValueError(f"init_from {init_from}: its transformer {start.config.as_dict()} is not "
                                 f"this run's {transformer}")
            self.transformer.load_state_dict(start.state_dict())
        self._perceptual: PerceptualLoss | None = None  # built in setup(); see _apply
        self._style_files: list[Path] = []

    @property
    def multistyle(self) -> bool:
        return self.transformer.config.styles > 1

    @property
    def trained_names(self) -> list[str]:
        """The styles this run trains, in the order of the loss's Gram targets."""
        return self.style_names if self.trained is None else [self.style_names[i] for i in self.trained]

    # -- the loss network: built lazily, never registered, never saved --------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_perceptual":  # bypass nn.Module registration: not a child, not in state_dict
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> StyleTransferModule:
        """Device, dtype and memory-format moves reach the unregistered loss network too."""
        super()._apply(fn, recurse)
        if self._perceptual is not None:
            self._perceptual._apply(fn, recurse)
            self._perceptual.target_grams = {k: fn(v) for k, v in self._perceptual.target_grams.items()}
        return self

    @property
    def perceptual(self) -> PerceptualLoss:
        if self._perceptual is None:
            raise RuntimeError("the loss network is built in setup(); call trainer.fit/validate first")
        return self._perceptual

    def build_loss(self, device: torch.device | str = "cpu") -> PerceptualLoss:
        """Load the loss network and compute each style's Gram targets once (at ``style_size``)."""
        hp = self.hparams
        loss = PerceptualLoss(
            loss_network=hp.loss_network, content_layers=hp.content_layers, style_layers=hp.style_layers,
            content_weight=hp.content_weight, style_weight=hp.style_weight, tv_weight=hp.tv_weight,
        ).to(device)
        images = [hp.style_image] if isinstance(hp.style_image, str) else list(hp.style_image)
        if self.trained is not None:  # a new style on a base: the targets of the trained styles only
            images = [images[index] for index in self.trained]
        self._style_files = [resolve_image(image, "styles") for image in images]
        styles = [load_image(path, hp.style_size)[None].to(device) for path in self._style_files]
        if self.multistyle:
            if self.trained is not None and hp.balance_to_base:
                self._balance_new_styles(loss.encoder, styles, device)
            factors = hp.style_factors or {}
            loss.set_styles(styles, [float(factors.get(name, 1.0)) for name in self.trained_names])
        else:
            loss.set_style(styles[0])
        if self.use_channels_last(device):
            loss.to(memory_format=torch.channels_last)
        if hp.compile:
            loss.encoder.compile()
        return loss

    def _balance_new_styles(self, encoder: torch.nn.Module, new_styles: list[Tensor],
                            device: torch.device | str) -> None:
        """Give each new style without a factor its balancing one (``finetune.balanced_factors``), in the
        hyper-parameters: the checkpoint and its exports record it (a resumed run computes the same)."""
        hp = self.hparams
        factors = dict(hp.style_factors or {})
        pending = [i for i, name in enumerate(self.trained_names) if name not in factors]
        if not pending:
            return
        base_names = hp.fine_tune["base_styles"]
        base_images = list(hp.style_image)[: len(base_names)]
        try:
            base_styles = [load_image(resolve_image(image, "styles"), hp.style_size)[None].to(device)
                           for image in base_images]
        except (ImageError, OSError) as exc:
            raise ValueError(f"balance_to_base: the base's style image {exc}; give the new style's factor "
                             "(--model.style_factors '{NAME: 1.0}') or --model.balance_to_base false") from None
        base_factors = [float(hp.fine_tune.get("base_style_factors", {}).get(n, 1.0)) for n in base_names]
        photos = [load_image(path, hp.style_size)[None].to(device) for path in bundled("photos").values()]
        balanced = finetune.balanced_factors(encoder, hp.style_layers, base_styles, base_factors,
                                             [new_styles[i] for i in pending], photos)
        for i, factor in zip(pending, balanced, strict=True):
            factors[self.trained_names[i]] = round(factor, 4)
            rank_zero_info(f"{self.trained_names[i]}: style term x {factor:.3g} (its style term of the bundled "
                           "photos brought to the base styles' median)")
        hp.style_factors = factors

    def use_channels_last(self, device: torch.device | str) -> bool:
        flag = self.hparams.channels_last
        return torch.device(device).type == "cuda" if flag is None else bool(flag)

    def setup(self, stage: str) -> None:
        if self._perceptual is None:
            self.prepare(self.trainer.strategy.root_device if self._trainer is not None else "cpu")

    def prepare(self, device: torch.device | str) -> None:
        """Build the loss network on ``device`` and apply channels_last / compile (Lightning's
        setup() does this; call it yourself to use ``compute_loss`` outside a Trainer)."""
        self._perceptual = self.build_loss(device)
        if self.use_channels_last(device):
            self.transformer.to(memory_format=torch.channels_last)
        if self.hparams.compile:
            self.transformer.compile()  # in place: state-dict keys stay ``transformer.*``

    # -- training ---------------------------------------------------------------------------

    def forward(self, images: Tensor, style: Tensor | int | None = None) -> Tensor:
        return self.transformer(images, style)

    def style_ids(self, batch: int, step: int) -> Tensor | None:
        """The styles of a batch's samples: in turn across steps and DDP ranks, so each style gets an
        equal share and a resumed run continues the same sequence. ``None`` for one style. With a base,
        only the new styles take turns."""
        if not self.multistyle:
            return None
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self._trainer is not None else (0, 1)
        first = (step * world + rank) * batch
        if self.trained is not None:
            return torch.tensor(self.trained)[(first + torch.arange(batch)) % len(self.trained)]
        return (first + torch.arange(batch)) % self.transformer.config.styles

    def compute_loss(self, images: Tensor, step: int = 0) -> LossTerms:
        """Stylize a batch of photos and score it: the whole training computation of one step.

        With ``shift_weight``, the stability term is part of ``total`` (and kept in ``terms.shift``).
        """
        if self.use_channels_last(images.device):
            images = images.contiguous(memory_format=torch.channels_last)
        ids = self.style_ids(images.shape[0], step)
        ids = None if ids is None else ids.to(images.device)
        # Content targets in their own no-grad pass: running photos and outputs through VGG as
        # one batch would also push the photos through the backward pass (4 units of work, not 3).
        targets = self.perceptual.content_targets(images)
        output = self.transformer(images, ids)
        # The loss holds the trained styles' targets only: with a base, the new styles, numbered from 0.
        loss_ids = ids if ids is None or self.trained is None else ids - self.trained[0]
        terms = self.perceptual(output, targets, style_ids=loss_ids)
        terms.shift = terms.total.new_zeros(())
        if self.hparams.shift_weight:
            dy, dx = shift = random_shift(step)
            std = self.hparams.shift_noise
            noise = shift_noise(step, images[..., dy:, dx:], std) if std else None
            terms.shift = self.hparams.shift_weight * shift_consistency(self.transformer, images, output, shift, ids,
                                                                        noise)
            terms.total = terms.total + terms.shift
        return terms

    @torch.no_grad()
    def preview(self, photos: Tensor) -> list[Tensor]:
        """The photos stylized: one batch per style (for sample grids)."""
        if not self.multistyle:
            return [self.transformer(photos).float()]
        indices = self.trained if self.trained is not None else range(self.transformer.config.styles)
        return [self.transformer(photos, index).float() for index in indices]

    def _shared_step(self, images: Tensor, stage: str, step: int) -> Tensor:
        terms = self.compute_loss(images, step)
        metrics = {f"{stage}/total": terms.total, f"{stage}/content": terms.content,
                   f"{stage}/style": terms.style, f"{stage}/tv": terms.tv, f"{stage}/shift": terms.shift}
        metrics.update({f"{stage}/style_{name}": value for name, value in terms.style_layers.items()})
        training = stage == "train"
        # Tensors, not floats: logging must not force a GPU sync every step.
        self.log_dict({k: v.detach() for k, v in metrics.items()}, on_step=training, on_epoch=not training,
                      batch_size=images.shape[0], sync_dist=not training)
        self.log(f"{stage}_loss", terms.total.detach(), prog_bar=True, on_step=training, on_epoch=not training,
                 batch_size=images.shape[0], sync_dist=not training, logger=False)
        if training:
            self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)
        return terms.total

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train", self.global_step)

    def validation_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val", batch_idx)  # the same styles and shifts at every validation

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        if self.trained is None:
            optimizer = torch.optim.Adam(self.transformer.parameters(), lr=hp.lr)
        else:  # scales and shifts at lr (the base styles' get no gradient), the convolutions at base_lr
            groups = [{"params": finetune.norm_parameters(self.transformer), "lr": hp.lr}]
            if hp.base_lr > 0:
                groups.append({"params": finetune.shared_parameters(self.transformer), "lr": hp.base_lr})
            optimizer = torch.optim.Adam(groups, lr=hp.lr)
        total = self.trainer.max_steps if self._trainer is not None else -1
        if hp.lr_schedule == "cosine" and total <= 0:
            raise ValueError("lr_schedule cosine needs trainer.max_steps")
        warmup, cosine = hp.warmup_steps, hp.lr_schedule == "cosine"
        decay_start = warmup if hp.decay_steps is None else max(warmup, total - hp.decay_steps)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if not cosine or step < decay_start:
                return 1.0
            progress = min(1.0, (step - decay_start) / max(1, total - decay_start))
            return 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record each exact style file and its Gram targets (plain tensors) next to the weights:
        ``style`` for one style, ``styles`` (in the network's order) for several; with a base, the
        styles trained here, and ``base``: the base's name, file, hash and styles."""
        if self.base_record is not None:
            checkpoint["base"] = dict(self.base_record)
        if self._perceptual is None or not self._style_files:
            return
        records = [
            {"name": name, "file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
             "grams": {k: v[index].detach().float().cpu().contiguous()
                       for k, v in self._perceptual.target_grams.items()}}
            for index, (name, path) in enumerate(zip(self.trained_names, self._style_files, strict=True))
        ]
        if self.multistyle:
            checkpoint["styles"] = records
        else:
            checkpoint["style"] = {k: v for k, v in records[0].items() if k != "name"}
