"""The task tables: their columns, one row of numbers per backend (and grid point), and which are best.

A gridded task's rows are grouped by grid point (and mode, when a task ran in more than one): each
group is ranked on its own, so the best backend at hidden=16 is never compared with one at hidden=256.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..metrics import HIGHER_IS_BETTER
from ..stats import (
    CONFIDENCE,
    EPOCH_MS,
    EPOCH_MS_DEFINITION,
    MIN_SAMPLES,
    epoch_time_interval,
    iqr,
    median,
    median_interval,
    steady_epoch_times,
)
from ..status import Status
from .format import DASH, fmt_g, fmt_int, fmt_metric, missing
from .grid import point_label, points_of


def num(frame: pd.DataFrame, column: str) -> pd.Series:
    """A numeric column, or NaNs when the column is absent (e.g. every job failed)."""
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


@dataclass
class Column:
    """One column of a task table: where its value lives in a row, how to show it, which way is better."""

    key: str
    header: str
    better: str | None = None  # "max", "min" or None (not ranked)
    fmt: Callable[[Any], str] = fmt_g
    detail: Callable[[dict[str, Any]], str] | None = None  # small print after the value (range, CI, ...)
    tip: str = ""
    interval: tuple[str, str] | None = None  # row keys of the value's confidence interval: ties are statistical


_PCT = f"{100 * CONFIDENCE:g}%"


def _range_detail(row: dict[str, Any]) -> str:
    """The metric's bootstrap interval from MIN_SAMPLES seeds on, else the min–max range of the seeds."""
    lo, hi = row.get("metric_lo"), row.get("metric_hi")
    if not missing(lo) and not missing(hi):
        return f"{_PCT} CI {fmt_metric(lo)}{DASH}{fmt_metric(hi)}"
    lo, hi = row.get("metric_min"), row.get("metric_max")
    if missing(lo) or missing(hi) or lo == hi:
        return ""
    return f"{fmt_metric(lo)}{DASH}{fmt_metric(hi)}"


WHOLE_CALL = "whole_call"  # a native fit timed as one call: its epoch time is the call's time / epochs
WHOLE_CALL_NOTE = "whole call: fit timed as one call, epoch = total / epochs"


def _epoch_detail(row: dict[str, Any]) -> str:
    """The bootstrap interval of the median epoch and the coefficient of variation of the epochs."""
    parts = [WHOLE_CALL_NOTE] if row.get("timing") == WHOLE_CALL else []
    lo, hi, cv = row.get("epoch_lo_ms"), row.get("epoch_hi_ms"), row.get("epoch_cv")
    if not missing(lo) and not missing(hi):
        parts.append(f"CI {fmt_g(lo)}{DASH}{fmt_g(hi)}")
    if not missing(cv):
        parts.append(f"CV {100 * cv:.2g}%")
    return " · ".join(parts)


def _peak_detail(row: dict[str, Any]) -> str:
    pct = row.get("gflops_pct")
    return "" if missing(pct) else f"{pct:.2g}% of peak"


def _target_detail(row: dict[str, Any]) -> str:
    reached, n = row.get("ttt_reached", 0), row.get("n_ok", 0)
    if row.get("timing") == WHOLE_CALL and not reached:
        return "not measured: whole-call timing"
    every = row.get("eval_every", 1)
    read = f"read every {every} epochs" if reached and every > 1 else ""
    if n and reached < n:
        seeds = f"{reached}/{n} seeds" if reached else f"not reached by {n} seed{'s' * (n > 1)}"
        return f"{seeds}, {read}" if read else seeds
    return read


def _fmt_loss(v: Any) -> str:
    return fmt_g(v, 4)


