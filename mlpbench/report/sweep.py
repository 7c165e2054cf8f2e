"""The sweep section of a gridded task: a table by grid point with the best backend at each, and a figure per setting.

Everything comes from the task's rows (`tables.task_rows` grouped by grid point, ranked per point by
`tables.mark_best`), which come from the records: the table shows where the fastest backend changes
(a crossover), the figures how epoch time and test metric move along each swept setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .format import DASH, fmt_g, fmt_metric, missing
from .grid import (
    applicable,
    file_safe,
    is_backend_option,
    numeric_positions,
    ordered_values,
    point_label,
    swept_settings,
    value_text,
    without_option,
)
from .tables import Column, leader

SWEEP_CAPTION = (
    "Left or top: steady-state epoch time (median of the pooled epochs 2..n of every seed; band: its bootstrap "
    "95% confidence interval), log scale. Right or bottom: test metric, median over seeds (band: min–max)."
)


@dataclass
class SweepRow:
    """One grid point of the sweep table: each backend's numbers there and who is best."""

    values: tuple[str, ...]  # one per point setting
    epoch: dict[str, dict[str, Any]]  # backend -> its task row at this point
    fastest: str | None  # the lowest median epoch time
    tied: list[str]  # backends whose epoch-time interval overlaps the fastest one's
    best_metric: list[str]  # backends with the best test metric (as displayed, ties included)


@dataclass
class SweepSection:
    """The sweep of one task: its settings, table and figures."""

    task: str
    settings: list[str]  # the table's leading columns (task-level settings, and mode)
    swept: list[str]  # every setting that applied to the task, backend options included: one figure each
    backends: list[str]
    metric: str | None
    metric_better: str
    rows: list[SweepRow]
    figures: list[Any] = field(default_factory=list)  # model.Figure
    glance: list[str] = field(default_factory=list)


def sweep_rows(rows: list[dict[str, Any]], backends: list[str], columns: list[Column]) -> list[SweepRow]:
    """The sweep table's rows from the task rows (which `mark_best` already ranked per grid point)."""
    by_key = {c.key: c for c in columns}
    out: dict[tuple[str, ...], SweepRow] = {}
    for r in rows:
        row = out.setdefault(r["point"], SweepRow(r["point"], {}, None, [], []))
        row.epoch[r["backend"]] = r
    for row in out.values():
        here = [row.epoch[b] for b in backends if b in row.epoch]
        row.fastest = leader(here, by_key["epoch_ms"])
        best_time = [r["backend"] for r in here if "epoch_ms" in r.get("best", set())]
        row.tied = [b for b in best_time if b != row.fastest]
        row.best_metric = [r["backend"] for r in here if "metric" in r.get("best", set())]
    return list(out.values())


def fastest_text(row: SweepRow) -> str:
    """``numpy``, or ``numpy (tied: sklearn)`` when another backend's interval overlaps."""
    if row.fastest is None:
        return DASH
    return row.fastest + (f" (tied: {', '.join(row.tied)})" if row.tied else "")


def best_metric_text(row: SweepRow, n_backends: int) -> str:
    """Who has the best test metric at this point; "all tied" when every backend does."""
    if not row.best_metric:
        return DASH
    if len(row.best_metric) == n_backends > 1:
        return "all tied"
    return ", ".join(row.best_metric)


def cell_text(row: SweepRow, backend: str, key: str) -> tuple[str, bool]:
    """A backend's epoch ms or metric at a point, and whether it is best there."""
    r = row.epoch.get(backend)
    if r is None:
        return DASH, False
    value = r.get(key)
    shown = fmt_metric(value) if key == "metric" else fmt_g(value)
    return shown, (not missing(value)) and key in r.get("best", set())


def _glance(task: str, settings: list[str], rows: list[SweepRow]) -> list[str]:
    """Which backend is fastest at how many grid points, naming the points of a minority winner."""
    wins: dict[str, list[str]] = {}
    for row in rows:
        if row.fastest is not None:
            wins.setdefault(row.fastest, []).append(point_label(settings, row.values))
    if not wins:
        return []
    n = sum(len(v) for v in wins.values())
    ranked = sorted(wins.items(), key=lambda kv: -len(kv[1]))
    parts = [f"{ranked[0][0]} at {len(ranked[0][1])}/{n} grid points"]
    for b, points in ranked[1:]:
        where = f" ({'; '.join(points)})" if len(points) <= 3 else ""
        parts.append(f"{b} at {len(points)}{where}")
    lead = f"{task}: lowest median epoch time " + ", ".join(parts)
    return [lead + ("; the fastest backend changes across the grid (a crossover)" if len(wins) > 1 else "")]


