"""The feedforward image transformation network of Johnson, Alahi and Fei-Fei (2016).

Changes from the paper, as in most later implementations: instance normalization
(Ulyanov et al. 2016) instead of batch norm, and nearest-neighbour upsampling plus
convolution instead of fractionally strided convolution (no checkerboard
artifacts; Odena et al. 2016). Reflection padding everywhere (zeros would darken the
borders; a band remains all the same: ``margin`` below).

The ``fast`` preset drops the full-resolution level: the image enters as 2x2 pixel blocks
(space-to-depth, 12 channels at half size) and leaves the same way (12 channels, then
depth-to-space), so no convolution runs at full resolution, where the other presets spend
a third of their work (CPU timings in the README).

With ``styles > 1`` every instance norm is conditional (``styletrans.models.conditional``): one
network holds many styles, and ``forward`` takes which one (or which mix) to apply.

``margin``: a trained network still paints a band of its own along the picture's edges (the
padding tells every layer where the edge is). With a margin the input is first extended by that
many replicated edge pixels and the output cut back: the band falls outside the picture. The
network must be trained with the margin it runs with (its instance norms see the extra pixels).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from styletrans.models.conditional import ConditionalInstanceNorm2d, style_weights


@dataclass(frozen=True)
class TransformerConfig:
    """Widths and depth. ``default``: the paper (32/64/128, 5 residual blocks).

    ``space_to_depth``: two resolution levels (``base_channels`` at half size, twice that at
    quarter size) entered and left through 2x2 pixel blocks, instead of three levels from full size.
    ``styles``: how many styles the network holds (conditional instance norm when more than 1).
    ``margin``: px of replicated edge around the input, cut from the output (module docstring).
    """

    base_channels: int = 32
    residual_blocks: int = 5
    space_to_depth: bool = False
    styles: int = 1
    margin: int = 0

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"transformer margin must be >= 0, not {self.margin}")

    @classmethod
    def preset(cls, name: str) -> TransformerConfig:
        presets = {"default": cls(32, 5), "light": cls(16, 3), "fast": cls(24, 4, space_to_depth=True)}
        if name not in presets:
            raise ValueError(f"unknown transformer preset {name!r}; one of {sorted(presets)}")
        return presets[name]

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


class StyledSequential(nn.Sequential):
    """``nn.Sequential`` that hands the style weights to the children that take them
    (same state-dict keys as a plain Sequential, so single-style checkpoints load unchanged)."""

    def forward(self, x: Tensor, style: Tensor | None = None) -> Tensor:
        for module in self:
            x = module(x, style) if isinstance(module, STYLED) else module(x)
        return x


class ConvLayer(StyledSequential):
    """Reflection pad + conv (+ instance norm, conditional when ``styles > 1``, + ReLU)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1,
                 norm: bool = True, relu: bool = True, styles: int = 1) -> None:
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_ch, out_ch, kernel, stride)]
        if norm:
            layers.append(nn.InstanceNorm2d(out_ch, affine=True) if styles == 1
                          else ConditionalInstanceNorm2d(out_ch, styles))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, styles: int = 1) -> None:
        super().__init__()
        self.body = StyledSequential(ConvLayer(channels, channels, 3, styles=styles),
                                     ConvLayer(channels, channels, 3, relu=False, styles=styles))

    def forward(self, x: Tensor, style: Tensor | None = None) -> Tensor:
        return x + self.body(x, style)


class UpsampleConv(StyledSequential):
    """Nearest-neighbour x2 upsampling, then a conv layer."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, styles: int = 1) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvLayer(in_ch, out_ch, kernel, styles=styles))


STYLED = (StyledSequential, ResidualBlock, ConditionalInstanceNorm2d)


class TransformerNet(nn.Module):
    """RGB in [0, 1] of any size (B, 3, H, W) -> stylized RGB in [0, 1], same size.

    Inputs whose sides are not multiples of 4 are reflection-padded and the output
    cropped back, so any H and W of at least 5 work (and export to ONNX with dynamic axes).
    """

    def __init__(self, config: TransformerConfig | None = None) -> None:
        super().__init__()
        self.config = config or TransformerConfig()
        c, s = self.config.base_channels, self.config.styles
        if self.config.space_to_depth:  # 2x2 blocks of 3 channels in and out (see forward)
            self.encoder = StyledSequential(ConvLayer(12, c, 3, styles=s), ConvLayer(c, 2 * c, 3, 2, styles=s))
            deepest = 2 * c
            self.decoder = StyledSequential(UpsampleConv(2 * c, c, styles=s),
                                            ConvLayer(c, 12, 3, norm=False, relu=False))
        else:
            self.encoder = StyledSequential(ConvLayer(3, c, 9, styles=s), ConvLayer(c, 2 * c, 3, 2, styles=s),
                                            ConvLayer(2 * c, 4 * c, 3, 2, styles=s))
            deepest = 4 * c
            self.decoder = StyledSequential(UpsampleConv(4 * c, 2 * c, styles=s), UpsampleConv(2 * c, c, styles=s),
                                            ConvLayer(c, 3, 9, norm=False, relu=False))
        self.residuals = StyledSequential(*(ResidualBlock(deepest, styles=s)
                                            for _ in range(self.config.residual_blocks)))

    def forward(self, x: Tensor, style: Tensor | int | None = None) -> Tensor:
        """``style``: for a multi-style network, a style index, (B,) indices, or (styles,) / (B, styles)
        mixing weights (see ``styletrans.models.conditional.style_weights``); ignored otherwise."""
        h, w = x.shape[-2:]
        if self.config.styles > 1:
            if style is None:
                raise ValueError(f"this network holds {self.config.styles} styles: pass style=INDEX or weights")
            if isinstance(style, Tensor) and style.is_floating_point() and style.dim() == 1:
                style_weights(style, self.config.styles, 1)  # checks the length
                style = style.to(x.device)  # one mix for the whole batch (see ConditionalInstanceNorm2d)
            else:
                style = style_weights(style, self.config.styles, x.shape[0]).to(x.device, x.dtype)
        else:
            style = None
        m = self.config.margin  # fixed per network, so the ``if`` holds for every exported size
        if m:
            x = F.pad(x, (m, m, m, m), mode="replicate")
        # Unconditional (often zero) padding: an exported graph then holds for every size,
        # where an ``if`` would be frozen to the branch taken while tracing.
        x = F.pad(x, (0, (-w - 2 * m) % 4, 0, (-h - 2 * m) % 4), mode="reflect")
        if self.config.space_to_depth:
            x = F.pixel_unshuffle(x, 2)
        y = self.decoder(self.residuals(self.encoder(x, style), style), style)
        if self.config.space_to_depth:
            y = F.pixel_shuffle(y, 2)
        # Sigmoid keeps the output in [0, 1] with a gradient everywhere (clamping would not).
        return y.sigmoid()[..., m:m + h, m:m + w]