_TIPS = {
    "metric": f"median over seeds; its bootstrap {_PCT} interval from {MIN_SAMPLES} seeds on, else the min–max range",
    "epoch_ms": f"training time of one epoch, {EPOCH_MS_DEFINITION}; bootstrap {_PCT} interval of that median and "
    "coefficient of variation of the epochs after it; overlapping intervals are ties",
    "overhead_ms": "first epoch minus the steady-state epoch (graph building, compilation, warm-up), median",
    "train_s": "all epochs, training only (evaluation not timed), median",
    "ttt_s": "training time until the validation metric first met the task's target, median over seeds that did",
    "throughput": "test-set prediction, best of 3, median",
    "gflops": "achieved training throughput: analytic FLOPs of forward + backward per epoch / steady-state "
    "epoch time, median; % of the machine's measured matmul peak below it",
    "peak_mb": "peak resident memory of the worker during the job",
    "jobs": "jobs by status",
}


def task_columns(metric: str | None, loss_name: str | None) -> list[Column]:
    """The columns of every task table."""
    better = "max" if HIGHER_IS_BETTER.get(metric or "", True) else "min"
    last = f"last epoch{f' ({loss_name})' if loss_name else ''}, median"
    return [
        Column("metric", f"test {metric or 'metric'}", better, fmt_metric, _range_detail, _TIPS["metric"]),
        Column("train_loss", "final train loss", "min", _fmt_loss, tip=last),
        Column("val_loss", "final val loss", "min", _fmt_loss, tip=last),
        Column("epoch_ms", EPOCH_MS, "min", fmt_g, _epoch_detail, _TIPS["epoch_ms"], ("epoch_lo_ms", "epoch_hi_ms")),
        Column("overhead_ms", "1st-epoch overhead ms", "min", fmt_g, tip=_TIPS["overhead_ms"]),
        Column("train_s", "train time s", "min", fmt_g, tip=_TIPS["train_s"]),
        Column("ttt_s", "time to target s", "min", fmt_g, _target_detail, _TIPS["ttt_s"]),
        Column("throughput", "predict samples/s", "max", fmt_int, tip=_TIPS["throughput"]),
        Column("gflops", "train GFLOP/s", "max", fmt_g, _peak_detail, _TIPS["gflops"]),
        Column("peak_mb", "peak memory MB", "min", fmt_int, tip=_TIPS["peak_mb"]),
        Column("jobs", "jobs", None, str, tip=_TIPS["jobs"]),
    ]


#: How to read the task tables, shown once per report.
COLUMN_NOTES = [
    (
        "test metric",
        f"the task's headline metric on the test set: median over seeds, with its bootstrap {_PCT} confidence "
        f"interval when there are at least {MIN_SAMPLES} seeds (else the min–max range of the seeds)",
    ),
    (
        "final train / val loss",
        "the loss after the last epoch, computed by mlpbench from each backend's predictions (never the "
        "framework's running average); median over seeds",
    ),
    (
        EPOCH_MS,
        f"{EPOCH_MS_DEFINITION} (training time of one epoch), with the bootstrap {_PCT} confidence interval of "
        "that median and the coefficient of variation (CV) of the epochs: a noisy measurement shows a wide "
        "interval and a high CV. The lowest median is best, and so is every backend whose interval overlaps "
        "its interval: a tie is statistical, not a matter of rounding. A native fit timed as one call "
        "(scikit-learn's fit) is marked “whole call”: its time divided by its epochs, first epoch included, "
        "without an interval",
    ),
    ("1st-epoch overhead ms", "first epoch minus the steady-state epoch: graph building, compilation, warm-up"),
    ("train time s", "all epochs, training only: evaluation between epochs is not timed"),
    (
        "time to target s",
        "training time until the validation metric first met the task's target; the median over the seeds "
        "that reached it, with how many did when not all. It is read where the runner evaluated: after every "
        "epoch, or every k epochs in a run of more than 100 (ModelSpec.eval_every), and then says so",
    ),
    ("predict samples/s", "test-set prediction throughput, best of 3 calls"),
    (
        "train GFLOP/s",
        "analytic FLOPs of training (forward + backward matmuls) per epoch divided by the steady-state epoch "
        "time; the percentage compares it with the machine's measured float32 matmul peak",
    ),
    ("peak memory MB", "peak resident memory of the worker process during the job (includes the framework)"),
    ("jobs", "jobs by status; anything but ok is explained under “Jobs that did not finish”"),
]

