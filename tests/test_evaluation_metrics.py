"""The arithmetic of ``styletrans evaluate`` on hand-made numbers: equivalent iterations,
means and medians with photos that never catch up, speed-ups, that every number in
``report.md``'s tables is the one in ``report.json``, and the similarity scores."""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch

from styletrans.evaluation import (
    ImageEvaluation,
    Losses,
    build_report,
    equivalent_iterations,
    render_markdown,
    summarize,
)
from styletrans.evaluation.metrics import nearest, parse_iterations, summarize_equivalent
from styletrans.evaluation.similarity import load_lpips, similarity
from styletrans.evaluation.stability import PAN_KEYS


@pytest.mark.parametrize(("target", "expected"), [
    (5.0, 2),     # equal counts as reached
    (4.0, 3),
    (10.0, 0),    # the content photo itself already scores as well
    (0.5, None),  # never within the run
])
def test_equivalent_iterations_is_the_first_count_at_or_below_the_target(target: float, expected: int | None) -> None:
    assert equivalent_iterations([10.0, 8.0, 5.0, 3.0, 1.0], target) == expected


def test_equivalent_iterations_takes_the_first_crossing_of_a_curve_that_goes_back_up() -> None:
    assert equivalent_iterations([9.0, 4.0, 6.0, 2.0], 5.0) == 1


def test_parse_iterations_sorts_and_deduplicates() -> None:
    assert parse_iterations("300, 50,100,50") == [50, 100, 300]
    for bad in ("", "0,10", "ten", "50;100"):
        with pytest.raises(ValueError, match="--iterations"):
            parse_iterations(bad)


def test_nearest_count_prefers_the_larger_on_a_tie() -> None:
    assert nearest([50, 100, 300, 500]) == 300
    assert nearest([100, 500]) == 500
    assert nearest([10, 20]) == 20


def test_equivalent_summary_with_photos_that_never_get_there() -> None:
    assert summarize_equivalent([10, 30, 20], 100) == {
        "mean": 20.0, "median": 20.0, "reached": 3, "images": 3, "max_iterations": 100}
    # One photo never reached: no mean (it would understate), the median still exists.
    some = summarize_equivalent([10, None, 20], 100)
    assert (some["mean"], some["median"], some["reached"]) == (None, 20.0, 2)
    # Most never reached: the median is "more than the run", not a number.
    assert summarize_equivalent([None, None, 20], 100)["median"] is None


def evaluation(name: str, fast_total: float, curve: list[float], fast_ms: float, seconds_per_step: float,
               counts: list[int], artifacts: dict[str, dict[str, float]] | None = None) -> ImageEvaluation:
    """A made-up photo: content 1, style the rest, TV 0."""
    def losses(total: float) -> Losses:
        return Losses(total=total, content=1.0, style=total - 1.0, tv=0.0)

    return ImageEvaluation(
        name=name, height=32, width=48, fast=losses(fast_total), fast_ms=fast_ms,
        gatys={n: losses(curve[n]) for n in counts}, curve=curve,
        seconds=[seconds_per_step * n for n in range(len(curve))],
        similarity={"ssim": 0.5, "psnr": 20.0, "lpips": None}, reference=max(counts), artifacts=artifacts or {},
    )


