"""Evaluate a fast style network against the Gatys optimization under its own loss.

``metrics``: the records and the arithmetic (equivalent iterations, means, speed-ups);
``similarity``: SSIM, PSNR, LPIPS; ``runner``: running both methods on photos;
``report``: ``report.json``, ``report.md`` and the figures.
"""

from styletrans.evaluation.metrics import ImageEvaluation, Losses, equivalent_iterations, parse_iterations, summarize
from styletrans.evaluation.report import (
    build_report,
    panel_file,
    render_loss_plot,
    render_markdown,
    render_panel,
    report_files,
    write_report,
)
from styletrans.evaluation.runner import Evaluator, FastModel, Outputs, gatys_settings, load_model

__all__ = [
    "Evaluator",
    "FastModel",
    "ImageEvaluation",
    "Losses",
    "Outputs",
    "build_report",
    "equivalent_iterations",
    "gatys_settings",
    "load_model",
    "panel_file",
    "parse_iterations",
    "render_loss_plot",
    "render_markdown",
    "render_panel",
    "report_files",
    "summarize",
    "write_report",
]
