"""The temporal consistency of style networks on a real clip, frame by frame and with ``--temporal``.

``evaluate_clip`` makes one pass over a clip. For every pair of source frames it computes the
evaluation flow once (``flow``: DIS ``medium`` at full size, finer than the ``fast`` flow the
temporal blend uses; or ``farneback``, another family: a texture carried along the very flow the
evaluation warps with scores low whatever that flow's errors are, so a blend on DIS needs a check
that is not DIS) and the source's own warping error, the floor. Every network then stylizes the
frame, once: the frame-by-frame output and the temporally blended one both come from that call,
so the two are compared on the same network outputs and timed side by side. Optionally, clips
stylized elsewhere (``styletrans stylize`` output) are scored with the same flow, and the style loss
of a frame is measured every ``style_every`` frames. Only the previous frame of each clip is kept,
so memory does not grow with the clip.

``frames_per_second`` times the network and the blend alone (at a size of the caller's choosing);
``summary_rows`` and ``format_table`` give the figures the goals are about, as ``styletrans evaluate
--video`` and ``benchmarks/temporal.py`` print them; ``render_error_plot`` draws the error per frame.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from styletrans.evaluation.stability import pan_scores
from styletrans.evaluation.temporal import FlowEstimator, grey, mean_error, motion, warping_error
from styletrans.inference.stylizer import Stylizer
from styletrans.inference.temporal import TemporalBlender, TemporalSettings
from styletrans.inference.video import read_frames
from styletrans.losses import PerceptualLoss

MODES = ("frame_by_frame", "temporal")


def style_loss_for(stylizer: Stylizer, size: int, style: str | os.PathLike | None = None,
                   device: str = "cpu") -> PerceptualLoss:
    """The yardstick loss (``GatysSettings().build_loss()``) with the network's painting at ``size`` px
    (longest side) as its style; ``style`` overrides the painting named in the network's metadata."""
    from styletrans.assets import resolve_image
    from styletrans.images import load_image
    from styletrans.optimize.gatys import GatysSettings

    training = stylizer.metadata.get("training")
    spec = style or (training.get("style_image") if isinstance(training, dict) else None) or stylizer.style_name
    loss = GatysSettings().build_loss(device)
    loss.set_style(load_image(resolve_image(str(spec), "styles"), size)[None].to(device))
    return loss


@dataclass
class _Run:
    """One network on the clip: its blender, the previous frame of each mode and what was measured."""

    stylizer: Stylizer
    blender: TemporalBlender
    loss: PerceptualLoss | None
    previous: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    style: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    network_s: list[float] = field(default_factory=list)
    blend_s: list[float] = field(default_factory=list)


def _tensor(frame: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 or [0, 1] float -> (1, 3, H, W) float in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None]
    return t.float() / 255 if frame.dtype == np.uint8 else t.float()


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    """As ``stylize_video`` writes a frame: the error is scored on what a viewer would get."""
    return (np.clip(frame, 0, 1) * 255).round().astype(np.uint8)


def temporal_stylize(stylizer: Stylizer, settings: TemporalSettings) -> Callable[[Tensor], Tensor]:
    """A (B, 3, H, W) -> (B, 3, H, W) function that stylizes a batch as consecutive frames with the blend
    (for the pan number with ``--temporal``)."""

    def run(frames: Tensor) -> Tensor:
        blender = TemporalBlender(settings)
        out = []
        for frame in frames:
            stylized = stylizer.stylize_tensor(frame[None])[0].clamp(0, 1).permute(1, 2, 0).numpy()
            source = _to_uint8(frame.permute(1, 2, 0).numpy())
            out.append(torch.from_numpy(_to_uint8(blender(source, stylized))).permute(2, 0, 1).float() / 255)
        return torch.stack(out)

    return run


