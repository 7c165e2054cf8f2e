"""History across runs, like asv's: epoch time and test metric per backend, run after run in the order made.

Runs are ordered by when they started (env.json ``created``) and labelled with their mlpbench commit
(env.json ``git_commit``) and date. Jobs are matched across runs as `mlpbench.compare` matches them
(everything but the seed), so one line is one experiment cell followed through the runs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..compare import Run, describe, identity, spans_hosts
from ..stats import epoch_time_interval, median_interval
from ..status import Status
from .facts import when
from .grid import file_safe

HISTORY_CAPTION = (
    "Left: steady-state epoch time per run (median of the pooled epochs 2..n of every seed; bar: bootstrap 95% "
    "interval). Right: test metric (median over seeds; bar: min–max). Runs in the order they were made, labelled "
    "with their mlpbench commit and start time."
)


@dataclass
class HistoryFigure:
    """A drawn history figure (the report's `Figure` shape: path, title, caption)."""

    path: Path
    title: str
    caption: str


def ordered(runs: list[Run]) -> list[Run]:
    """The runs in the order they were made (env.json ``created``; runs without it keep their place, last)."""
    dated = [r for r in runs if r.created]
    return sorted(dated, key=lambda r: r.created) + [r for r in runs if not r.created]


def run_label(run: Run) -> str:
    """``812e7fb+dirty`` over ``2026-12-01 09:10`` (or the directory's name when nothing is recorded)."""
    stamp = when(run.created)[:16] if run.created else run.name
    return f"{run.commit}\n{stamp}"


def _metric(records: list[dict[str, Any]]) -> str | None:
    named = next((r.get("target_metric") for r in records if r.get("target_metric")), None)
    return str(named) if named else None


def _point(run: Run, jobs: list[dict[str, Any]], metric: str | None) -> dict[str, float]:
    ok = [r for r in jobs if r.get("status") == Status.OK]
    if not ok:
        return {}
    ids = {r.get("id") for r in ok}
    curves = run.curves[run.curves["id"].isin(ids)] if len(run.curves) else run.curves
    epoch = epoch_time_interval(curves).scaled(1000)
    values = [r.get(f"test_{metric}") for r in ok if isinstance(r.get(f"test_{metric}"), (int, float))]
    quality = median_interval(values, min_n=math.inf)
    return {
        "epoch_ms": epoch.median,
        "epoch_lo_ms": epoch.low,
        "epoch_hi_ms": epoch.high,
        "metric": quality.median,
        "metric_min": min(values) if values else math.nan,
        "metric_max": max(values) if values else math.nan,
    }


def history_series(runs: list[Run]) -> dict[str, tuple[str, dict[str, list[dict[str, float]]]]]:
    """Per task: its metric and, per cell (backend, grid point, mode), one point per run (empty: no such job)."""
    by_host = spans_hosts(*runs)  # a run with jobs on several machines: one series per host
    cells: dict[str, dict[str, Any]] = {}
    for run in runs:
        for r in run.records:
            if r.get("task") is not None and r.get("backend") is not None:
                cells.setdefault(identity(r, by_host), {"record": r, "task": str(r["task"])})
    out: dict[str, tuple[str, dict[str, list[dict[str, float]]]]] = {}
    for key, cell in cells.items():
        task = cell["task"]
        d = describe(cell["record"], by_host)
        name = " · ".join(x for x in (d["backend"], d["point"], d["mode"] if d["mode"] != "controlled" else "") if x)
        metric = out[task][0] if task in out else None
        per_run = []
        for run in runs:
            jobs = [r for r in run.records if identity(r, by_host) == key]
            metric = metric or _metric(jobs)
            per_run.append(_point(run, jobs, metric))
        series = out.setdefault(task, (metric or "metric", {}))[1]
        series[name if name not in series else f"{name} ({len(series)})"] = per_run
    return out


def history_figures(runs: list[Run], folder: Path) -> list[HistoryFigure]:
    """One figure per task, ``history-<task>.png`` in `folder`, from runs already in order."""
    from .figures_compare import history

    labels = [run_label(r) for r in runs]
    out = []
    for task, (metric, series) in history_series(runs).items():
        path = folder / f"history-{file_safe(task)}.png"
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")  # drawn aside, renamed into place
        try:
            if history(task, labels, series, metric, tmp):
                os.replace(tmp, path)
                out.append(HistoryFigure(path, f"{task}: history", HISTORY_CAPTION))
        finally:
            tmp.unlink(missing_ok=True)
    return out
