"""The reference models of a task (references.json): their test metric on the very same splits as the backends.

A linear model and gradient boosting, scored by `mlpbench.references` after the run: references, not
backends. They are not timed and never ranked with the backends; their table says whether the MLPs'
numbers are sensible (an MLP far below ridge regression is a finding). Per model (and task parameters,
when a grid swept them): the median of the test metric over seeds and its min–max range. A row that
failed (``error``) is shown briefly under the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import HIGHER_IS_BETTER
from ..references import REFERENCES_FILE
from .format import DASH, fmt_metric, missing

REFERENCES_NOTE = (
    "Reference models, not backends, not timed: a linear model and gradient boosting (scikit-learn, one "
    "thread) trained on each seed's training part and scored on the very same test part as the backends. "
    "Median over seeds (min–max)."
)
_ERROR_CHARS = 120


@dataclass
class ReferenceRow:
    """One reference model (at one set of task parameters): its test metric over the seeds."""

    model: str
    params: str  # the task parameters as text ("" when the task ran with one set)
    median: float | None
    low: float | None
    high: float | None
    seeds: list[int]

    @property
    def detail(self) -> str:
        """The min–max range of the seeds, or "" for one seed (or one value)."""
        if missing(self.low) or missing(self.high) or self.low == self.high:
            return ""
        return f"{fmt_metric(self.low)}–{fmt_metric(self.high)}"


@dataclass
class ReferenceTable:
    """A task's reference rows, what failed, and the backends' best median for comparison."""

    task: str
    metric: str | None
    rows: list[ReferenceRow]
    errors: list[str] = field(default_factory=list)
    by_params: bool = False  # a leading "parameters" column: a grid swept the task's parameters
    comparison: str = ""

    @property
    def header(self) -> str:
        """The metric column's header."""
        return f"test {self.metric or 'metric'}"


def read_references(folder: Path) -> list[dict[str, Any]] | None:
    """references.json as a list of rows, or None when the run has none (``--no-references``)."""
    path = folder / REFERENCES_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else None


def _params_text(params: Any) -> str:
    if not isinstance(params, dict) or not params:
        return ""
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if missing(float(value)) else float(value)


def _errors(rows: list[dict[str, Any]]) -> list[str]:
    """``seeds 0, 1: ValueError: ...`` once per distinct message, each cut to a line."""
    seeds: dict[str, list[str]] = {}
    for r in rows:
        text = " ".join(str(r.get("error")).split())
        if len(text) > _ERROR_CHARS:
            text = text[: _ERROR_CHARS - 1] + "…"
        params = _params_text(r.get("task_params"))
        key = f"{params}: {text}" if params else text
        seeds.setdefault(key, []).append(str(r.get("seed")))
    return [f"seed{'s' * (len(s) > 1)} {', '.join(s)} ({key})" for key, s in seeds.items()]


def reference_table(
    data: list[dict[str, Any]], task: str, metric: str | None, backend_rows: list[dict[str, Any]]
) -> ReferenceTable | None:
    """The task's reference table from references.json's rows; None when it has none for the task."""
    mine = [r for r in data if r.get("task") == task]
    if not mine:
        return None
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in mine:
        if "error" not in r:
            groups.setdefault((_params_text(r.get("task_params")), str(r.get("model"))), []).append(r)
    rows = []
    for (params, model), found in groups.items():
        values = [v for v in (_number(r.get(f"test_{metric}")) for r in found) if v is not None]
        seeds = sorted({int(r["seed"]) for r in found if isinstance(r.get("seed"), int)})
        if values:
            rows.append(ReferenceRow(model, params, float(np.median(values)), min(values), max(values), seeds))
        else:
            rows.append(ReferenceRow(model, params, None, None, None, seeds))
    table = ReferenceTable(task, metric, rows, _errors([r for r in mine if "error" in r]))
    table.by_params = len({r.params for r in rows}) > 1
    table.comparison = _comparison(metric, backend_rows)
    return table


def _comparison(metric: str | None, rows: list[dict[str, Any]]) -> str:
    """``For comparison, the backends' best median test r2: 0.3884 (sklearn, mode=native).``"""
    scored = [r for r in rows if not missing(r.get("metric"))]
    if not scored or not metric:
        return ""
    pick = max if HIGHER_IS_BETTER.get(metric, True) else min
    best = pick(scored, key=lambda r: float(r["metric"]))
    where = ", ".join(x for x in (best["backend"], best.get("point_label") or "") if x)
    return f"For comparison, the backends' best median test {metric}: {fmt_metric(best['metric'])} ({where})."


def cells(table: ReferenceTable, row: ReferenceRow) -> list[str]:
    """The display strings of one row: [parameters], model, test metric (with range), seeds."""
    value = fmt_metric(row.median) if row.median is not None else DASH
    shown = f"{value} ({row.detail})" if row.detail else value
    return ([row.params or DASH] if table.by_params else []) + [row.model, shown, str(len(row.seeds))]


def headers(table: ReferenceTable) -> list[str]:
    """The table's column headers."""
    return (["parameters"] if table.by_params else []) + ["reference model", table.header, "seeds"]