@pytest.fixture
def report() -> dict:
    counts = [1, 2, 4]
    results = [
        evaluation("a.jpg", 6.0, [20.0, 10.0, 5.5, 4.0, 3.0], fast_ms=10.0, seconds_per_step=0.5, counts=counts,
                   artifacts={"lattice": {"photo": 0.02, "fast": 0.30, "gatys": 0.05},
                              "edge_frame": {"fast": 20.0, "gatys": 8.0}}),
        evaluation("b/c.png", 2.0, [30.0, 12.0, 8.0, 6.0, 5.0], fast_ms=30.0, seconds_per_step=1.0, counts=counts,
                   artifacts={"lattice": {"photo": 0.04, "fast": 0.10, "gatys": 0.03},
                              "edge_frame": {"fast": 6.0, "gatys": 10.0}}),
    ]
    setup = {"command": "styletrans evaluate ...", "content_dir": "photos", "size": 48, "device": "cpu",
             "threads": 2, "style_image": "style.png", "style_size": 64,
             "model": {"path": "m.ckpt", "style_name": "m", "runtime": "PyTorch eager on cpu", "transformer": {}},
             "loss": {"loss_network": "random", "content_layers": {"relu3_3": 1.0}, "style_layers": {"relu1_2": 1.0},
                      "content_weight": 1.0, "style_weight": 5.0, "tv_weight": 1e-6, "relative_style": False,
                      "optimizer": "lbfgs", "lr": 1.0}}
    return build_report(results, counts, setup, panels=["panels/001_a.png", "panels/002_b_c.png"])


def test_lattice_is_the_median_over_photos_and_in_the_headline(report: dict) -> None:
    assert [im["artifacts"]["lattice"]["fast"] for im in report["images"]] == [0.30, 0.10]
    headline = next(line for line in render_markdown(report).splitlines() if "Dot lattice" in line)
    assert "fast model **0.2**" in headline and "photo 0.03" in headline
    # A median, not a mean: one latticed photo among clean ones does not move it.
    counts = [1]
    scores = [0.9, 0.05, 0.04]
    results = [evaluation(f"{i}.jpg", 1.0, [2.0, 1.0], 1.0, 1.0, counts, artifacts={"lattice": {"fast": v}})
               for i, v in enumerate(scores)]
    assert summarize(results, counts)["artifacts"] == {"lattice": {"fast": 0.05}}


def test_the_edge_frame_is_in_the_headline_without_a_photo_figure(report: dict) -> None:
    headline = next(line for line in render_markdown(report).splitlines() if "Edge frame" in line)
    assert "fast model **13**" in headline and "iterations 9" in headline and "photo" not in headline.split(":")[-1]


def test_summary_means_and_speedups(report: dict) -> None:
    summary = report["summary"]
    assert [im["equivalent_iterations"] for im in report["images"]] == [2, None]
    assert summary["equivalent_iterations"]["reached"] == 1
    assert summary["fast"]["total"] == pytest.approx(4.0)
    assert summary["gatys"]["4"]["total"] == pytest.approx(4.0)
    speed = summary["speed"]
    assert speed["fast_ms"] == pytest.approx(20.0)
    assert speed["gatys_seconds"]["4"] == pytest.approx((2.0 + 4.0) / 2)
    assert speed["speedup"]["4"] == pytest.approx(3.0 / 0.020)
    # Equal-loss time only over the photo that got there: 2 steps of 0.5 s against its 10 ms.
    assert speed["gatys_seconds_to_equivalent"] == pytest.approx(1.0)
    assert speed["speedup_at_equivalent"] == pytest.approx(100.0)
    assert summary["similarity"] == {"gatys_iterations": 4, "lpips": None, "psnr": 20.0, "ssim": 0.5}


def markdown_tables(markdown: str) -> dict[str, list[list[str]]]:
    """``{section heading: rows of cells}`` for every table (header and rule dropped)."""
    tables: dict[str, list[list[str]]] = {}
    heading = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            heading = line[3:]
        elif line.startswith("| ") and not set(line) <= set("|-"):
            tables.setdefault(heading, []).append([cell.strip() for cell in line.strip("|").split("|")])
    return {name: rows[1:] for name, rows in tables.items()}  # drop each header row


def assert_cell(cell: str, value: float | None, max_iterations: int | None = None) -> None:
    if value is None:
        assert cell in ("–", f"> {max_iterations}"), cell
    else:
        assert float(cell) == pytest.approx(value, rel=1e-3), (cell, value)


