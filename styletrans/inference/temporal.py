"""Temporal consistency at stylization time: carry the previous output along the flow.

A fast style network repaints its texture on its own 4-pixel grid, so a sub-pixel camera move
or a little sensor noise gives a new texture every frame: flicker. ``TemporalBlender`` warps the
previous *output* onto the new frame with the optical flow of the *source* frames and blends it
with the network's new output, ``blend = w * carried + (1 - w) * new``. The weight ``w`` is
``settings.weight`` where the flow is reliable and falls to 0 where it is not:

* where the forward-backward flow check fails (occlusions, motion edges, outside the frame), and
* where the warped previous *source* frame does not match the new one (lighting, blur, flow
  that is wrong in textureless areas): the carried output would be the wrong picture there.

Averaging two textures that do not line up, and resampling the carried one every frame, both
wash the texture out (the style loss rose 23-40 % at ``w`` = 0.8). So the blend's fine detail
is then scaled up to the local contrast of the network's own output (never down): the texture
keeps its strength and follows the flow.

A frame where too little of the picture is explained by the previous one is a scene cut: the
blend starts afresh there, and that frame is the network's output alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from styletrans.evaluation.temporal import FlowEstimator, reliable_mask, warp


@dataclass(frozen=True)
class TemporalSettings:
    """How much of the previous output is carried, where, and how its contrast is kept."""

    weight: float = 0.9  # share of the carried output where the flow is reliable
    preset: str = "fast"  # DIS preset of the stylization-time flow
    analysis_side: int = 640  # px, longest side of the frames the flow and the trust are computed on
    # Source mismatch ([0, 1], worst channel) up to which the carried output is fully trusted, and
    # from which it is not used: noise and sub-pixel flow error stay below the first.
    trusted: float = 0.1
    distrusted: float = 0.3
    cut_share: float = 0.3  # a frame with less than this share of trusted pixels starts afresh
    feather: int = 7  # px: the carried weight ramps up over this width inside trusted areas
    detail_sigma: float = 2.0  # px: detail = image - Gaussian blur of this sigma
    contrast_window: float = 8.0  # px: sigma of the window local contrast is measured in
    max_gain: float = 2.0  # the most the blend's detail is scaled up

    def __post_init__(self) -> None:
        if not 0 <= self.weight < 1:
            raise ValueError(f"--temporal-weight must be in [0, 1), got {self.weight}")
        if not 0 <= self.trusted < self.distrusted:
            raise ValueError(f"need 0 <= trusted < distrusted, got {self.trusted} and {self.distrusted}")
        if self.analysis_side < 16:
            raise ValueError(f"temporal analysis side must be at least 16 px, got {self.analysis_side}")
        if self.max_gain < 1:
            raise ValueError(f"max_gain must be at least 1, got {self.max_gain}")


class TemporalBlender:
    """Blend each frame's network output with the previous output, carried along the flow.

    Call it once per frame, in order: ``blender(source, stylized)`` with the source frame
    (H, W, 3) uint8 and the network's finished output (H, W, 3) float32 in [0, 1]; it returns
    the frame to write (float32). ``cuts`` counts the scene cuts: the frames after the first that
    started afresh because too little of them was explained by the frame before.
    """

    def __init__(self, settings: TemporalSettings | None = None) -> None:
        self.settings = settings or TemporalSettings()
        self.estimator = FlowEstimator(self.settings.preset)
        self.cuts = 0
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame: the next one is the network's output alone."""
        self._small: np.ndarray | None = None  # previous source frame at the analysis size, [0, 1]
        self._grey: np.ndarray | None = None
        self._output: np.ndarray | None = None

    def _analysis_size(self, h: int, w: int) -> tuple[int, int]:
        """(width, height) of the analysis frames: never larger than the frame."""
        scale = min(1.0, self.settings.analysis_side / max(h, w))
        return max(8, round(w * scale)), max(8, round(h * scale))

    def trust(self, source: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """How the previous frame moves onto ``source`` and how far to trust it: the backward flow and
        the trust in [0, 1], at the analysis size; None for the first frame. Moves the state on."""
        s = self.settings
        size = self._analysis_size(*source.shape[:2])
        small = source if size == source.shape[1::-1] else cv2.resize(source, size, interpolation=cv2.INTER_AREA)
        g = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        small = small.astype(np.float32) / 255
        previous, previous_grey = self._small, self._grey
        self._small, self._grey = small, g
        if previous is None or previous.shape != small.shape:
            return None
        backward, forward = self.estimator(g, previous_grey), self.estimator(previous_grey, g)
        mismatch = cv2.absdiff(warp(previous, backward), small)
        worst = np.maximum(np.maximum(mismatch[..., 0], mismatch[..., 1]), mismatch[..., 2])
        trust = np.clip((s.distrusted - worst) / (s.distrusted - s.trusted), 0, 1) * reliable_mask(backward, forward)
        feather = max(1, round(s.feather * size[0] / source.shape[1]))
        if feather > 1:  # no hard seam where trusted and untrusted areas meet
            trust = np.minimum(trust, cv2.blur(trust, (feather, feather)))
        return backward, trust

    def __call__(self, source: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        stylized = stylized.astype(np.float32, copy=False)
        found = self.trust(source)
        if found is None or self._output is None or self._output.shape != stylized.shape:
            self._output = stylized  # the first frame (or one of another size): nothing to carry
            return stylized
        if float((found[1] > 0.5).mean()) < self.settings.cut_share:
            self._output = stylized  # a scene cut: start afresh
            self.cuts += 1
            return stylized
        small_flow, small_trust = found
        h, w = stylized.shape[:2]
        if small_flow.shape[:2] == (h, w):
            flow, weight = small_flow, small_trust * self.settings.weight
        else:
            flow = cv2.resize(small_flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow *= np.array([w / small_flow.shape[1], h / small_flow.shape[0]], np.float32)
            weight = cv2.resize(small_trust, (w, h), interpolation=cv2.INTER_LINEAR) * self.settings.weight
        # Bicubic: bilinear resampling every frame blurs the carried texture twice as fast.
        carried = warp(self._output, flow, cv2.INTER_CUBIC)
        blend = stylized + weight[..., None] * (carried - stylized)
        out = keep_contrast(blend, stylized, self.settings)
        self._output = out
        return out


def keep_contrast(blend: np.ndarray, reference: np.ndarray, settings: TemporalSettings) -> np.ndarray:
    """``blend`` with its fine detail scaled up, per neighbourhood, to the contrast of ``reference``
    (the network's own output): never down, at most ``max_gain``. Energies are smoothed at 1/4 size."""
    sigma = settings.detail_sigma
    base = cv2.GaussianBlur(blend, (0, 0), sigma)
    detail = blend - base
    reference_detail = reference - cv2.GaussianBlur(reference, (0, 0), sigma)
    h, w = blend.shape[:2]
    small = (max(1, w // 4), max(1, h // 4))

    def local(energy: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(cv2.resize(energy, small, interpolation=cv2.INTER_AREA), (0, 0),
                                settings.contrast_window / 4)

    gain = np.sqrt(local(_energy(reference_detail)) / np.maximum(local(_energy(detail)), 1e-8))
    np.clip(gain, 1.0, settings.max_gain, out=gain)
    gain = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
    return base + gain[..., None] * detail


def _energy(detail: np.ndarray) -> np.ndarray:
    squared = detail * detail
    return squared[..., 0] + squared[..., 1] + squared[..., 2]
