"""Write an evaluation: ``report.json`` (every number), ``report.md`` (the same numbers as
tables, read from the JSON), ``loss_curves.png`` and one panel PNG per photo.

Figures use ``matplotlib.figure.Figure`` directly (no pyplot state, no GUI backend).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from styletrans.atomic import OutputExistsError, atomic_path
from styletrans.evaluation.metrics import ImageEvaluation, summarize
from styletrans.evaluation.runner import FAST_REPEATS, Outputs
from styletrans.evaluation.stability import PAN_KEYS
from styletrans.images import tensor_to_array

REPORT_MD, REPORT_JSON, LOSS_PLOT, PANELS = "report.md", "report.json", "loss_curves.png", "panels"
OPTIMIZER_NAMES = {"lbfgs": "L-BFGS", "adam": "Adam"}


# The headline's artifact lines (styletrans.evaluation.artifacts), each a median over photos.
ARTIFACT_LINES = (
    ("lattice", "**Dot lattice** (`styletrans.evaluation.artifacts.lattice_score`, median over photos; photos score "
                "0.01-0.05, a visible lattice 0.15 or more)"),
    ("dots", "**Dots** (`dot_score`, share of pixels that stand out from their neighbours; photos 0.000-0.02)"),
    ("edge_frame", "**Edge frame** (`edge_frame_score`, median: grey levels between the outer 4 px and the 8 px "
                   "inside them, less the photo's own step there)"),
)


def panel_file(index: int, name: str) -> str:
    """``panels/003_nested_grey.png``: numbered, so photos with one name in two folders differ."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).with_suffix("").as_posix()).strip("_") or "image"
    return f"{PANELS}/{index:03d}_{slug}.png"


def report_files(out_dir: Path, names: Sequence[str]) -> list[Path]:
    """Every file a report on ``names`` writes (checked before the work starts)."""
    files = [REPORT_JSON, REPORT_MD, LOSS_PLOT] + [panel_file(i, n) for i, n in enumerate(names, start=1)]
    return [out_dir / f for f in files]


# ----------------------------------------------------------------------------- figures
def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def render_panel(outputs: Outputs, style: Tensor, evaluation: ImageEvaluation) -> bytes:
    """One row: content, style, fast output, Gatys after each iteration count; losses in the titles."""
    from matplotlib.figure import Figure

    tiles = [("content photo", outputs.content), ("style", style),
             (f"fast model\nloss {evaluation.fast.total:.4g}, {evaluation.fast_ms:.0f} ms", outputs.fast)]
    tiles += [(f"Gatys, {n} iterations\nloss {evaluation.gatys[n].total:.4g}, {evaluation.gatys_seconds(n):.1f} s",
               image) for n, image in sorted(outputs.gatys.items())]
    aspect = evaluation.width / evaluation.height
    figure = Figure(figsize=(len(tiles) * 3.0 * max(aspect, 0.75), 3.0 + 0.6), layout="constrained")
    for axis, (title, image) in zip(figure.subplots(1, len(tiles)), tiles, strict=True):
        axis.imshow(tensor_to_array(image))
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    figure.suptitle(evaluation.name, fontsize=10)
    return _png(figure)