_STATUS_ORDER = list(Status)


def status_rank(status: Any) -> int:
    """Where a status sorts: ok first, then the order of `Status`; anything unknown last."""
    return _STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER)


def status_counts(statuses: pd.Series) -> str:
    """Jobs by status, e.g. ``2 ok · 1 error``."""
    counts = statuses.fillna("?").value_counts()
    return " · ".join(f"{counts[k]} {k}" for k in sorted(counts.index, key=status_rank))


def task_metric(runs: pd.DataFrame) -> str | None:
    """The task's headline metric: its recorded target metric, else accuracy or r2, whichever was measured."""
    if "target_metric" in runs:
        named = runs["target_metric"].dropna()
        if len(named):
            return str(named.iloc[0])
    for name in ("accuracy", "r2"):
        if f"test_{name}" in runs and runs[f"test_{name}"].notna().any():
            return name
    tests = [c[5:] for c in runs.columns if c.startswith("test_") and runs[c].notna().any()]
    return tests[0] if tests else None


def _backend_row(backend: str, jobs: pd.DataFrame, curves: pd.DataFrame, metric: str | None) -> dict[str, Any]:
    ok = jobs[jobs["status"] == Status.OK]
    c = curves[curves["id"].isin(ok["id"])] if len(ok) else curves.iloc[0:0]
    last = c.sort_values("epoch").groupby("id").tail(1) if len(c) else c
    steady_ms = steady_epoch_times(c) * 1000
    values = num(ok, f"test_{metric}") if metric else pd.Series(dtype=float)
    ttt = num(ok, "time_to_target_s")
    every = num(ok, "eval_every_epochs").dropna()
    quality = median_interval(values)
    epoch = epoch_time_interval(c, fallback=num(ok, "epoch_time_s")).scaled(1000)
    timings = ok["timing"].dropna().astype(str).unique().tolist() if "timing" in ok else []
    return {
        "backend": backend,
        "timing": WHOLE_CALL if WHOLE_CALL in timings else (timings[0] if timings else None),
        "n_ok": len(ok),
        "n_jobs": len(jobs),
        "metric": quality.median,
        "metric_lo": quality.low,
        "metric_hi": quality.high,
        "metric_min": values.min(),
        "metric_max": values.max(),
        "train_loss": median(num(last, "train_loss")),
        "val_loss": median(num(last, "val_loss")),
        "epoch_ms": epoch.median,
        "epoch_lo_ms": epoch.low,
        "epoch_hi_ms": epoch.high,
        "epoch_cv": epoch.cv,
        "epoch_iqr_ms": iqr(steady_ms) if len(steady_ms) > 1 else median(num(ok, "epoch_time_iqr_s")) * 1000,
        "overhead_ms": median(num(ok, "first_epoch_s") - num(ok, "epoch_time_s")) * 1000,
        "train_s": median(num(ok, "train_time_s")),
        "ttt_s": median(ttt),
        "ttt_reached": int(ttt.notna().sum()),
        "eval_every": int(every.max()) if len(every) else 1,  # the time to target's resolution, in epochs
        "throughput": median(num(ok, "predict_throughput")),
        "peak_mb": median(num(ok, "peak_rss_mb")),
        "gflops": median(num(ok, "train_gflops")),
        "jobs": status_counts(jobs["status"]),
    }


