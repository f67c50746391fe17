"""7. ``guided-backprop``: what one intermediate neuron responds to in the photo: the
gradient of its activation with respect to the image, plain and guided (Springenberg
et al. 2015: only positive gradients pass back through ReLUs, which removes the
cancelling negative evidence and leaves a sharp picture of the neuron's pattern)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from styletrans.diagnostics.base import Context, Method, Result, Tile, center_square, option
from styletrans.diagnostics.hooks import guided_relus
from styletrans.diagnostics.networks import Network
from styletrans.diagnostics.plot import crop_padded, draw_box, rgb, signed


def neuron_gradient(net: Network, image: Tensor, layer: str, unit: tuple[int, int, int], guided: bool) -> Tensor:
    """d activation[channel, i, j] of ``layer`` / d image, (3, H, W)."""
    channel, i, j = unit
    x = image[None].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        if guided:
            with guided_relus(net):
                act = net.activations(x, [layer])[layer]
        else:
            act = net.activations(x, [layer])[layer]
        act[0, channel, i, j].backward()
    return x.grad[0]


def strongest_unit(act: Tensor, channel: int | None, allowed: Tensor | None = None) -> tuple[int, int, int]:
    """(channel, i, j) of the largest activation in (C, h, w), within ``channel`` if given
    and among the positions where the (h, w) mask ``allowed`` is true, if any is."""
    if channel is not None and not 0 <= channel < act.shape[0]:
        raise ValueError(f"channel {channel} out of range: the layer has {act.shape[0]}")
    if allowed is not None and allowed.any():
        act = act.masked_fill(~allowed, float("-inf"))
    if channel is not None:
        i, j = divmod(int(act[channel].argmax()), act.shape[-1])
        return channel, i, j
    c, rest = divmod(int(act.argmax()), act.shape[-2] * act.shape[-1])
    return (c, *divmod(rest, act.shape[-1]))


@dataclass
class GuidedBackprop(Method):
    """Plain and guided gradients of one neuron with respect to the photo."""

    name: ClassVar[str] = "guided-backprop"
    summary: ClassVar[str] = "gradient of one intermediate neuron w.r.t. the image, plain and guided"
    needs: ClassVar[tuple[str, ...]] = ("image",)

    network: str = option("features", "which network: features or classifier", choices=("features", "classifier"))
    layer: str = option("relu4_3", "layer of the neuron")
    channel: int | None = option(None, "channel of the neuron (default: the most activated one)")
    size: int = option(224, "input size (central square)")

    def run(self, context: Context) -> Result:
        net = context.network(self.network)
        image = center_square(context.image, self.size)
        with torch.no_grad():
            act = net.activations(image[None], [self.layer])[self.layer][0]
        if act.dim() != 3:
            raise ValueError(f"layer {self.layer!r} has no spatial map (output shape {tuple(act.shape)})")
        field = net.receptive_field(self.layer, self.size)
        inside = field.inside(tuple(act.shape[-2:]), (self.size, self.size)).to(act.device)
        unit = strongest_unit(act, self.channel, inside)  # prefer units that see no padding
        plain = neuron_gradient(net, image, self.layer, unit, guided=False)
        guided = neuron_gradient(net, image, self.layer, unit, guided=True)
        box = field.box(unit[1], unit[2])

        def crop(x: Tensor) -> Tensor:
            return crop_padded(x, box, fill=0.0)

        rows = [[Tile(draw_box(rgb(image), box), f"{self.layer} ch {unit[0]} at {unit[1:]}: {float(act[unit]):.3g}"),
                 Tile(rgb(crop_padded(image, box)), "receptive field"),
                 Tile(signed(crop(plain)), "plain gradient"),
                 Tile(signed(crop(guided)), "guided backprop")]]
        summary = {"network": net.source, "layer": self.layer, "channel": unit[0], "position": list(unit[1:]),
                   "activation": float(act[unit]), "receptive_field_box": list(box),
                   "plain": _stats(plain), "guided": _stats(guided)}
        return self.result(summary, rows, f"guided backprop: {net.source} {self.layer} channel {unit[0]}")


def _stats(gradient: Tensor) -> dict[str, float]:
    return {"l2": float(gradient.norm()), "max_abs": float(gradient.abs().max()),
            "positive_fraction": float((gradient > 0).float().mean()),
            "nonzero_fraction": float((gradient != 0).float().mean())}
