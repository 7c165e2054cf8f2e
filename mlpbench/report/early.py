"""Early stopping as the report shows it: where each backend stopped, its best epoch, and whose rule stopped it.

Jobs with ``patience`` > 0 record ``epochs_run``, ``best_epoch``, ``stopped_early`` and ``restored_best``;
in native mode also ``early_stopping``, whose rule was used (the framework's own, or the runner's). Per
task row (grid point, mode and backend) the line under the table gives the medians over the seeds that
stopped early and over those that ran every epoch; the loss figures mark the median best epoch and the
median epoch of stopping (`marks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..status import Status
from .format import fmt_g
from .grid import points_of
from .tables import num


@dataclass
class StopMark:
    """What a loss figure marks for one backend: the median best epoch and, if it stopped early, where."""

    best: float | None
    stopped: float | None  # median epochs_run of the seeds that stopped early; None when none did


def _with_stopping(runs: pd.DataFrame) -> pd.DataFrame:
    """The ok jobs that used early stopping."""
    if "spec_patience" not in runs or "best_epoch" not in runs:
        return runs.iloc[0:0]
    ok = runs[(runs["status"] == Status.OK) & (num(runs, "spec_patience") > 0)]
    return ok[num(ok, "best_epoch").notna()]


def _flags(jobs: pd.DataFrame, column: str) -> pd.Series:
    """A yes/no column as booleans; missing (an older record, another mode) is no."""
    if column not in jobs:
        return pd.Series(False, index=jobs.index, dtype=bool)
    return jobs[column].map(lambda v: v is True or (isinstance(v, (int, float, np.bool_)) and v == 1)).astype(bool)


def _median(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(np.median(values)) if len(values) else None


def _epoch(value: float | None) -> str:
    return "?" if value is None else fmt_g(value)


def marks(runs: pd.DataFrame) -> dict[str, StopMark]:
    """Per backend of `runs` (one figure panel's jobs): its `StopMark`; backends without early stopping absent."""
    out = {}
    jobs = _with_stopping(runs)
    for backend, g in jobs.groupby("backend", sort=False):
        stopped = g[_flags(g, "stopped_early")]
        best = _median(num(g, "best_epoch"))
        out[str(backend)] = StopMark(best, _median(num(stopped, "epochs_run")) if len(stopped) else None)
    return out


def _describe(jobs: pd.DataFrame, epochs: Any) -> str:
    """``stopped early at epoch 42 (best 37), 3/3 seeds; best weights restored on 3/3``."""
    n = len(jobs)
    flag = _flags(jobs, "stopped_early")
    parts = []
    for part, label in ((jobs[flag], "stopped early at epoch {e}"), (jobs[~flag], "ran all {e} epochs")):
        if len(part):
            e = _epoch(_median(num(part, "epochs_run"))) if label.startswith("stopped") else epochs
            best = _epoch(_median(num(part, "best_epoch")))
            parts.append(f"{label.format(e=e)} (best {best}), {len(part)}/{n} seed{'s' * (n > 1)}")
    restored = int(_flags(jobs, "restored_best").sum())
    if restored:
        parts.append(f"best weights restored on {restored}/{n}")
    return "; ".join(parts)


def stopping_lines(runs: pd.DataFrame, rows: list[dict[str, Any]], settings: list[str]) -> list[str]:
    """One line per task row whose jobs used early stopping; medians over seeds.

    In native mode the line also says whose early stopping it was (``keras EarlyStopping``, ``runner``).
    """
    jobs = _with_stopping(runs)
    if jobs.empty:
        return []
    keys = points_of(jobs, settings)
    out = []
    for r in rows:
        at = jobs[keys == r["point"]] if settings else jobs
        mine = at[at["backend"] == r["backend"]]
        if mine.empty:
            continue
        epochs = ", ".join(sorted({fmt_g(v) for v in num(mine, "spec_epochs").dropna()})) or "?"
        label = f"{r['backend']} ({r['point_label']})" if r.get("point_label") else r["backend"]
        line = f"{label}: {_describe(mine, epochs)}"
        modes = set(mine["mode"].dropna()) if "mode" in mine else set()
        whose = sorted(set(mine["early_stopping"].dropna().astype(str))) if "early_stopping" in mine else []
        if "native" in modes and whose:
            line += f" · early stopping: {'; '.join(whose)}"
        out.append(line)
    return out


def stopping_heading(runs: pd.DataFrame) -> str:
    """``Early stopping (patience 5, min_delta 0; medians over seeds)``."""
    jobs = _with_stopping(runs)
    patience = ", ".join(sorted({fmt_g(v) for v in num(jobs, "spec_patience").dropna()}, key=float))
    delta = ", ".join(sorted({fmt_g(v) for v in num(jobs, "spec_min_delta").dropna()}, key=float)) or "0"
    return f"Early stopping (patience {patience}, min_delta {delta}; epochs are medians over the seeds):"