def task_rows(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    backends: list[str],
    peak_of: Callable[[int | None], float | None] | None = None,
    settings: list[str] | None = None,
    points: list[tuple[str, ...]] | None = None,
) -> list[dict[str, Any]]:
    """One row of numbers per backend for one task, or per grid point and backend (runs restricted to the task).

    `settings` are the columns that tell the task's grid points apart (`grid.point_settings`) and
    `points` their values in display order; each row then carries ``point`` (a tuple of value texts) and
    ``point_label``. Without settings, one row per backend, as for a run without a grid. `peak_of` gives
    the machine's matmul peak for a thread count (`env.peak_gflops`): a row's share of the peak is taken
    against the peak of its own jobs' thread count (``threads``, None if they differ).
    """
    rows = []
    metric = task_metric(runs)
    settings = settings or []
    keys = points_of(runs, settings)
    if points is None:
        points = list(dict.fromkeys(keys))
    for point in points:
        at = runs[keys == point] if settings else runs
        for b in backends:
            jobs = at[at["backend"] == b]
            if jobs.empty:
                continue
            row = _backend_row(b, jobs, curves, metric)
            row["point"], row["point_label"] = point, point_label(settings, point)
            counts = jobs["threads"].dropna().unique() if "threads" in jobs else []
            row["threads"] = int(counts[0]) if len(counts) == 1 else None
            peak = peak_of(row["threads"]) if peak_of else None
            if peak and not missing(row["gflops"]):
                row["gflops_pct"] = 100.0 * row["gflops"] / peak
            rows.append(row)
    return rows


def mark_best(rows: list[dict[str, Any]], columns: list[Column]) -> None:
    """Set each row's ``best`` (the keys of the columns it is best in), ranking each grid point on its own."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r.get("point", ()), []).append(r)
        r["best"] = set()
    for group in groups.values():
        for c in columns:
            winners = best_backends(group, c)
            for r in group:
                if r["backend"] in winners:
                    r["best"].add(c.key)


def _interval(row: dict[str, Any], column: Column) -> tuple[float, float] | None:
    """The row's interval as the reader sees it: bounds rounded as the cell shows them (``fmt_g``)."""
    if column.interval is None:
        return None
    lo, hi = (row.get(k) for k in column.interval)
    if missing(lo) or missing(hi):
        return None
    return float(fmt_g(lo).replace(",", "")), float(fmt_g(hi).replace(",", ""))


def best_backends(rows: list[dict[str, Any]], column: Column) -> set[str]:
    """Backends holding the best value of `column` (ties included; nothing when fewer than two have a value).

    Values are compared as displayed, so two backends that both show 1.0000 are both best. For time to
    target, a backend that reached the target on more seeds beats a faster one that reached it on fewer.
    A column with a confidence interval (epoch ms) ties statistically: the backend with the best median
    is best, and so is every backend whose interval overlaps its interval. Intervals too are compared as
    displayed: two that touch on the page (0.13–0.163 and 0.163–0.228) are a tie, never a contradiction.
    """
    if column.better is None:
        return set()
    have = [r for r in rows if not missing(r.get(column.key))]
    if len(have) < 2:
        return set()
    if column.key == "ttt_s":
        share = {r["backend"]: r["ttt_reached"] / max(r["n_ok"], 1) for r in have}
        top = max(share.values())
        have = [r for r in have if share[r["backend"]] == top]
    pick = max if column.better == "max" else min
    leader = pick(have, key=lambda r: float(r[column.key]))
    shown = column.fmt(leader[column.key])
    winners = {r["backend"] for r in have if column.fmt(r[column.key]) == shown}
    lead = _interval(leader, column)
    if lead is not None:
        for r in have:
            other = _interval(r, column)
            if other is not None and other[0] <= lead[1] and lead[0] <= other[1]:
                winners.add(r["backend"])
    return winners


def leader(rows: list[dict[str, Any]], column: Column) -> str | None:
    """The one backend with the best median of `column` among `rows` (first in row order on equal values)."""
    have = [r for r in rows if not missing(r.get(column.key))]
    if not have:
        return None
    pick = max if column.better == "max" else min
    return str(pick(have, key=lambda r: float(r[column.key]))["backend"])