def check_markdown_matches_json(markdown: str, report: dict) -> None:
    """Every table cell of ``report.md`` against its number in ``report.json``."""
    tables = markdown_tables(markdown)
    counts = [str(n) for n in report["iterations"]]
    images, summary = report["images"], report["summary"]
    max_n = summary["equivalent_iterations"]["max_iterations"]
    rows_for = [*images, summary]

    totals = tables["Total loss"]
    assert [row[0] for row in totals] == [im["name"] for im in images] + ["**mean**"]
    for row, entry in zip(totals, rows_for, strict=True):
        assert_cell(row[2], entry["fast"]["total"])
        for cell, n in zip(row[3:-1], counts, strict=True):
            assert_cell(cell, entry["gatys"][n]["total"])
    for row, im in zip(totals, images, strict=False):
        assert_cell(row[-1], im["equivalent_iterations"], max_n)
    assert_cell(totals[-1][-1], summary["equivalent_iterations"]["mean"], max_n)

    for row, entry in zip(tables["Content and style terms"], rows_for, strict=True):
        expected = [entry["fast"]["content"], entry["fast"]["style"]]
        expected += [entry["gatys"][n][t] for n in counts for t in ("content", "style")]
        for cell, value in zip(row[1:], expected, strict=True):
            assert_cell(cell, value)

    speed = tables["Speed"]
    for row, im in zip(speed, images, strict=False):
        assert_cell(row[1], im["fast"]["ms"])
        for cell, n in zip(row[2:-1], counts, strict=True):
            assert_cell(cell, im["gatys"][n]["seconds"])
        assert_cell(row[-1], im["seconds_to_equivalent"])
    mean_row, ratio_row = speed[-2], speed[-1]
    assert_cell(mean_row[1], summary["speed"]["fast_ms"])
    for mean_cell, ratio_cell, n in zip(mean_row[2:-1], ratio_row[2:-1], counts, strict=True):
        assert_cell(mean_cell, summary["speed"]["gatys_seconds"][n])
        assert_cell(ratio_cell, summary["speed"]["speedup"][n])
    assert_cell(ratio_row[-1], summary["speed"]["speedup_at_equivalent"])

    if any(im.get("yardstick") for im in images):
        yardstick = tables["Style strength, content ratio and pan"]
        for row, im in zip(yardstick, images, strict=False):
            expected = [im["style_strength"], im["content_ratio"]]
            expected += [im["yardstick"][k]["style"] for k in ("photo", "fast", "gatys")]
            expected += [im["pan"].get(k) for k in PAN_KEYS]
            for cell, value in zip(row[1:], expected, strict=True):
                assert_cell(cell, value)
        last = yardstick[-1]
        assert_cell(last[1], summary["style_strength"])
        assert_cell(last[2], summary["content_ratio"])
        for cell, key in zip(last[6:], PAN_KEYS, strict=True):
            assert_cell(cell, summary["pan"].get(key))

    similarity = next(rows for name, rows in tables.items() if name.startswith("Similarity"))
    for row, entry in zip(similarity, [*(im["similarity"] for im in images), summary["similarity"]], strict=True):
        for cell, key in zip(row[1:], ("ssim", "psnr", "lpips"), strict=True):
            assert_cell(cell, entry.get(key))


def test_markdown_tables_match_the_json(report: dict) -> None:
    markdown = render_markdown(report)
    check_markdown_matches_json(markdown, report)
    assert "| b/c.png | 48x32 | 2 | 12 | 8 | 5 | > 4 |" in markdown  # never reached: "> max", not a number
    assert "![b/c.png](panels/002_b_c.png)" in markdown


def test_markdown_check_catches_a_wrong_number(report: dict) -> None:
    """The comparison above is not vacuous: one number off by 1% fails it."""
    tampered = copy.deepcopy(report)
    tampered["images"][0]["gatys"]["2"]["style"] *= 1.01
    with pytest.raises(AssertionError):
        check_markdown_matches_json(render_markdown(tampered), report)


