"""The figures of ``compare`` and ``history``: ratios with their intervals, and measures across runs.

Same conventions as `figures`: matplotlib's object API on the Agg canvas, one PNG per call (the path, or
None when there is nothing to draw), no pyplot state.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .figures import PALETTE, _figure, _log, _styled, save_png, text

if TYPE_CHECKING:
    from ..compare import Comparison

_RATIO_MEASURES = ("epoch time", "time to target", "peak memory")
_UP, _DOWN, _NONE = "#D55E00", "#009E73", "#7f7f7f"
_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))


@_styled
def forest(c: Comparison, path: Path) -> Path | None:
    """B / A per group (rows) with its 95% interval, one panel per ratio measure; a line at 1 (no change).

    Every panel has the same rows, one per matched group, so a group reads across the panels.
    """
    groups = [g for g in c.groups if g.measures]
    panels = []
    for name in _RATIO_MEASURES:
        found = {}
        for i, g in enumerate(groups):
            m = g.measure(name)
            if m is not None and math.isfinite(m.change.estimate) and m.change.estimate > 0:
                found[i] = m
        if found:
            panels.append((name, found))
    if not panels:
        return None
    ys = np.arange(len(groups))[::-1]
    fig, axes = _figure(4.4 * len(panels) + 2.8, 1.3 + 0.3 * len(groups), ncols=len(panels), sharey=True)
    for k, (ax, (name, found)) in enumerate(zip(axes[0], panels, strict=True)):
        seen = [1.0]
        for i, m in found.items():
            ch = m.change
            colour = _UP if ch.direction > 0 else _DOWN if ch.direction < 0 else _NONE
            if math.isfinite(ch.low) and math.isfinite(ch.high) and ch.low > 0:
                ax.plot([ch.low, ch.high], [ys[i], ys[i]], color=colour, lw=2.2, solid_capstyle="butt")
                seen += [ch.low, ch.high]
            ax.plot([ch.estimate], [ys[i]], "o", color=colour, ms=5, zorder=3)
            seen.append(ch.estimate)
        ax.axvline(1.0, color="black", lw=0.9, zorder=1)
        _log(ax, "x")
        ax.set_xlim(min(min(seen), 0.8) / 1.1, max(max(seen), 1.25) * 1.1)
        if k == 0:
            ax.set_yticks(ys, [text(g.label) for g in groups])
        ax.set_ylim(-0.7, len(groups) - 0.3)
        ax.grid(True, axis="y", alpha=0)
        ax.set_title(f"{text(name)}: B / A")
        ax.set_xlabel("ratio of the medians (log scale; bar: 95% CI)")
    fig.suptitle(f"{text(c.a.name)} → {text(c.b.name)}", fontsize=10.5, fontweight="bold")
    return save_png(fig, path)


@_styled
def history(
    task: str,
    runs: list[str],
    series: dict[str, list[dict[str, Any]]],
    metric: str,
    path: Path,
) -> Path | None:
    """Epoch time (median, 95% interval) and test metric (median, min–max) of each series across runs.

    `runs` are the x tick labels (commit and date, in the order the runs were made); `series` maps a
    backend (and grid point) to one entry per run: ``epoch_ms``, ``epoch_lo_ms``, ``epoch_hi_ms``,
    ``metric``, ``metric_min``, ``metric_max`` (NaN where the run has no such job).
    """
    if not series or len(runs) < 1:
        return None
    fig, axes = _figure(10.5, 4.2, ncols=2)
    ax_t, ax_m = axes[0]
    xs = np.arange(len(runs))
    positive = []
    backends = list(dict.fromkeys(name.split(" · ")[0] for name in series))
    count: dict[str, int] = {}
    for name, points in series.items():
        backend = name.split(" · ")[0]  # one colour per backend, one line style per grid point
        colour = PALETTE[backends.index(backend) % len(PALETTE)]
        style = _STYLES[count.get(backend, 0) % len(_STYLES)]
        count[backend] = count.get(backend, 0) + 1
        t = np.array([p.get("epoch_ms", math.nan) for p in points], dtype=float)
        lo = np.array([p.get("epoch_lo_ms", math.nan) for p in points], dtype=float)
        hi = np.array([p.get("epoch_hi_ms", math.nan) for p in points], dtype=float)
        ok = np.isfinite(t)
        if ok.any():
            ax_t.plot(xs[ok], t[ok], marker="o", ls=style, color=colour, ms=4, lw=1.6, label=text(name))
            bars = ok & np.isfinite(lo) & np.isfinite(hi)
            ax_t.vlines(xs[bars], lo[bars], hi[bars], color=colour, lw=1.2, alpha=0.7)
            positive.append(bool((t[ok] > 0).all()))
        m = np.array([p.get("metric", math.nan) for p in points], dtype=float)
        mlo = np.array([p.get("metric_min", math.nan) for p in points], dtype=float)
        mhi = np.array([p.get("metric_max", math.nan) for p in points], dtype=float)
        ok = np.isfinite(m)
        if ok.any():
            ax_m.plot(xs[ok], m[ok], marker="o", ls=style, color=colour, ms=4, lw=1.6, label=text(name))
            bars = ok & np.isfinite(mlo) & np.isfinite(mhi)
            ax_m.vlines(xs[bars], mlo[bars], mhi[bars], color=colour, lw=1.2, alpha=0.7)
    if positive and all(positive):
        _log(ax_t, "y")
    for ax in (ax_t, ax_m):
        ax.set_xticks(xs, [text(r) for r in runs], fontsize=8)
        ax.set_xlim(-0.4, len(runs) - 0.6)
        ax.set_xlabel("run (commit, date; in the order made)")
    ax_t.set_title(f"{text(task)}: epoch time across runs")
    ax_t.set_ylabel("ms per epoch (bar: 95% CI)")
    ax_m.set_title(f"{text(task)}: test {text(metric)} across runs")
    ax_m.set_ylabel(f"test {text(metric)} (bar: min–max over seeds)")
    if len(series) <= 10:
        ax_m.legend(loc="best")
    else:
        fig.legend(*ax_t.get_legend_handles_labels(), loc="outside right upper", fontsize=7)
    return save_png(fig, path)
