"""Conditional instance normalization (Dumoulin, Shlens, Kudlur 2017): one network, many styles.

Every instance norm holds a scale and a shift per style, ``weight`` and ``bias`` of shape
(styles, channels); the convolutions are shared. A style is chosen by a weight vector over the
styles: one-hot for a trained style, a convex mix to interpolate (the paper's section 5: mixing the
scales and shifts mixes the styles). ``bake_style`` turns one choice into a plain single-style
network, whose state dict and export are those of a network trained for that style alone.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm whose affine scale and shift are mixed per sample from ``styles`` rows."""

    def __init__(self, channels: int, styles: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(styles, channels))
        self.bias = nn.Parameter(torch.zeros(styles, channels))

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """``style``: (B, styles) mixing weights, as ``style_weights`` returns them, or (styles,): one mix
        for the whole batch, computed as the affine instance norm a baked style is (an exported mixing
        model whose weights are bound then folds into exactly a single-style network's graph)."""
        if style.dim() == 1:  # blended in the parameters' precision, then rounded once to the input's
            style = style.to(self.weight.dtype)
            return F.instance_norm(x, weight=(style @ self.weight).to(x.dtype), bias=(style @ self.bias).to(x.dtype),
                                   eps=self.eps)
        scale = (style @ self.weight)[:, :, None, None]
        shift = (style @ self.bias)[:, :, None, None]
        return F.instance_norm(x, eps=self.eps) * scale + shift


def style_weights(style: Tensor | int, styles: int, batch: int) -> Tensor:
    """(B, styles) mixing weights from a style index, (B,) indices, (styles,) or (B, styles) weights."""
    if not isinstance(style, Tensor):
        style = torch.tensor(style)
    if not style.is_floating_point():
        if style.dim() == 0:
            style = style.expand(batch)
        if int(style.min()) < 0 or int(style.max()) >= styles:
            raise ValueError(f"style index out of range: {style.tolist()} (the network has {styles} styles)")
        return F.one_hot(style, styles).float()
    if style.shape[-1] != styles:
        raise ValueError(f"style weights have {style.shape[-1]} entries, the network has {styles} styles")
    return style.expand(batch, styles) if style.dim() == 1 else style


def mix_weights(mix: dict[int, float], styles: int) -> Tensor:
    """(styles,) weights from ``{style index: weight}``, normalized to sum 1 (Dumoulin's convex mix)."""
    if any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"style mix weights must be >= 0 and not all 0, not {list(mix.values())}")
    weights = torch.zeros(styles)
    for index, w in mix.items():
        weights[index] += w
    return weights / weights.sum()


def bake_style(net: nn.Module, style: Tensor | int) -> nn.Module:
    """A single-style copy of a multi-style ``TransformerNet``, one style (or mix) baked in.

    Each conditional norm becomes ``nn.InstanceNorm2d(affine=True)`` with the chosen scale and shift,
    so the result is exactly the network a single-style run trains: same keys, export and speed.
    """
    from styletrans.models.transformer import TransformerNet

    if not isinstance(net, TransformerNet) or net.config.styles == 1:
        raise ValueError("bake_style needs a multi-style TransformerNet (config.styles > 1)")
    weights = style_weights(style, net.config.styles, 1)[0].to(next(net.parameters()).dtype)
    state = net.state_dict()
    for name, module in net.named_modules():
        if isinstance(module, ConditionalInstanceNorm2d):
            state[f"{name}.weight"] = weights @ module.weight.detach()
            state[f"{name}.bias"] = weights @ module.bias.detach()
    baked = TransformerNet(replace(net.config, styles=1))
    baked.load_state_dict(state)
    return baked.train(net.training)
