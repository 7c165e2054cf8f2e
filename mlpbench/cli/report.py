"""``run_bench.py report DIR``: render the reports of a results directory again from its stored results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..report import FIGURES_DIR, write_reports
from ..store import CONFIG_FILE, ENV_FILE, ResultsStore, export_csv, load_results
from .common import EXIT_OK, UsageError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``report`` sub-command's arguments."""
    p = sub.add_parser(
        "report",
        help="render report.md and report.html of a results directory again",
        description="Render DIR/report.md, DIR/report.html, DIR/figures/ and the CSV exports (runs.csv, curves.csv) "
        "from the stored results alone (runs.jsonl, env.json, config.json, and parity.json, scaling.json and "
        "references.json when present).",
    )
    p.add_argument("dir", metavar="DIR", help="a results directory written by `run`")
    p.add_argument("--open", action="store_true", help="open report.html in the default web browser")
    return p


def cmd(args: argparse.Namespace) -> int:
    """``run_bench.py report DIR``: render the reports of a results directory again."""
    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such results directory")
    if not ResultsStore(folder).runs_path.exists():
        raise UsageError(f"{folder}: not a results directory (no runs.jsonl); run a benchmark first")
    if not (folder / ENV_FILE).exists() or not (folder / CONFIG_FILE).exists():
        print(f"note: {folder} has no {ENV_FILE} or {CONFIG_FILE}; the report omits what they hold", file=sys.stderr)
    results = load_results(folder)  # runs.jsonl parsed once, for the exports and the reports
    export_csv(ResultsStore(folder), results)  # the CSV exports are derived files too: rebuilt with the reports
    md_path, html_path = write_reports(folder, results=results)
    n_fig = len([p for p in (folder / FIGURES_DIR).glob("*.png")]) if (folder / FIGURES_DIR).is_dir() else 0
    print(f"Report: {html_path}\n        {md_path} ({n_fig} figures in {folder / FIGURES_DIR})")
    if getattr(args, "open", False):
        import webbrowser

        webbrowser.open(html_path.resolve().as_uri())
    return EXIT_OK