def render_loss_plot(results: Sequence[ImageEvaluation], counts: Sequence[int]) -> bytes:
    """Left: mean Gatys loss against iterations, the fast model's mean loss as a horizontal
    line (Johnson et al. 2016, fig. 5). Right: each photo's Gatys loss over its fast model
    loss; where a curve crosses 1 is that photo's equivalent iteration count."""
    from matplotlib.figure import Figure

    curves = np.array([r.curve for r in results])
    fast = np.array([r.fast.total for r in results])
    steps = np.arange(curves.shape[1])
    figure = Figure(figsize=(11, 4), layout="constrained")
    left, right = figure.subplots(1, 2)

    mean_curve = curves.mean(0)
    left.plot(steps, mean_curve, color="tab:blue", label="Gatys")
    left.plot(counts, mean_curve[list(counts)], "o", color="tab:blue")
    left.axhline(fast.mean(), color="tab:red", linestyle="--", label="fast model")
    left.set(yscale="log", xlabel="iterations", ylabel="total loss",
             title=f"mean over {len(results)} photo{'s' if len(results) > 1 else ''}")
    left.legend()

    for result, curve, target in zip(results, curves, fast, strict=True):
        right.plot(steps, curve / target, linewidth=1, label=result.name if len(results) <= 8 else None)
    right.axhline(1.0, color="tab:red", linestyle="--", label="fast model")
    right.set(yscale="log", xlabel="iterations", ylabel="Gatys loss / fast model loss", title="per photo")
    right.legend(fontsize=7)
    for axis in (left, right):
        axis.grid(True, which="both", alpha=0.3)
    return _png(figure)


