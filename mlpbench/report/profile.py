"""Across tasks: Dolan–Moré performance profiles of time to target and of epoch time, and their one-line summary.

A *problem* is a task at one grid point (and mode). Per problem and backend the cost is the median over
seeds, where a seed that never reached the target (or a job that did not end ok) costs infinity, so a
backend that fails on most seeds of a problem fails the problem, as AlgoPerf scores it. The profile of a
backend, ρ(τ), is the share of problems on which it was within a factor τ of the best backend.

A native fit timed as one call (scikit-learn's ``fit``, timing "whole_call") has an epoch time (the
call's time / epochs) but no time to target, which needs per-epoch validation: the time-to-target
profile leaves out the problems where some backend has none, and says how many.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..stats import performance_ratios, steady_epoch_times
from ..status import Status
from .grid import point_label, points_of

TTT, EPOCH = "time to target", "epoch time"
PROFILE_FIGURE = "performance-profile.png"
PROFILE_CAPTION = (
    "Dolan–Moré performance profiles: for each backend, the share of problems (a task at one grid point) "
    "on which its median cost was within a factor τ of the best backend's. At τ = 1: how often it was the "
    "best; where the curve levels off: how often it finished at all. Time to target counts a seed that "
    "never reached the target as infinitely slow (as AlgoPerf does)."
)


@dataclass
class Profile:
    """The ratio tables (problems x backends) of both measures and their summary lines."""

    problems: list[str]
    unit: str  # "tasks" or "problems"
    ratios: dict[str, pd.DataFrame]
    lines: list[str] = field(default_factory=list)
    figure: Any = None  # model.Figure


def _median_with_failures(values: list[float]) -> float:
    return float(np.median(values)) if values else math.inf


def _whole_call(jobs: pd.DataFrame) -> bool:
    """Whether every ok job of `jobs` was timed as one whole call (no per-epoch validation, no time to target)."""
    ok = jobs[jobs["status"] == Status.OK]
    return bool(len(ok)) and "timing" in ok and bool((ok["timing"] == "whole_call").all())


def problem_costs(
    runs: pd.DataFrame, curves: pd.DataFrame, backends: list[str], points: dict[str, list[str]]
) -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
    """Per problem (row) and backend (column): median time to target and "epoch ms" (infinite: failed).

    `points` maps each task to its point settings (`grid.point_settings`). A time to target that was not
    measured (whole-call timing) is NaN; an epoch time without timed epochs is the jobs' own median.
    """
    names, ttt_rows, epoch_rows = [], [], []
    for task, settings in points.items():
        t_runs = runs[runs["task"] == task]
        keys = points_of(t_runs, settings)
        for point in dict.fromkeys(keys):
            at = t_runs[keys == point]
            label = point_label(settings, point)
            names.append(f"{task} ({label})" if label else task)
            ttt, epoch = {}, {}
            for b in backends:
                jobs = at[at["backend"] == b]
                ok = jobs["status"] == Status.OK
                reached = pd.to_numeric(jobs["time_to_target_s"], errors="coerce")
                ttt[b] = _median_with_failures(
                    [t if k and t == t else math.inf for t, k in zip(reached, ok, strict=True)]
                )
                if _whole_call(jobs):
                    ttt[b] = math.nan
                ok_ids = set(jobs.loc[ok, "id"])
                times = steady_epoch_times(curves[curves["id"].isin(ok_ids)]) if ok_ids else pd.Series(dtype=float)
                if not len(times) and ok_ids:
                    times = pd.to_numeric(jobs.loc[ok, "epoch_time_s"], errors="coerce").dropna()
                epoch[b] = float(times.median()) if len(times) else math.inf
            ttt_rows.append(ttt)
            epoch_rows.append(epoch)
    return names, pd.DataFrame(ttt_rows, index=names), pd.DataFrame(epoch_rows, index=names)


def summary_line(measure: str, ratios: pd.DataFrame, unit: str) -> str:
    """``epoch time: numpy within 1.0× of the best on 5/5 tasks; torch within 1.0× on 0/5, 2× on 1/5, ...``.

    Per backend: on how many problems it was the best (ratio 1), within 2×, and the factor within which
    it finished every problem it finished at all; then how many it failed.
    """
    n = len(ratios)
    parts = []
    order = sorted(ratios.columns, key=lambda b: (-(ratios[b] <= 1.0).sum(), -(ratios[b] <= 2.0).sum()))
    for i, b in enumerate(order):
        r = ratios[b].to_numpy(dtype=float)
        finite = r[np.isfinite(r)]
        best, double = int((r <= 1.0).sum()), int((r <= 2.0).sum())
        text = f"{b} within 1.0× of the best on {best}/{n} {unit}" if i == 0 else f"{b} within 1.0× on {best}/{n}"
        if double != best:
            text += f", 2× on {double}/{n}"
        if len(finite) > double:
            text += f", {finite.max():.2g}× on {len(finite)}/{n}"
        if len(finite) < n:
            text += f", failed on {n - len(finite)}/{n}"
        parts.append(text)
    return f"{measure}: " + "; ".join(parts)


def build_profile(
    runs: pd.DataFrame, curves: pd.DataFrame, backends: list[str], points: dict[str, list[str]]
) -> Profile | None:
    """The performance profiles of a run with two or more problems and backends; None otherwise."""
    if len(backends) < 2:
        return None
    names, ttt, epoch = problem_costs(runs, curves, backends, points)
    if len(names) < 2:
        return None
    unit = "tasks" if len(names) == len(points) else "problems"
    unmeasured = ttt.isna().any(axis=1)
    ratios = {TTT: performance_ratios(ttt[~unmeasured]), EPOCH: performance_ratios(epoch)}
    out = Profile(names, unit, ratios)
    left_out = f" ({int(unmeasured.sum())} left out: a whole-call timing measured no time to target)"
    for measure, r in ratios.items():
        note = left_out if measure == TTT and unmeasured.any() else ""
        if r.empty:
            out.lines.append(f"{measure}: not measured on any of the {len(names)} {unit}{note}")
        elif np.isfinite(r.to_numpy()).any():
            out.lines.append(summary_line(measure, r, unit) + note)
        else:
            out.lines.append(f"{measure}: no backend finished any of the {len(r)} {unit}{note}")
    return out