def evaluate_clip(source: str | os.PathLike, stylizers: dict[str, Stylizer], *,
                  stylized: dict[str, str | os.PathLike] | None = None, size: int | None = None,
                  start: int = 0, limit: int | None = None, temporal: TemporalSettings | None = None,
                  losses: dict[str, PerceptualLoss] | None = None, style_every: int = 0,
                  pan: bool = True, flow: str = "medium",
                  progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Warping errors (Lai et al. 2018) of ``source`` and of each network's output on it, frame by
    frame and with the temporal blend, in one pass; see the module docstring.

    ``stylized``: other clips of the same frames (``{label: path}``), scored with the same flow.
    ``losses``: per network name, a style loss (``style_loss_for``) measured every ``style_every`` frames.
    ``start``/``limit``: the frames used; ``flow``: the evaluation's (``FlowEstimator``). Returns a
    JSON-ready dict: per-pair errors, means, ratios to the source, style losses, pan numbers, and the
    network's and the blend's milliseconds per frame.
    """
    settings = temporal or TemporalSettings()
    losses = losses or {}
    runs = {name: _Run(s, TemporalBlender(settings), losses.get(name)) for name, s in stylizers.items()}
    others: dict[str, Iterator[np.ndarray]] = {
        label: read_frames(path, size=size, start=start, limit=limit) for label, path in (stylized or {}).items()}
    other_errors: dict[str, list[float]] = {label: [] for label in others}
    other_previous: dict[str, np.ndarray] = {}
    estimator = FlowEstimator(flow)
    source_errors: list[float] = []
    reliable: list[float] = []
    previous_frame: np.ndarray | None = None
    previous_grey: np.ndarray | None = None
    first: np.ndarray | None = None
    index = -1
    for index, frame in enumerate(read_frames(source, size=size, start=start, limit=limit)):
        g = grey(frame)
        move = motion(previous_grey, g, estimator) if previous_grey is not None else None
        if move is not None:
            reliable.append(move.reliable)
            source_errors.append(warping_error(previous_frame, frame, move))
        for label, stream in others.items():
            other = next(stream, None)
            if other is None or other.shape != frame.shape:
                raise ValueError(f"{stylized[label]}: " + ("fewer frames than the source" if other is None else
                                 f"{other.shape[1]}x{other.shape[0]}, the source {frame.shape[1]}x{frame.shape[0]}"))
            if move is not None:
                other_errors[label].append(warping_error(other_previous[label], other, move))
            other_previous[label] = other
        for run in runs.values():
            started = time.perf_counter()
            network = run.stylizer.stylize_tensor(_tensor(frame))[0].clamp(0, 1).permute(1, 2, 0).numpy()
            blended_start = time.perf_counter()
            blended = run.blender(frame, network)
            run.network_s.append(blended_start - started)
            run.blend_s.append(time.perf_counter() - blended_start)
            outputs = {"frame_by_frame": _to_uint8(network), "temporal": _to_uint8(blended)}
            for mode, out in outputs.items():
                if move is not None:
                    run.errors[mode].append(warping_error(run.previous[mode], out, move))
                run.previous[mode] = out
            if run.loss is not None and style_every > 0 and index % style_every == style_every // 2:
                with torch.no_grad():
                    targets = run.loss.content_targets(_tensor(frame))
                    for mode, out in outputs.items():
                        run.style[mode].append(float(run.loss(_tensor(out), targets).style))
        previous_frame, previous_grey = frame, g
        first = frame if first is None else first
        if progress is not None:
            progress(1)
    if first is None:
        raise ValueError(f"{source}: no frames in the range asked for")

    floor = mean_error(source_errors)
    result: dict[str, Any] = {
        "source": str(source), "frames": index + 1, "start": start, "size": [first.shape[1], first.shape[0]],
        "flow": {"evaluation": f"{estimator.name}, full size", "reliable_share": _mean(reliable)},
        "temporal_settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__},
        "source_clip": {"errors": source_errors, "mean": floor},
        "stylized_clips": {label: _summary(errors, floor) for label, errors in other_errors.items()},
        "networks": {},
    }
    for name, run in runs.items():
        network_ms, blend_ms = 1000 * _median(run.network_s[1:]), 1000 * _median(run.blend_s[1:])
        entry: dict[str, Any] = {mode: _summary(run.errors[mode], floor) for mode in MODES}
        entry["cuts"] = run.blender.cuts
        entry["ms_per_frame"] = {"network": network_ms, "blend": blend_ms}
        entry["fps"] = {"frame_by_frame": 1000 / network_ms if network_ms else None,
                        "temporal": 1000 / (network_ms + blend_ms) if network_ms else None}
        if run.style["frame_by_frame"]:
            plain, blended = (statistics.fmean(run.style[m]) for m in MODES)
            entry["style_loss"] = {**{m: run.style[m] for m in MODES}, "frames_every": style_every,
                                   "change": blended / plain - 1}
        if pan:
            photo = _tensor(first)[0]
            entry["pan"] = {"frame_by_frame": pan_scores(lambda b, s=run.stylizer: s.stylize_tensor(b), photo),
                            "temporal": pan_scores(temporal_stylize(run.stylizer, settings), photo)}
        result["networks"][name] = entry
    return result


def frames_per_second(stylizer: Stylizer, frames: Iterable[np.ndarray],
                      settings: TemporalSettings | None = None) -> dict[str, float]:
    """Frames per second of the network alone and of the network plus the blend (its optical flow
    included), one frame per call as the blend runs; medians over ``frames`` (the first two are a
    warm-up: the first has nothing to blend). Decoding and encoding are not counted."""
    blender = TemporalBlender(settings)
    network_s, blend_s = [], []
    for frame in frames:
        started = time.perf_counter()
        network = stylizer.stylize_tensor(_tensor(frame))[0].clamp(0, 1).permute(1, 2, 0).numpy()
        blended_start = time.perf_counter()
        blender(frame, network)
        network_s.append(blended_start - started)
        blend_s.append(time.perf_counter() - blended_start)
    if len(network_s) < 3:
        raise ValueError("frames_per_second needs at least 3 frames")
    network, blend = _median(network_s[2:]), _median(blend_s[2:])
    return {"frame_by_frame": 1 / network, "temporal": 1 / (network + blend)}


COLUMNS = (  # (key, heading, format) of the summary table
    ("clip", "clip", "{}"), ("style", "style", "{}"), ("source", "source", "{:.2f}"),
    ("frame_by_frame", "frame by frame", "{:.2f}"), ("temporal", "--temporal", "{:.2f}"),
    ("ratio_frame_by_frame", "ratio", "{:.2f}x"), ("ratio_temporal", "ratio --temporal", "{:.2f}x"),
    ("style_loss_change", "style loss", "{:+.1%}"), ("fps_frame_by_frame", "fps", "{:.1f}"),
    ("fps_temporal", "fps --temporal", "{:.1f}"), ("pan_frame_by_frame", "pan", "{:.2f}"),
    ("pan_temporal", "pan --temporal", "{:.2f}"), ("noise_frame_by_frame", "noise", "{:.2f}"),
    ("noise_temporal", "noise --temporal", "{:.2f}"), ("cuts", "cuts", "{}"),
)


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per network of an ``evaluate_clip`` result, with the figures its goals are about:
    warping errors x1000 (source, frame by frame, with the blend), their ratios to the source's,
    the style-loss change with the blend, frames per second, the pan number at 1 px and the
    still shot's noise number, the cuts."""
    floor = result["source_clip"]["mean"]
    rows = []
    for name, entry in result["networks"].items():
        pan = entry.get("pan", {})
        rows.append({
            "clip": Path(result["source"]).name, "style": name, "source": 1000 * floor,
            **{mode: 1000 * entry[mode]["mean"] for mode in MODES},
            **{f"ratio_{mode}": entry[mode]["ratio_to_source"] for mode in MODES},
            "style_loss_change": entry.get("style_loss", {}).get("change"),
            **{f"fps_{mode}": entry["fps"][mode] for mode in MODES},
            **{f"pan_{mode}": pan.get(mode, {}).get("fast_1px") for mode in MODES},
            **{f"noise_{mode}": pan.get(mode, {}).get("fast_noise") for mode in MODES},
            "cuts": entry["cuts"],
        })
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """``summary_rows`` as an aligned text table (warping errors x1000; "-": not measured)."""

    def cell(value: Any, form: str) -> str:
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return "-" if missing else form.format(value)

    table = [[heading for _, heading, _ in COLUMNS]]
    table += [[cell(row.get(key), form) for key, _, form in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    # Names left-aligned, figures right-aligned.
    return "\n".join("  ".join(text.ljust(width) if i < 2 else text.rjust(width)
                               for i, (text, width) in enumerate(zip(line, widths, strict=True))).rstrip()
                     for line in table)


def _summary(errors: list[float], floor: float) -> dict[str, Any]:
    mean = mean_error(errors)
    return {"errors": errors, "mean": mean, "ratio_to_source": mean / floor if floor > 0 else math.nan}


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def render_error_plot(results: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Warping error per frame: one panel per clip, the source and each network with and without
    the blend (log scale: the modes differ by up to 30x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(10, 2.8 * len(results)), squeeze=False)
    for ax, result in zip(axes[:, 0], results, strict=True):
        ax.plot(result["source_clip"]["errors"], color="black", lw=1.2, label="source (floor)")
        for i, (name, entry) in enumerate(result["networks"].items()):
            color = f"C{i}"
            ax.plot(entry["frame_by_frame"]["errors"], color=color, lw=0.6, alpha=0.5,
                    label=f"{name} frame by frame")
            ax.plot(entry["temporal"]["errors"], color=color, lw=1.2, label=f"{name} --temporal")
        for label, entry in result["stylized_clips"].items():
            ax.plot(entry["errors"], lw=1, ls="--", label=label)
        ax.set_yscale("log")
        ax.set_title(f"{Path(result['source']).name} ({result['size'][0]}x{result['size'][1]}, "
                     f"{result['frames']} frames)", fontsize=9)
        ax.set_ylabel("warping error")
        ax.legend(fontsize=6, ncol=3, loc="upper right")
    axes[-1, 0].set_xlabel("frame pair")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
