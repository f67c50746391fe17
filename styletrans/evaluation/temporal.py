"""Temporal consistency of a video: the warping error of Lai et al. (2018).

Each frame is warped onto the next with the optical flow of the *source* frames (OpenCV's DIS
flow), pixels the flow cannot be trusted at are masked out, and the difference that is left is
averaged: a stylized clip that follows its footage scores near the source clip's own number, and
flicker adds to it. The source clip's number is the floor that flow errors, noise and lighting set.

* ``flow(a, b)``: for every pixel ``x`` of ``a``, ``a(x) ~ b(x + flow(x))`` (grey uint8 frames).
* ``warp(image, flow)``: ``image`` sampled at ``x + flow(x)``; with the flow from frame t+1 to
  frame t, frame t moved onto frame t+1.
* ``reliable_mask``: forward-backward consistency and motion boundaries (Ruder et al. 2016, the
  occlusion test Lai et al. use): pixels that appear, disappear or sit on a motion edge are False.
* ``warping_error``: per pixel, the squared difference summed over the RGB channels ([0, 1]
  units), averaged over the reliable pixels, as in Lai et al.'s ``evaluate_WarpError.py``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
           "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
# Ruder et al.'s thresholds (pixels, squared): disagreement allowed between the two flows, and
# the flow-gradient size that marks a motion boundary.
CONSISTENCY_RELATIVE, CONSISTENCY_ABSOLUTE = 0.01, 0.5
BOUNDARY_RELATIVE, BOUNDARY_ABSOLUTE = 0.01, 0.002
MIN_RELIABLE = 0.01  # share of reliable pixels below which a pair has no warping error (a cut)


def grey(frame: np.ndarray) -> np.ndarray:
    """(H, W) uint8 luma of an (H, W, 3) RGB frame, uint8 or float in [0, 1] (DIS wants 8 bits)."""
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """Optical flow: DIS at ``preset`` (one OpenCV DIS object, reused; not thread-safe), or OpenCV's
    Farneback (``"farneback"``), another family: the check on a blend whose own flow is DIS."""

    def __init__(self, preset: str = "medium") -> None:
        if preset not in PRESETS and preset != "farneback":
            raise ValueError(f"unknown flow {preset!r}; one of {', '.join([*PRESETS, 'farneback'])}")
        self.preset = preset
        self.dis = cv2.DISOpticalFlow_create(PRESETS[preset]) if preset in PRESETS else None

    @property
    def name(self) -> str:
        """The flow as reports name it: ``DIS medium``, ``farneback``."""
        return self.preset if self.dis is None else f"DIS {self.preset}"

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32 flow (dx, dy) from grey uint8 frame ``a`` to ``b``."""
        if self.dis is None:  # OpenCV tutorial's windows (15 px), with 5 pyramid levels (3 there) for larger moves
            return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 15, 3, 5, 1.2, 0)
        return self.dis.calc(a, b, None)


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates, cached: every frame of a clip has the same size (never written to)."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``image`` (H, W[, C]) sampled at ``x + flow(x)``, edges repeated; same dtype."""
    xs, ys = _grid(*flow.shape[:2])
    u, v = cv2.split(flow)
    return cv2.remap(image, xs + u, ys + v, interpolation, borderMode=cv2.BORDER_REPLICATE)


def reliable_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(H, W) bool on frame t+1's grid: where ``backward`` (t+1 -> t) can be trusted.

    ``forward`` is the flow t -> t+1. A pixel passes if it lands inside frame t, the forward flow
    there brings it back (``backward + forward(x + backward) ~ 0``), and it is not on a motion edge.
    """
    h, w = backward.shape[:2]
    xs, ys = _grid(h, w)
    bu, bv = cv2.split(backward)
    tx, ty = xs + bu, ys + bv
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    fu, fv = cv2.split(cv2.remap(forward, tx, ty, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    back_size = bu * bu + bv * bv
    loop = (bu + fu) ** 2 + (bv + fv) ** 2
    consistent = loop <= CONSISTENCY_RELATIVE * (back_size + fu * fu + fv * fv) + CONSISTENCY_ABSOLUTE
    # Central differences, as np.gradient, in float32 (Sobel with ksize 1 is [-1, 0, 1]).
    edge = sum(cv2.Sobel(c, cv2.CV_32F, dx, 1 - dx, ksize=1, scale=0.5) ** 2 for c in (bu, bv) for dx in (0, 1))
    return inside & consistent & (edge <= BOUNDARY_RELATIVE * back_size + BOUNDARY_ABSOLUTE)


@dataclass
class Motion:
    """How frame t moves onto frame t+1: the flow t+1 -> t and where it is reliable (t+1's grid)."""

    backward: np.ndarray  # (H, W, 2) float32
    mask: np.ndarray  # (H, W) bool

    @property
    def reliable(self) -> float:
        """Share of frame t+1 that the flow explains."""
        return float(self.mask.mean())


def motion(earlier: np.ndarray, later: np.ndarray, estimator: FlowEstimator) -> Motion:
    """The ``Motion`` from grey frame ``earlier`` to grey frame ``later`` (two flows)."""
    backward = estimator(later, earlier)
    forward = estimator(earlier, later)
    return Motion(backward, reliable_mask(backward, forward))


def _unit(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) / 255 if frame.dtype == np.uint8 else frame.astype(np.float32)


def warping_error(earlier: np.ndarray, later: np.ndarray, move: Motion) -> float:
    """Lai et al.'s error of one pair of (H, W, 3) frames (uint8 or [0, 1]); NaN if nothing is reliable."""
    if move.mask.mean() < MIN_RELIABLE:
        return math.nan
    diff = warp(_unit(earlier), move.backward) - _unit(later)
    squared = diff * diff
    return float((squared[..., 0] + squared[..., 1] + squared[..., 2])[move.mask].mean())


def warping_errors(source: Iterable[np.ndarray], clips: dict[str, Iterable[np.ndarray]] | None = None, *,
                   estimator: FlowEstimator | None = None) -> dict[str, list[float]]:
    """Per-pair warping errors of ``source`` itself (key ``"source"``) and of each same-length,
    same-size clip in ``clips``, all with the source's flow, in one pass (one frame of each in memory)."""
    estimator = estimator or FlowEstimator()
    clips = clips or {}
    streams: dict[str, Iterator[np.ndarray]] = {name: iter(frames) for name, frames in clips.items()}
    errors: dict[str, list[float]] = {"source": [], **{name: [] for name in clips}}
    previous: dict[str, np.ndarray] = {}
    previous_grey = None
    for frame in source:
        current = {"source": frame}
        for name, stream in streams.items():
            other = next(stream, None)
            if other is None:
                raise ValueError(f"clip {name!r} has fewer frames than the source")
            if other.shape[:2] != frame.shape[:2]:
                raise ValueError(f"clip {name!r} is {other.shape[1]}x{other.shape[0]}, the source "
                                 f"{frame.shape[1]}x{frame.shape[0]}")
            current[name] = other
        g = grey(frame)
        if previous_grey is not None:
            move = motion(previous_grey, g, estimator)
            for name, image in current.items():
                errors[name].append(warping_error(previous[name], image, move))
        previous, previous_grey = current, g
    return errors


def mean_error(errors: list[float]) -> float:
    """Mean over the pairs that have a warping error (a cut has none); NaN if none has."""
    kept = [e for e in errors if not math.isnan(e)]
    return sum(kept) / len(kept) if kept else math.nan
