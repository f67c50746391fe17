"""A new style on a trained multi-style base: only its normalization scales and shifts are learned.

Dumoulin et al. (2017) observe that a conditional-instance-norm network's convolutions are shared by every
style, so a new style needs only its own scales and shifts, and fitting those alone on a trained network
converges in a fraction of the steps a new network takes (``configs/recipes/new-style.yaml``).

The run's network is the base plus the new style(s): S + n styles, the base's convolutions and its S styles'
scales and shifts unchanged (frozen convolutions: bit for bit), and each new style starting from the mean
of the base styles' scales and shifts. So the checkpoint is an ordinary multi-style checkpoint:
``styletrans export`` bakes the new style alone into today's single-style file (its ``base`` metadata names
this network, ``BASE-NEW``), and ``export --mix`` writes a mixing model that blends it with the base's styles.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from styletrans.losses import gram_matrix, style_loss
from styletrans.models.conditional import ConditionalInstanceNorm2d
from styletrans.models.transformer import TransformerConfig, TransformerNet

BUNDLED = "bundled"
# The loss settings a new style takes from its base unless the run sets them: the base's look is its loss.
INHERITED_LOSS = ("content_layers", "style_layers", "content_weight", "style_weight", "tv_weight", "shift_weight",
                  "shift_noise")


@dataclass
class Base:
    """A multi-style checkpoint that new styles are trained onto."""

    path: Path
    name: str
    net: TransformerNet
    styles: list[str]
    images: list[str]  # each style's image as the base recorded it (the style's name where it did not)
    training: dict[str, Any]
    sha256: str

    def loss_settings(self) -> dict[str, Any]:
        return {key: self.training[key] for key in INHERITED_LOSS if self.training.get(key) is not None}

    def record(self) -> dict[str, Any]:
        """What the fine-tune's checkpoint says about its base."""
        return {"name": self.name, "file": str(self.path), "sha256": self.sha256, "styles": list(self.styles)}


def resolve_base(spec: str) -> Path:
    """``bundled`` (the base that ships with styletrans), a bundled base's name, or a checkpoint path."""
    from styletrans.inference.registry import bundled_checkpoints, bundled_models_dir

    bundled = bundled_checkpoints()
    if spec == BUNDLED:
        if len(bundled) == 1:
            return next(iter(bundled.values()))
        if not bundled:
            raise ValueError(f"base {BUNDLED!r}: no base checkpoint ships with this installation (none in "
                             f"{bundled_models_dir()}); pass --model.base CKPT, a multi-style checkpoint such as "
                             "`styletrans train --config configs/recipes/multistyle.yaml` writes")
        raise ValueError(f"base {BUNDLED!r}: several bases ship with styletrans ({', '.join(bundled)}); "
                         "pass --model.base NAME")
    path = Path(spec).expanduser()
    if not path.exists() and spec in bundled:
        return bundled[spec]
    if not path.is_file():
        raise ValueError(f"base {spec}: no such checkpoint file"
                         f"{'; bundled bases: ' + ', '.join(bundled) if bundled else ''}")
    return path


def load_base(spec: str) -> Base:
    """The base checkpoint ``spec`` names (see ``resolve_base``); it must hold several styles."""
    from styletrans.models.checkpoint import load_transformer

    path = resolve_base(spec)
    net, metadata = load_transformer(path)
    if net.config.styles == 1:
        raise ValueError(f"base {path}: a single-style network ({metadata['style_name']!r}); a new style needs a "
                         "multi-style base (conditional instance norm, configs/recipes/multistyle.yaml)")
    styles = list(metadata["styles"])
    training = dict(metadata.get("training", {}))
    recorded = training.get("style_image")
    images = [str(i) for i in recorded] if isinstance(recorded, list) and len(recorded) == len(styles) else styles
    return Base(path, str(metadata["style_name"]), net, styles, images, training,
                hashlib.sha256(path.read_bytes()).hexdigest())