def _options(runs: pd.DataFrame) -> dict[str, tuple[str, dict[str, Any]]]:
    out = {}
    for _, r in runs.drop_duplicates("backend").iterrows():
        opts = r.get("backend_options")
        try:
            opts = json.loads(opts) if isinstance(opts, str) else (opts if isinstance(opts, dict) else {})
        except ValueError:
            opts = {}
        out[str(r["backend"])] = (str(r.get("backend_name") or r["backend"]), opts)
    return out


_POINT_KEYS = ("epoch_ms", "epoch_lo_ms", "epoch_hi_ms", "metric", "metric_min", "metric_max")


def sweep_points(
    setting: str, task: str, settings: list[str], rows: list[dict[str, Any]], runs: pd.DataFrame
) -> pd.DataFrame:
    """One row per (value of `setting`, backend series, panel): what `figures_sweep.sweep` draws.

    For a task-level setting the other settings' values make the panel; for a backend option
    (``torch.compile``) the option's value is read from the backend, which draws one series without it.
    """
    options = _options(runs)
    out = []
    for r in rows:
        name, opts = options.get(r["backend"], (r["backend"], {}))
        if is_backend_option(setting, task):
            if name != setting.partition(".")[0] or setting.partition(".")[2] not in opts:
                continue
            x = value_text(opts[setting.partition(".")[2]])
            series = without_option(r["backend"], name, opts, setting)
            others = list(zip(settings, r["point"], strict=True))
        else:
            i = settings.index(setting)
            x, series = r["point"][i], r["backend"]
            others = [(s, v) for j, (s, v) in enumerate(zip(settings, r["point"], strict=True)) if j != i]
        if x == "":
            continue
        panel = ", ".join(f"{s}={v}" for s, v in others if v != "")
        out.append({"x": x, "series": series, "panel": panel, **{k: r.get(k) for k in _POINT_KEYS}})
    frame = pd.DataFrame(out, columns=["x", "series", "panel", *_POINT_KEYS])
    for k in _POINT_KEYS:
        frame[k] = pd.to_numeric(frame[k], errors="coerce").astype(float)
    return frame


def build_sweep(
    task: str,
    runs: pd.DataFrame,
    rows: list[dict[str, Any]],
    columns: list[Column],
    settings: list[str],
    backends: list[str],
    metric: str | None,
    config: dict[str, Any] | None,
    draw: Any | None = None,
) -> SweepSection | None:
    """The sweep section of a task, or None when the task has no grid.

    `draw(setting, points, positions, numeric, series, panels, out)` draws one setting's figure into the
    list `out` (the section's figures; drawn by the time the report's painter closes). None: tables only.
    """
    swept = applicable(runs, swept_settings(runs, config))
    if not swept:
        return None
    metric_col = next(c for c in columns if c.key == "metric")
    section = SweepSection(
        task=task,
        settings=settings,
        swept=swept,
        backends=backends,
        metric=metric,
        metric_better=metric_col.better or "max",
        rows=sweep_rows(rows, backends, columns),
    )
    section.glance = _glance(task, settings, section.rows)
    if draw is None:
        return section
    for setting in swept:
        points = sweep_points(setting, task, settings, rows, runs)
        if points.empty:
            continue
        values = ordered_values(setting, points["x"].tolist(), config)
        numbers = numeric_positions(values)
        positions = dict(zip(values, numbers or range(len(values)), strict=True))
        series = list(dict.fromkeys(points["series"]))
        panels = list(dict.fromkeys(points["panel"]))
        draw(setting, points, positions, numbers is not None, series, panels, section.figures)
    return section


def sweep_figure_name(task_slug: str, setting: str) -> str:
    """``digits-sweep-hidden.png``, ``moons-sweep-moons_noise.png``."""
    return f"{task_slug}-sweep-{file_safe(setting)}.png"
