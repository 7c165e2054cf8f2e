"""Writing the reports of a results directory: report.md and report.html, each replaced atomically."""

from __future__ import annotations

import os
from pathlib import Path

from .html import render_html
from .markdown import render_markdown
from .model import build

REPORT_MD, REPORT_HTML = "report.md", "report.html"


def write_atomically(target: Path, text: str) -> None:
    """Write `text` to `target` under a temporary name, then rename it: a reader never sees half a file."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # one per process: renders never collide
    try:
        tmp.write_text(text, encoding="utf-8")  # the usual permissions (umask), unlike a mkstemp file
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_reports(path: str | Path) -> tuple[Path, Path]:
    """Render DIR/report.md, DIR/report.html and DIR/figures/*.png from the stored results; return both paths."""
    report = build(path)
    md_path, html_path = report.path / REPORT_MD, report.path / REPORT_HTML
    for target, text in ((md_path, render_markdown(report)), (html_path, render_html(report))):
        write_atomically(target, text)
    return md_path, html_path
