"""Perceptual losses over one shared VGG pass: content, Gram style, total variation.

Normalizations are fixed here so that a weight means the same thing in Gatys
optimization, fast-network training and evaluation:

* features ``F`` of a layer have shape (B, C, H, W) and are on the scale of the
  weight source's own input convention (0-255 for ``vgg16-caffe``);
* ``gram_matrix(F) = F F^T / (C * H * W)``, shape (B, C, C);
* content loss = mean over all elements of ``(F - F_target)^2``;
* style loss of a layer = mean over all elements of ``(G - G_target)^2``; with
  ``relative_style=True`` it is further divided by ``mean(G_target^2)``, so every
  layer's term is a relative error of order 1 whatever its activation scale (raw
  Gram magnitudes differ by ~10^5 between relu3_1 and relu5_1 of the Caffe VGG,
  which otherwise leaves the deep layers without any say);
* total variation = mean over elements of squared horizontal plus squared vertical
  neighbour differences of the [0, 1] image.

All three are means, so they do not grow with batch size or image size.

A loss can hold several styles (``set_styles``): each sample of a batch is then scored against the
Gram targets of its own style (``forward(..., style_ids=...)``), as multi-style training needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from styletrans.vgg import VGGFeatures

# Johnson et al. 2016, section 3: content at relu3_3 (relu2_2 in their paper is also
# common), style at relu1_2, relu2_2, relu3_3, relu4_3.
DEFAULT_CONTENT_LAYERS: dict[str, float] = {"relu3_3": 1.0}
DEFAULT_STYLE_LAYERS: dict[str, float] = {
    "relu1_2": 1.0,
    "relu2_2": 1.0,
    "relu3_3": 1.0,
    "relu4_3": 1.0,
}


def _at_least_fp32(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def gram_matrix(features: Tensor) -> Tensor:
    """Batched Gram matrix ``F F^T / (C * H * W)``: (B, C, H, W) -> (B, C, C).

    Computed in float32 even under autocast: fp16 sums over H*W overflow.
    """
    b, c, h, w = features.shape
    flat = _at_least_fp32(features.reshape(b, c, h * w))
    with torch.autocast(features.device.type, enabled=False):
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Feature reconstruction loss: mean over all elements of ``(F - F_target)^2``."""
    return F.mse_loss(_at_least_fp32(features), _at_least_fp32(target))


def style_loss(gram: Tensor, target_gram: Tensor) -> Tensor:
    """Mean over all elements of ``(G - G_target)^2``; a (1, C, C) target broadcasts."""
    return (gram - target_gram).pow(2).mean()


def total_variation(image: Tensor) -> Tensor:
    """Mean squared difference between horizontal and between vertical neighbours
    (each term a mean over its own elements), for images in [0, 1]."""
    dh = (image[..., 1:, :] - image[..., :-1, :]).pow(2).mean()
    dw = (image[..., :, 1:] - image[..., :, :-1]).pow(2).mean()
    return dh + dw


@dataclass
class LossTerms:
    """Weighted loss terms of one evaluation; ``total`` is what gets minimized."""

    total: Tensor
    content: Tensor
    style: Tensor
    tv: Tensor
    style_layers: dict[str, Tensor] = field(default_factory=dict)
    shift: Tensor | None = None  # training's stability term, when it has one (included in total)

    def as_floats(self) -> dict[str, float]:
        """Flat ``{name: value}`` for logging (``style/relu1_2`` per layer)."""
        out = {k: float(getattr(self, k).detach()) for k in ("total", "content", "style", "tv")}
        out.update({f"style/{k}": float(v.detach()) for k, v in self.style_layers.items()})
        return out


