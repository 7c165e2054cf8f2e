"""Native against controlled: per backend, what its own idiomatic training loop costs against the runner's.

A task that ran in both modes has ``mode`` among its point settings, so its table already keeps the
modes apart; this section pairs each backend's controlled row with its native row (at the same grid
point and machine): epoch time in each mode, the ratio native / controlled of those medians, and the
test metric with its min–max over seeds in each mode. A native fit timed as one call (scikit-learn's
``fit``) has no per-epoch times: its epoch time is the call's time / epochs, labelled "whole call".
The at-a-glance section names the biggest native overhead of the run (`biggest_overhead`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .format import DASH, fmt_g, fmt_metric, missing
from .grid import MODE, point_label
from .tables import WHOLE_CALL

CONTROLLED, NATIVE = "controlled", "native"
MODES_CAPTION = (
    "Steady-state epoch time per backend in each mode (median of the pooled epochs 2..n of every seed; bar: "
    "its bootstrap 95% interval), log scale; the factor at the right is native / controlled. A hollow "
    "marker is a whole-call timing: the fit timed as one call, divided by its epochs."
)
MODES_NOTE = (
    "controlled: the runner owns the initial weights and the batch order and times each train_epoch call; "
    "native: each framework's own idiomatic loop (its initialisation, shuffling and fit). Ratio: native / "
    "controlled of the median epoch times. Test metric: median over seeds (min–max)."
)


@dataclass
class ModePair:
    """One backend at one point (without the mode): its controlled and native task rows."""

    backend: str
    point: tuple[str, ...]
    point_label: str
    controlled: dict[str, Any] | None
    native: dict[str, Any] | None

    @property
    def ratio(self) -> float | None:
        """Native / controlled median epoch time, or None when either is missing."""
        a = (self.controlled or {}).get("epoch_ms")
        b = (self.native or {}).get("epoch_ms")
        return None if missing(a) or missing(b) or not a else float(b) / float(a)

    @property
    def whole_call(self) -> bool:
        """Whether the native epoch time is a whole call's time divided by its epochs."""
        return (self.native or {}).get("timing") == WHOLE_CALL

    @property
    def label(self) -> str:
        """``keras`` or ``keras (hidden=64)``."""
        return f"{self.backend} ({self.point_label})" if self.point_label else self.backend


@dataclass
class ModesSection:
    """A task's native vs controlled table, its notes and figure."""

    task: str
    metric: str | None
    settings: list[str]  # the point settings other than mode: the table's leading columns
    pairs: list[ModePair]
    loops: list[str] = field(default_factory=list)  # per backend: what its native loop is
    figure: Any = None  # model.Figure


def build_modes(
    task: str, runs: pd.DataFrame, rows: list[dict[str, Any]], settings: list[str], metric: str | None
) -> ModesSection | None:
    """The section of a task that ran in both modes (some backend has a row in each); None otherwise."""
    if MODE not in settings:
        return None
    i = settings.index(MODE)
    others = [s for s in settings if s != MODE]
    pairs: dict[tuple[tuple[str, ...], str], ModePair] = {}
    for r in rows:
        mode, point = r["point"][i], tuple(v for j, v in enumerate(r["point"]) if j != i)
        if mode not in (CONTROLLED, NATIVE):
            continue
        key = (point, r["backend"])
        if key not in pairs:
            pairs[key] = ModePair(r["backend"], point, point_label(others, point), None, None)
        setattr(pairs[key], mode, r)
    both = [p for p in pairs.values() if p.controlled is not None and p.native is not None]
    if not both:
        return None
    return ModesSection(task, metric, others, both, _loops(runs, [p.backend for p in both]))


def _loops(runs: pd.DataFrame, backends: list[str]) -> list[str]:
    """``numpy: generic: build / train_epoch, ...``: what each backend's native mode runs, as it says."""
    if "native_loop" not in runs or "mode" not in runs:
        return []
    out = []
    native = runs[runs["mode"] == NATIVE]
    for b in dict.fromkeys(backends):
        said = native.loc[native["backend"] == b, "native_loop"].dropna().astype(str).unique().tolist()
        if said:
            out.append(f"{b}: {'; '.join(said)}")
    return out


def epoch_text(row: dict[str, Any] | None) -> str:
    """A mode's epoch ms with its interval, or "whole call" for a fit timed as one call."""
    if row is None or missing(row.get("epoch_ms")):
        return DASH
    value = fmt_g(row["epoch_ms"])
    if row.get("timing") == WHOLE_CALL:
        return f"{value} (whole call)"
    lo, hi = row.get("epoch_lo_ms"), row.get("epoch_hi_ms")
    return f"{value} (CI {fmt_g(lo)}–{fmt_g(hi)})" if not missing(lo) and not missing(hi) else value


def metric_text(row: dict[str, Any] | None) -> str:
    """A mode's test metric, median over seeds, with the seeds' min–max."""
    if row is None or missing(row.get("metric")):
        return DASH
    lo, hi = row.get("metric_min"), row.get("metric_max")
    spread = "" if missing(lo) or missing(hi) or lo == hi else f" ({fmt_metric(lo)}–{fmt_metric(hi)})"
    return fmt_metric(row["metric"]) + spread


def ratio_text(pair: ModePair) -> str:
    """``11.8×`` (native / controlled)."""
    r = pair.ratio
    return DASH if r is None else f"{fmt_g(r)}×"


def headers(section: ModesSection) -> list[str]:
    """The table's column headers."""
    metric = f"test {section.metric or 'metric'}"
    return [
        *section.settings,
        "backend",
        "controlled epoch ms",
        "native epoch ms",
        "native / controlled",
        f"controlled {metric}",
        f"native {metric}",
    ]


def cells(pair: ModePair) -> list[str]:
    """The display strings of one pair, in `headers` order."""
    return [
        *pair.point,
        pair.backend,
        epoch_text(pair.controlled),
        epoch_text(pair.native),
        ratio_text(pair),
        metric_text(pair.controlled),
        metric_text(pair.native),
    ]


def biggest_overhead(sections: list[ModesSection]) -> str | None:
    """The at-a-glance line: the largest native / controlled epoch-time ratio of the run, and where."""
    found = [(p.ratio, p, s.task) for s in sections for p in s.pairs if p.ratio is not None]
    if not found:
        return None
    ratio, pair, task = max(found, key=lambda x: x[0])
    where = f"{task} ({pair.point_label})" if pair.point_label else task
    call = " (native timed as one whole call)" if pair.whole_call else ""
    if ratio >= 1.1:
        return f"{pair.backend} native epochs are {fmt_g(ratio)}× its controlled ones on {where}{call}"
    return (
        f"native epochs are at most {fmt_g(ratio)}× the controlled ones ({pair.backend} on {where}{call}): "
        "no backend's own loop costs more than 10% over the runner's"
    )