# ----------------------------------------------------------------------------- numbers
def build_report(results: Sequence[ImageEvaluation], counts: Sequence[int], setup: dict[str, Any],
                 panels: Sequence[str], notes: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON document: the setup, the summary (mean rows, headline) and every photo's
    figures; ``panels`` are the photos' panel files (``panel_file``), in order."""
    images = [{**r.to_json(), "panel": panel} for r, panel in zip(results, panels, strict=True)]
    return {**setup, "iterations": list(counts), "summary": summarize(results, counts),
            "images": images, "notes": list(notes)}


def number(value: float | None) -> str:
    """Four significant figures (what the tables show); a dash for a missing value."""
    return "–" if value is None else f"{value:.4g}"


def iterations_cell(value: int | None, max_iterations: int) -> str:
    """A photo's equivalent iterations, or "> N" when Gatys did not get there in N."""
    return f"> {max_iterations}" if value is None else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def render_markdown(report: dict[str, Any]) -> str:
    """``report.md`` from the JSON document alone, so the two cannot disagree."""
    counts = [str(n) for n in report["iterations"]]
    summary, images = report["summary"], report["images"]
    eq, speed, sim = summary["equivalent_iterations"], summary["speed"], summary["similarity"]
    max_n, ref = eq["max_iterations"], str(sim["gatys_iterations"])
    loss = report["loss"]
    model = report["model"]
    mean_row = "**mean**"

    lines = [
        f"# Fast model vs. optimization: {model['style_name']}",
        "",
        f"`{model['path']}` against Gatys et al. under the loss it was trained with, on {len(images)} photo(s) "
        f"from `{report['content_dir']}` at {report['size']} px (longest side), on {report['device']}.",
        "",
        f"- **Fast model**: {model['runtime']}; transformer {model.get('transformer')}",
        f"- **Loss** (from the model's metadata): `{loss['loss_network']}`; content {loss['content_layers']}; "
        f"style {loss['style_layers']}; weights content {loss['content_weight']:g}, style {loss['style_weight']:g}, "
        f"TV {loss['tv_weight']:g}; {'relative' if loss['relative_style'] else 'absolute'} style terms; style image "
        f"`{report['style_image']}` at {report['style_size'] or 'its own size'} px",
        f"- **Gatys**: {OPTIMIZER_NAMES.get(loss['optimizer'], loss['optimizer'])} (step {loss['lr']:g}) from the "
        f"content photo, one run of {max_n} iterations per photo",
        f"- **Command**: `{report['command']}`",
        "",
        "## Headline",
        "",
    ]
    median = f"more than {max_n}" if eq["median"] is None else f"{eq['median']:g}"
    mean = "" if eq["mean"] is None else f"; mean {eq['mean']:g}"
    lines.append(
        f"- **Equivalent iterations**: Gatys reaches the fast model's loss after **{median}** iterations "
        f"(median over photos{mean}); {eq['reached']} of {eq['images']} photo(s) got there within {max_n}. "
        "Johnson et al. (2016) report 50 to 100."
    )
    lines.append(
        f"- **Speed**: the fast model takes **{number(speed['fast_ms'])} ms** per photo; Gatys takes "
        f"{number(speed['gatys_seconds'][ref])} s for {ref} iterations (**{number(speed['speedup'][ref])}x** the "
        "fast model's time)"
        + ("" if speed["gatys_seconds_to_equivalent"] is None else
           f" and {number(speed['gatys_seconds_to_equivalent'])} s to reach its loss "
           f"(**{number(speed['speedup_at_equivalent'])}x**)") + "."
    )
    artifacts = summary.get("artifacts", {})
    for key, title in ARTIFACT_LINES:  # median over photos, photo / fast / Gatys where each has one
        scores = artifacts.get(key, {})
        if scores:
            photo = f"photo {number(scores['photo'])}, " if "photo" in scores else ""
            lines.append(f"- {title}: {photo}fast model **{number(scores.get('fast'))}**, Gatys after {ref} "
                         f"iterations {number(scores.get('gatys'))}.")
    if summary.get("style_strength") is not None or summary.get("content_ratio") is not None:
        lines.append(
            f"- **Style strength** (median; under the Gatys defaults' loss, the log-scale fall of the style term from "
            f"the photo, over the Gatys default result's: 0 is the photo, 1 is Gatys): "
            f"**{number(summary.get('style_strength'))}**, with a content term "
            f"**{number(summary.get('content_ratio'))}x** the Gatys result's."
        )
    pan = summary.get("pan", {})
    if pan:
        lines.append(
            f"- **Pan** (median; mean change in grey levels when the photo moves, after moving it back; 0 follows "
            f"the picture): **{number(pan.get('fast_1px'))}** at 1 px, {number(pan.get('fast_4px'))} at 4 px (the "
            f"network's stride); the photo's own frames change by {number(pan.get('photo_1px'))} at 1 px. "
            f"**Noise** (a still shot: the photo plus 1 grey level of fresh noise per frame): "
            f"**{number(pan.get('fast_noise'))}**, the frames themselves {number(pan.get('photo_noise'))}."
        )
    lines += [
        f"- **Similarity** of the fast output to Gatys after {ref} iterations: SSIM {number(sim.get('ssim'))}, "
        f"PSNR {number(sim.get('psnr'))} dB, LPIPS {number(sim.get('lpips'))}.",
        "",
        "## Total loss",
        "",
        "Lower is better; the content photo itself scores the value at 0 iterations in `report.json` (`curve`).",
        "",
    ]
    rows = [[im["name"], f"{im['width']}x{im['height']}", number(im["fast"]["total"])]
            + [number(im["gatys"][n]["total"]) for n in counts]
            + [iterations_cell(im["equivalent_iterations"], max_n)] for im in images]
    rows.append([mean_row, "", number(summary["fast"]["total"])]
                + [number(summary["gatys"][n]["total"]) for n in counts]
                + [number(eq["mean"])])  # no mean unless every photo got there
    lines += _table(["photo", "size", "fast model"] + [f"Gatys {n}" for n in counts] + ["equivalent iterations"],
                    rows)

    lines += ["## Content and style terms", ""]
    header = ["photo", "fast content", "fast style"] + [f"Gatys {n} {t}" for n in counts for t in ("content", "style")]

    def terms(entry: dict[str, Any]) -> list[str]:
        return [number(entry["fast"]["content"]), number(entry["fast"]["style"])] + [
            number(entry["gatys"][n][t]) for n in counts for t in ("content", "style")]

    lines += _table(header, [[im["name"], *terms(im)] for im in images] + [[mean_row, *terms(summary)]])

    threads = f" with {report['threads']} CPU thread(s)" if report.get("threads") else ""
    lines += ["## Speed", "", f"Wall time on {report['device']}{threads}, loading excluded; the fast model's time "
              f"is the median of {FAST_REPEATS} runs after a warm-up, Gatys' the time to reach each count in one run.",
              ""]
    rows = [[im["name"], number(im["fast"]["ms"])] + [number(im["gatys"][n]["seconds"]) for n in counts]
            + [number(im["seconds_to_equivalent"])] for im in images]
    rows.append([mean_row, number(speed["fast_ms"])] + [number(speed["gatys_seconds"][n]) for n in counts]
                + [number(speed["gatys_seconds_to_equivalent"])])
    rows.append(["**Gatys / fast**", "1"] + [number(speed["speedup"][n]) for n in counts]
                + [number(speed["speedup_at_equivalent"])])
    lines += _table(["photo", "fast model (ms)"] + [f"Gatys {n} (s)" for n in counts] + ["Gatys to equal loss (s)"],
                    rows)

    if any(im.get("yardstick") for im in images):
        lines += ["## Style strength, content ratio and pan", "",
                  "Under the Gatys defaults' loss: style and content terms of the photo, the fast output and the "
                  "Gatys default result; the pan and the noise in grey levels.", ""]
        rows = [[im["name"], number(im["style_strength"]), number(im["content_ratio"])]
                + [number(im["yardstick"][k]["style"]) for k in ("photo", "fast", "gatys")]
                + [number(im["pan"].get(k)) for k in PAN_KEYS]
                for im in images if im.get("yardstick")]
        rows.append([mean_row.replace("mean", "median"), number(summary.get("style_strength")),
                     number(summary.get("content_ratio")), "", "", ""]
                    + [number(pan.get(k)) for k in PAN_KEYS])
        lines += _table(["photo", "style strength", "content ratio", "style: photo", "style: fast",
                         "style: Gatys", "pan 1 px", "pan 4 px", "photo 1 px", "noise", "photo noise"], rows)

    lines += [f"## Similarity: fast output vs. Gatys after {ref} iterations", "",
              "SSIM: 1 is identical; PSNR in dB, higher is closer; LPIPS: 0 is identical.", ""]
    rows = [[im["name"]] + [number(im["similarity"].get(k)) for k in ("ssim", "psnr", "lpips")] for im in images]
    rows.append([mean_row] + [number(sim.get(k)) for k in ("ssim", "psnr", "lpips")])
    lines += _table(["photo", "SSIM", "PSNR (dB)", "LPIPS"], rows)

    lines += ["## Loss against iterations", "", f"![loss curves]({LOSS_PLOT})", "",
              "Left: Gatys' total loss (mean over photos) against iterations, and the fast model's as a "
              "dashed line (as in Johnson et al. 2016, figure 5). Right: each photo's Gatys loss divided by its "
              "fast model loss; a curve crosses 1 at that photo's equivalent iteration count.", "",
              "## Panels", ""]
    for im in images:
        lines += [f"### {im['name']}", "", f"![{im['name']}]({im['panel']})", ""]
    if report["notes"]:
        lines += ["## Notes", ""] + [f"- {note}" for note in report["notes"]] + [""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- files
def write_report(out_dir: Path, report: dict[str, Any], panels: Sequence[bytes], loss_plot: bytes, *,
                 overwrite: bool = False) -> list[Path]:
    """Write every file atomically; ``panels`` are PNG bytes in the order of ``report["images"]``.
    ``report.md`` goes last: once it is there, the report is whole."""
    contents = {REPORT_JSON: json.dumps(report, indent=1).encode(), LOSS_PLOT: loss_plot}
    contents.update({image["panel"]: png for image, png in zip(report["images"], panels, strict=True)})
    contents[REPORT_MD] = render_markdown(report).encode()
    if not overwrite:
        for name in contents:
            if (out_dir / name).exists():
                raise OutputExistsError(out_dir / name)
    for name, data in contents.items():
        with atomic_path(out_dir / name, overwrite=overwrite) as tmp:
            tmp.write_bytes(data)
    return [out_dir / name for name in contents]