class PerceptualLoss(nn.Module):
    """Content + style + TV loss sharing one VGG pass per image.

    ``total = content_weight * sum_l w_l * content_l
            + style_weight * sum_l w_l * style_l + tv_weight * tv``,
    with each term normalized as described in the module docstring (``relative_style``
    divides each style layer by its target's mean squared Gram entry). Style targets
    are set once (``set_style``) and kept as Gram matrices; content targets are
    computed by ``content_targets`` (without gradient) and passed to ``forward``.
    """

    def __init__(
        self,
        encoder: VGGFeatures | None = None,
        *,
        loss_network: str = "vgg16-caffe",
        content_layers: Mapping[str, float] | None = None,
        style_layers: Mapping[str, float] | None = None,
        content_weight: float = 1.0,
        style_weight: float = 5.0,
        tv_weight: float = 1e-6,
        relative_style: bool = False,
    ) -> None:
        super().__init__()
        self.content_layers = dict(DEFAULT_CONTENT_LAYERS if content_layers is None else content_layers)
        self.style_layers = dict(DEFAULT_STYLE_LAYERS if style_layers is None else style_layers)
        if not self.content_layers and not self.style_layers:
            raise ValueError("PerceptualLoss needs at least one content or style layer")
        layers = list(self.content_layers) + list(self.style_layers)
        if encoder is None:
            encoder = VGGFeatures(layers, weights=loss_network)
        missing = [name for name in layers if name not in encoder.layers]
        if missing:
            raise ValueError(f"encoder does not compute layer(s) {missing}")
        self.encoder = encoder
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.relative_style = relative_style
        self.target_grams: dict[str, Tensor] = {}  # (styles, C, C) per layer
        self.style_scales: dict[str, float] = {}
        self.style_factors: Tensor | None = None  # (styles,) weight of each style (set_styles)

    @torch.no_grad()
    def set_style(self, style: Tensor) -> None:
        """Compute and keep the Gram targets of ``style`` (B, 3, H, W) in [0, 1].

        With several style images, their Grams are averaged.
        """
        features = self.encoder(style)
        self.target_grams = {
            name: gram_matrix(features[name]).mean(0, keepdim=True) for name in self.style_layers
        }
        self.style_scales = {
            name: 1.0 / max(float(g.pow(2).mean()), 1e-12) if self.relative_style else 1.0
            for name, g in self.target_grams.items()
        }
        self.style_factors = None

    @torch.no_grad()
    def set_styles(self, styles: Sequence[Tensor], factors: Sequence[float] | None = None) -> None:
        """Gram targets of several styles, one (1, 3, H, W) image each (sizes may differ); ``forward``'s
        ``style_ids`` then picks each sample's style. ``factors`` weight each style's term (default 1)."""
        if self.relative_style and len(styles) > 1:
            raise ValueError("relative_style is defined for one style; use absolute terms with set_styles")
        grams = []
        for style in styles:
            self.set_style(style)
            grams.append(self.target_grams)
        self.target_grams = {name: torch.cat([g[name] for g in grams]) for name in self.style_layers}
        factors = [1.0] * len(styles) if factors is None else list(factors)
        if len(factors) != len(styles):
            raise ValueError(f"{len(factors)} style factors for {len(styles)} styles")
        self.style_factors = torch.tensor(factors, device=self.target_grams[next(iter(self.style_layers))].device)

    @torch.no_grad()
    def content_targets(self, content: Tensor) -> dict[str, Tensor]:
        features = self.encoder(content)
        return {name: features[name] for name in self.content_layers}

    def forward(self, image: Tensor, content_targets: Mapping[str, Tensor] | None = None,
                style_ids: Tensor | None = None) -> LossTerms:
        """``style_ids``: (B,) the style of each sample, for a loss with several styles (``set_styles``)."""
        features = self.encoder(image)
        zero = image.new_zeros((), dtype=_at_least_fp32(image).dtype)

        content = zero
        if self.content_layers and self.content_weight:
            if content_targets is None:
                raise ValueError("content layers are set but no content targets were given")
            for name, w in self.content_layers.items():
                content = content + w * content_loss(features[name], content_targets[name])
            content = self.content_weight * content

        style_by_layer: dict[str, Tensor] = {}
        if self.style_layers and self.style_weight:
            if not self.target_grams:
                raise ValueError("style layers are set but set_style() was never called")
            several = self.target_grams[next(iter(self.style_layers))].shape[0] > 1
            if several and style_ids is None:
                raise ValueError("this loss holds several styles: pass style_ids")
            for name, w in self.style_layers.items():
                target = self.target_grams[name].to(image.device)
                if style_ids is None:
                    loss = style_loss(gram_matrix(features[name]), target)
                else:  # each sample against its own style, weighted by that style's factor
                    per_sample = (gram_matrix(features[name]) - target[style_ids]).pow(2).mean((1, 2))
                    factors = 1.0 if self.style_factors is None else self.style_factors.to(image.device)[style_ids]
                    loss = (per_sample * factors).mean()
                style_by_layer[name] = self.style_weight * w * self.style_scales[name] * loss
        style = sum(style_by_layer.values(), zero)

        tv = self.tv_weight * total_variation(_at_least_fp32(image)) if self.tv_weight else zero
        return LossTerms(content + style + tv, content, style, tv, style_by_layer)