def new_style_images(base: Base, style_images: list[str]) -> list[str]:
    """The styles a run adds to ``base``: ``style_images`` without a leading copy of the base's own (which is
    how a saved fine-tune states them). A new style may not take a base style's name."""
    names = [Path(image).stem for image in style_images]
    if len(names) > len(base.styles) and names[: len(base.styles)] == base.styles:
        style_images = style_images[len(base.styles):]
    clash = sorted({Path(image).stem for image in style_images} & set(base.styles))
    if clash:
        raise ValueError(f"style_image: the base {base.name!r} already has a style named {', '.join(clash)}; "
                         "a style is named after its file: rename the painting")
    return style_images


def check_painting(image: str) -> Path:
    """The painting's file, or a ``ValueError`` that says why it cannot be one."""
    from styletrans.assets import resolve_image
    from styletrans.images import ImageError
    from styletrans.training.data import probe

    try:
        path = resolve_image(image, "styles")
    except ImageError as exc:
        raise ValueError(f"style_image {exc}") from None
    if not path.is_file():
        raise ValueError(f"style_image {image}: no such file")
    why = probe(path)
    if why is not None:
        raise ValueError(f"style_image {image}: not an image ({why})")
    return path


def check_compatible(base: Base, config: TransformerConfig, loss_network: str) -> None:
    """The run must be the base's architecture and train against the base's loss network."""
    def architecture(c: TransformerConfig) -> dict:  # what the weights fix: not the style count or the margin
        return {k: v for k, v in c.as_dict().items() if k not in ("styles", "margin")}

    mine, theirs = architecture(config), architecture(base.net.config)
    if mine != theirs:
        raise ValueError(f"base {base.path.name}: its architecture is {theirs}, this run's transformer is {mine}; "
                         f"a new style is trained on its base's network: set --model.transformer '{theirs}'")
    recorded = base.training.get("loss_network")
    if recorded is not None and recorded != loss_network:
        raise ValueError(f"base {base.path.name} was trained against the loss network {recorded!r}, this run uses "
                         f"{loss_network!r}: a new style must train against its base's (--model.loss_network "
                         f"{recorded})")


def extend(base: TransformerNet, new_styles: int) -> TransformerNet:
    """``base`` with ``new_styles`` more styles, each starting at the mean of the base styles' scales and shifts."""
    config = TransformerConfig(**{**base.config.as_dict(), "styles": base.config.styles + new_styles})
    net = TransformerNet(config)
    state = base.state_dict()
    for name, module in base.named_modules():
        if isinstance(module, ConditionalInstanceNorm2d):
            for key in ("weight", "bias"):
                rows = state[f"{name}.{key}"]
                state[f"{name}.{key}"] = torch.cat([rows, rows.mean(0, keepdim=True).expand(new_styles, -1)])
    net.load_state_dict(state)
    return net


def norm_parameters(net: nn.Module) -> list[nn.Parameter]:
    """Every style's scales and shifts (the conditional norms' ``weight`` and ``bias``)."""
    return [p for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d) for p in (m.weight, m.bias)]


def shared_parameters(net: nn.Module) -> list[nn.Parameter]:
    """The parameters every style shares: the convolutions."""
    norms = {id(p) for p in norm_parameters(net)}
    return [p for p in net.parameters() if id(p) not in norms]


@torch.no_grad()
def balanced_factors(encoder: nn.Module, style_layers: Mapping[str, float], base_styles: Sequence[Tensor],
                     base_factors: Sequence[float], new_styles: Sequence[Tensor],
                     photos: Sequence[Tensor]) -> list[float]:
    """Each new style's factor that makes its style term of ``photos`` the median of the base styles' (each
    times its own factor): the base was trained to balance terms of that size against its content term, and a
    painting far from any photo (candy's is 9x the shipped base's median) would otherwise drown the photo in texture."""

    def grams(image: Tensor) -> dict[str, Tensor]:
        features = encoder(image)
        return {name: gram_matrix(features[name]) for name in style_layers}

    photo_grams = [grams(photo) for photo in photos]

    def photo_style_term(style: Tensor) -> float:
        target = grams(style)
        return statistics.median(float(sum(w * style_loss(g[name], target[name]) for name, w in style_layers.items()))
                                 for g in photo_grams)

    reference = statistics.median(f * photo_style_term(s) for s, f in zip(base_styles, base_factors, strict=True))
    return [reference / max(photo_style_term(style), 1e-12) for style in new_styles]
