"""The arithmetic of an evaluation: per-image records and what is computed from them.

Everything here is plain floats (no tensors, no I/O), so the figures the report
shows can be checked on hand-made numbers.

Conventions:

* a Gatys **loss curve** is indexed by iterations done: ``curve[0]`` is the loss of
  the start image (the content photo), ``curve[n]`` the loss after ``n`` optimizer steps;
* **equivalent iterations** is the first ``n`` with ``curve[n] <= fast total``
  (Johnson et al. 2016 report 50 to 100); ``None`` when the optimization never gets
  there within the iterations run (shown as "> N");
* **speed-up** at ``n`` iterations is Gatys' seconds for ``n`` iterations divided by
  the fast model's seconds per image;
* **style strength** is one yardstick for every model, whatever its own loss: under the loss of the
  Gatys defaults (``styletrans optimize``), the fall of the style term from the photo to the fast
  output, on a log scale, over its fall from the photo to the Gatys default result (the painting at
  the output size). 0 is the photo, 1 the Gatys result. The **content ratio** beside it is the fast
  output's content term over the Gatys result's, under the same loss;
* the **pan number** (``styletrans.evaluation.stability``) is how much the output changes, in grey
  levels, when the photo moves by 1 px, after moving it back.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# Johnson et al. compare against Gatys after 300 iterations; the similarity figures
# use that count, or the nearest one evaluated.
REFERENCE_ITERATIONS = 300


@dataclass
class Losses:
    """Weighted loss terms of one image under the model's own perceptual loss."""

    total: float
    content: float
    style: float
    tv: float

    @classmethod
    def from_record(cls, record: dict[str, float]) -> Losses:
        return cls(**{k: float(record[k]) for k in ("total", "content", "style", "tv")})


@dataclass
class ImageEvaluation:
    """Everything measured on one content photo."""

    name: str
    height: int
    width: int
    fast: Losses
    fast_ms: float
    gatys: dict[int, Losses]  # at each requested iteration count
    curve: list[float]  # Gatys total loss after 0, 1, ..., N iterations
    seconds: list[float]  # Gatys wall time after 0, 1, ..., N iterations
    similarity: dict[str, float | None] = field(default_factory=dict)  # fast vs Gatys at `reference`
    reference: int = REFERENCE_ITERATIONS
    # Artifact scores (styletrans.evaluation.artifacts: "lattice", "dots", "edge_frame") of photo, fast, and Gatys
    # at `reference`.
    artifacts: dict[str, dict[str, float]] = field(default_factory=dict)
    # Under the Gatys defaults' loss: content and style terms of "photo", "fast", "gatys" (its default result).
    yardstick: dict[str, Losses] = field(default_factory=dict)
    pan: dict[str, float] = field(default_factory=dict)  # stability.pan_scores

    @property
    def style_strength(self) -> float | None:
        if not self.yardstick:
            return None
        return style_strength(*(self.yardstick[k].style for k in ("photo", "fast", "gatys")))

    @property
    def content_ratio(self) -> float | None:
        if not self.yardstick or self.yardstick["gatys"].content <= 0:
            return None
        return self.yardstick["fast"].content / self.yardstick["gatys"].content

    @property
    def equivalent_iterations(self) -> int | None:
        return equivalent_iterations(self.curve, self.fast.total)

    def gatys_seconds(self, iterations: int) -> float:
        return self.seconds[iterations]

    def to_json(self) -> dict[str, Any]:
        eq = self.equivalent_iterations
        return {
            "name": self.name, "height": self.height, "width": self.width,
            "fast": {**asdict(self.fast), "ms": self.fast_ms},
            "gatys": {str(n): {**asdict(losses), "seconds": self.gatys_seconds(n)} for n, losses in self.gatys.items()},
            "equivalent_iterations": eq,
            "seconds_to_equivalent": None if eq is None else self.gatys_seconds(eq),
            "similarity": {"gatys_iterations": self.reference, **self.similarity},
            "artifacts": self.artifacts,
            "style_strength": self.style_strength,
            "content_ratio": self.content_ratio,
            "yardstick": {k: asdict(v) for k, v in self.yardstick.items()},
            "pan": self.pan,
            "curve": self.curve,
            "seconds": self.seconds,
        }


def equivalent_iterations(curve: Sequence[float], target: float) -> int | None:
    """First iteration count at which ``curve`` reaches ``target`` or below; None if never."""
    return next((n for n, value in enumerate(curve) if value <= target), None)


