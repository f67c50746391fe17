"""4. ``max-patches``: for some channels of a layer, the image patches in a folder that
excite them most: each patch is the receptive field of a strongly activated unit of that
channel. By default one patch per image (so a channel's row is not one photo); small
folders can allow a few, from units at least half a receptive field apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from styletrans.diagnostics.base import Context, Method, Result, Tile, option
from styletrans.diagnostics.plot import crop_padded, rgb


def selective_channels(peaks: torch.Tensor, count: int, k: int) -> list[int]:
    """The ``count`` channels whose ``k`` best images stand out most from their typical
    one: mean of the top ``k`` minus the median of the per-image peaks, (C, N). Channels
    that fire on nearly everything (colour, contrast) make dull rows, and so do weak ones."""
    best = peaks.topk(min(k, peaks.shape[1]), dim=1).values
    return (best.mean(1) - peaks.median(1).values).topk(min(count, peaks.shape[0])).indices.tolist()


@dataclass
class MaxPatches(Method):
    """Top-k receptive-field crops per channel over a folder."""

    name: ClassVar[str] = "max-patches"
    summary: ClassVar[str] = "top-k folder patches that most activate chosen channels of a layer"
    needs: ClassVar[tuple[str, ...]] = ("folder",)

    network: str = option("features", "which network: features or classifier", choices=("features", "classifier"))
    layer: str = option("relu4_3", "layer whose channels are shown")
    channels: tuple[int, ...] = option((), "channel indices (default: the --count most selective ones)")
    count: int = option(6, "channels shown when --channels is not given")
    k: int = option(8, "patches per channel")
    per_image: int = option(1, "most patches per image and channel (apart by half a receptive field)")
    size: int = option(224, "input size (central square) of the network")

    def run(self, context: Context) -> Result:
        net = context.network(self.network)
        paths, images = context.folder_images(self.size)
        field = net.receptive_field(self.layer, self.size)

        # Units apart by half a receptive field: local maxima over that window.
        window = 2 * max(1, round(field.size[0] / field.stride[0] / 2)) + 1
        width = 0

        def peaks(batch: torch.Tensor) -> torch.Tensor:
            """Per image and channel: the ``per_image`` strongest local maxima among the units
            that see no padding (border units respond to the image edge), as (value, position)."""
            nonlocal width
            act = net.activations(batch, [self.layer])[self.layer]
            width = act.shape[-1]
            inside = field.inside(tuple(act.shape[-2:]), (self.size, self.size)).to(act.device)
            if inside.any():
                act = act.masked_fill(~inside, float("-inf"))
            if self.per_image > 1:
                local = act == F.max_pool2d(act, window, stride=1, padding=window // 2)
                act = act.masked_fill(~local, float("-inf"))
            values, where = act.flatten(2).topk(min(self.per_image, act[0, 0].numel()), dim=2)
            return torch.stack([values, where.float()], dim=-1)

        found_peaks = context.batched(peaks, images, desc=f"{self.layer} activations")  # (N, C, P, 2)
        n, c, p = found_peaks.shape[:3]
        # Candidates per channel: every (image, peak) pair, flattened to N * P.
        values = found_peaks[..., 0].permute(1, 0, 2).reshape(c, n * p)
        where = found_peaks[..., 1].long().permute(1, 0, 2).reshape(c, n * p)
        channels = list(self.channels) or selective_channels(found_peaks[..., 0].amax(2).T, self.count, self.k)
        bad = [ch for ch in channels if not 0 <= ch < c]
        if bad:
            raise ValueError(f"channels {bad} out of range: {self.layer} has {c}")

        rows, found = [], []
        for ch in channels:
            top = values[ch].topk(min(self.k, n * p))
            row, patches = [], []
            for rank, (value, flat) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True)):
                if value == float("-inf"):
                    break  # fewer local maxima than asked for
                image_index = flat // p
                i, j = divmod(int(where[ch, flat]), width)
                box = field.box(i, j)
                row.append(Tile(rgb(crop_padded(images[image_index], box)), f"ch {ch} #{rank + 1}: {value:.3g}"))
                patches.append({"path": str(paths[image_index]), "activation": value, "unit": [i, j],
                                "box": list(box)})
            rows.append(row)
            found.append({"channel": ch, "patches": patches})
        summary = {"network": net.source, "layer": self.layer, "images": len(paths),
                   "receptive_field": list(field.size), "stride": list(field.stride), "channels": found,
                   "skipped": context.skipped}
        return self.result(summary, rows, f"{net.source} {self.layer}: top-{self.k} patches per channel "
                           f"({field.size[0]}x{field.size[1]} px receptive fields at {self.size} px)",
                           tile_inches=1.2)