def test_headline_states_the_median_and_the_speedup(report: dict) -> None:
    markdown = render_markdown(report)
    headline = markdown.split("## Headline")[1].split("##")[0]
    # One of two photos never got there: the median is beyond the run.
    assert re.search(r"after \*\*more than 4\*\* iterations", headline)
    assert "1 of 2 photo(s) got there within 4" in headline
    assert "**150x**" in headline and "**100x**" in headline


def test_psnr_and_ssim_of_a_noisy_copy() -> None:
    torch.manual_seed(0)
    clean = torch.rand(1, 3, 32, 48)
    noisy = (clean + 0.05 * torch.randn_like(clean)).clamp(0, 1)
    scores = similarity(noisy, clean)
    mse = float((noisy - clean).pow(2).mean())
    assert scores["psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-4)
    assert 0 < scores["ssim"] < similarity(clean, clean)["ssim"] == pytest.approx(1.0)
    assert scores["lpips"] is None


def test_lpips_is_skipped_with_a_note_when_its_weights_are_not_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache: nothing to load
    module, note = load_lpips()
    assert module is None
    assert "vgg16-torchvision" in note and "styletrans weights fetch" in note


def test_style_strength_is_0_at_the_photo_1_at_the_reference_and_log_scaled_between() -> None:
    from styletrans.evaluation.metrics import style_strength

    assert style_strength(1000.0, 1000.0, 10.0) == 0.0
    assert style_strength(1000.0, 10.0, 10.0) == 1.0
    assert style_strength(1000.0, 100.0, 10.0) == pytest.approx(0.5)  # halfway on a log scale
    assert style_strength(1000.0, 1.0, 10.0) == pytest.approx(1.5)  # past the reference
    assert style_strength(1000.0, 100.0, 2000.0) is None  # a reference no better than the photo says nothing


def test_strength_content_ratio_and_pan_are_medians_in_the_summary_and_the_markdown() -> None:
    counts = [1]
    results = []
    for index, (fast_style, fast_content, pan) in enumerate([(100.0, 3.0, 2.0), (10.0, 1.0, 8.0), (1000.0, 2.0, 1.0)]):
        result = evaluation(f"{index}.jpg", 1.0, [2.0, 1.0], 1.0, 1.0, counts)
        result.yardstick = {"photo": Losses(1e4, 0.0, 1e4, 0.0), "fast": Losses(0.0, fast_content, fast_style, 0.0),
                            "gatys": Losses(0.0, 2.0, 10.0, 0.0)}
        result.pan = {"fast_1px": pan, "fast_4px": 0.5, "photo_1px": 3.0, "fast_noise": pan / 2, "photo_noise": 1.1}
        results.append(result)
    assert [r.style_strength for r in results] == pytest.approx([2 / 3, 1.0, 1 / 3])
    assert [r.content_ratio for r in results] == [1.5, 0.5, 1.0]
    summary = summarize(results, counts)
    assert summary["style_strength"] == pytest.approx(2 / 3) and summary["content_ratio"] == 1.0
    assert summary["pan"] == {"fast_1px": 2.0, "fast_4px": 0.5, "photo_1px": 3.0, "fast_noise": 1.0, "photo_noise": 1.1}
    setup = {"command": "c", "content_dir": "p", "size": 48, "device": "cpu", "threads": 2, "style_image": "s.png",
             "style_size": 64, "model": {"path": "m.onnx", "style_name": "m", "runtime": "r", "transformer": {}},
             "loss": {"loss_network": "random", "content_layers": {}, "style_layers": {}, "content_weight": 1.0,
                      "style_weight": 1.0, "tv_weight": 0.0, "relative_style": False, "optimizer": "lbfgs", "lr": 1.0}}
    report = build_report(results, counts, setup, panels=[f"panels/{i}.png" for i in range(3)])
    markdown = render_markdown(report)
    assert "**0.6667**, with a content term **1x**" in markdown
    assert "**2** at 1 px, 0.5 at 4 px" in markdown
    check_markdown_matches_json(markdown, report)