def style_strength(photo_style: float, output_style: float, reference_style: float) -> float | None:
    """``log(photo / output) / log(photo / reference)`` of three style terms: 0 for the photo's own
    style term, 1 for the reference's; None when the reference is no better than the photo."""
    if min(photo_style, output_style, reference_style) <= 0 or reference_style >= photo_style:
        return None
    return math.log(photo_style / output_style) / math.log(photo_style / reference_style)


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values present; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def parse_iterations(text: str) -> list[int]:
    """``"50,100,300"`` -> sorted distinct positive counts."""
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"--iterations: expected comma-separated integers like 50,100,300, got {text!r}") from None
    if not counts or counts[0] < 1:
        raise ValueError(f"--iterations: counts must be positive integers, got {text!r}")
    return counts


def nearest(counts: Iterable[int], wanted: int = REFERENCE_ITERATIONS) -> int:
    """The count closest to ``wanted`` (the larger one on a tie)."""
    return min(counts, key=lambda n: (abs(n - wanted), -n))


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values present; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def summarize_equivalent(values: Sequence[int | None], max_iterations: int) -> dict[str, Any]:
    """Mean (only when every image got there), median (an image that never got there
    counts as infinitely many iterations; None when that is the median) and how many
    images reached the fast model's loss within ``max_iterations``."""
    reached = [v for v in values if v is not None]
    ordered = sorted(math.inf if v is None else v for v in values)
    median = statistics.median(ordered) if ordered else None
    return {
        "mean": statistics.fmean(reached) if reached and len(reached) == len(values) else None,
        "median": None if median is None or math.isinf(median) else float(median),
        "reached": len(reached),
        "images": len(values),
        "max_iterations": max_iterations,
    }


def _by_image(results: Sequence[ImageEvaluation], score: str) -> dict[str, list[float]]:
    """One artifact score's values per image ("photo", "fast", "gatys") over the photos that have it."""
    values: dict[str, list[float]] = {}
    for r in results:
        for image, value in r.artifacts.get(score, {}).items():
            values.setdefault(image, []).append(value)
    return values


def summarize(results: Sequence[ImageEvaluation], counts: Sequence[int]) -> dict[str, Any]:
    """The mean row of every table, the headline figures and the speed ratios."""
    if not results:
        raise ValueError("nothing to summarize: no images were evaluated")
    max_n = max(counts)

    def mean_losses(items: Iterable[Losses]) -> dict[str, float]:
        items = list(items)
        return {k: statistics.fmean(getattr(x, k) for x in items) for k in ("total", "content", "style", "tv")}

    fast_ms = statistics.fmean(r.fast_ms for r in results)
    gatys_seconds = {n: statistics.fmean(r.gatys_seconds(n) for r in results) for n in counts}
    reached = [r for r in results if r.equivalent_iterations is not None]
    to_equivalent = [r.gatys_seconds(r.equivalent_iterations) for r in reached]
    similarity_keys = sorted({k for r in results for k in r.similarity})
    return {
        "images": len(results),
        "fast": {**mean_losses(r.fast for r in results), "ms": fast_ms},
        "gatys": {str(n): {**mean_losses(r.gatys[n] for r in results), "seconds": gatys_seconds[n]} for n in counts},
        "equivalent_iterations": summarize_equivalent([r.equivalent_iterations for r in results], max_n),
        "speed": {
            "fast_ms": fast_ms,
            "gatys_seconds": {str(n): s for n, s in gatys_seconds.items()},
            "speedup": {str(n): s / (fast_ms / 1000) for n, s in gatys_seconds.items()},
            # Time for equal loss, over the photos whose optimization reached the fast model's loss.
            "gatys_seconds_to_equivalent": mean(to_equivalent),
            "speedup_at_equivalent": None if not reached else (
                statistics.fmean(to_equivalent) / (statistics.fmean(r.fast_ms for r in reached) / 1000)),
        },
        "similarity": {"gatys_iterations": results[0].reference,
                       **{k: mean(r.similarity.get(k) for r in results) for k in similarity_keys}},
        # Median: one photo with a flat sky should not hide (or fake) a lattice over the rest.
        "artifacts": {score: {k: statistics.median(values) for k, values in _by_image(results, score).items()}
                      for score in sorted({s for r in results for s in r.artifacts})},
        "style_strength": median(r.style_strength for r in results),
        "content_ratio": median(r.content_ratio for r in results),
        "pan": {key: statistics.median(r.pan[key] for r in results if key in r.pan)
                for key in sorted({k for r in results for k in r.pan})},
    }
