"""Writing the reports of a results directory: report.md and report.html, each replaced atomically."""

from __future__ import annotations

from pathlib import Path

from ..files import write_atomic
from ..painter import Painter
from ..store import Results
from .html import render_html
from .markdown import render_markdown
from .model import build

REPORT_MD, REPORT_HTML = "report.md", "report.html"


def write_reports(
    path: str | Path, painter: Painter | None = None, results: Results | None = None
) -> tuple[Path, Path]:
    """Render DIR/report.md, DIR/report.html and DIR/figures/*.png from the stored results; return both paths.

    `painter` draws the figures and `results` is the directory already loaded (see `build`).
    """
    report = build(path, painter=painter, results=results)
    md_path, html_path = report.path / REPORT_MD, report.path / REPORT_HTML
    for target, text in ((md_path, render_markdown(report)), (html_path, render_html(report))):
        write_atomic(target, text)
    return md_path, html_path
