"""The figures of grids and of whole runs: sweeps over a setting, loss per grid point, performance profiles.

Same conventions as `figures`: matplotlib's object API on the Agg canvas, tidy tables in, one PNG out
(the path, or None when there is nothing to draw).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from .figures import (
    _LINE_STYLES,
    _band,
    _figure,
    _log,
    _plain,
    _positive,
    _styled,
    legend_with_stops,
    mark_stops,
    save_png,
    text,
)

_MAX_COLUMNS = 4  # small multiples per figure row


def _axis(ax: Any, positions: dict[str, float], numeric: bool, log: bool, label: str) -> None:
    """The sweep's x axis: numbers on a (log) number line, categories evenly in grid order."""
    if numeric and log:
        _log(ax, "x")
    ax.xaxis.set_major_locator(FixedLocator(list(positions.values())))
    ax.xaxis.set_ticklabels([text(v) for v in positions])
    ax.xaxis.set_minor_locator(NullLocator())
    if not numeric:
        ax.set_xlim(-0.4, len(positions) - 0.6)
    ax.set_xlabel(text(label) + (" (log scale)" if numeric and log else ""))


@_styled
def sweep(
    points: pd.DataFrame,
    setting: str,
    positions: dict[str, float],
    numeric: bool,
    series: Sequence[str],
    panels: Sequence[str],
    palette: dict[str, str],
    task: str,
    metric: str,
    path: Path,
) -> Path | None:
    """Epoch time (log scale, median and its interval) and test metric (median, min–max band) against a setting.

    `points` has one row per grid point and series: ``x`` (the setting's value as text), ``series`` (the
    backend), ``panel`` (the values of the other settings, "" for a one-setting grid), ``epoch_ms`` /
    ``epoch_lo_ms`` / ``epoch_hi_ms`` and ``metric`` / ``metric_min`` / ``metric_max``. With one panel the
    two measures sit side by side; with several (a two-setting grid: one per value of the other setting),
    each panel is a column of small multiples with the time above the metric, sharing their axes.
    """
    data = points[points["x"].isin(list(positions))]
    if data.empty or not (data["epoch_ms"].notna().any() or data["metric"].notna().any()):
        return None
    log = numeric and min(positions.values()) > 0 and max(positions.values()) / min(positions.values()) > 10
    n = max(1, len(panels))
    if n == 1:
        fig, axes = _figure(10.5, 3.8, ncols=2)
        pairs = [(axes[0][0], axes[0][1])]
    else:
        ncols = min(n, _MAX_COLUMNS)
        blocks = -(-n // ncols)
        fig, axes = _figure(3.6 * ncols + 0.8, 5.8 * blocks + 0.3, ncols=ncols, nrows=2 * blocks, sharey="row")
        pairs = [(axes[2 * (i // ncols)][i % ncols], axes[2 * (i // ncols) + 1][i % ncols]) for i in range(n)]
        for j in range(n, blocks * ncols):
            axes[2 * (j // ncols)][j % ncols].set_visible(False)
            axes[2 * (j // ncols) + 1][j % ncols].set_visible(False)
    times = data["epoch_ms"].dropna()
    for (ax_t, ax_m), panel in zip(pairs, panels or [""], strict=True):
        here = data[data["panel"] == panel]
        for i, s in enumerate(series):
            mine = here[here["series"] == s].copy()
            if mine.empty:
                continue
            mine["pos"] = mine["x"].map(positions)
            mine = mine.sort_values("pos")
            width, style = _LINE_STYLES[i % len(_LINE_STYLES)]
            colour, label = palette.get(s, "#888"), text(s)
            t = mine.dropna(subset=["epoch_ms"])
            if len(t):
                ax_t.plot(t["pos"], t["epoch_ms"], color=colour, lw=width, ls=style, marker="o", ms=4, label=label)
                band = t.dropna(subset=["epoch_lo_ms", "epoch_hi_ms"])
                if len(band):
                    lo, hi = band["epoch_lo_ms"], band["epoch_hi_ms"]
                    ax_t.fill_between(band["pos"], lo, hi, color=colour, alpha=0.15, lw=0)
            m = mine.dropna(subset=["metric"])
            if len(m):
                ax_m.plot(m["pos"], m["metric"], color=colour, lw=width, ls=style, marker="o", ms=4, label=label)
                if (m["metric_max"] > m["metric_min"]).any():
                    ax_m.fill_between(m["pos"], m["metric_min"], m["metric_max"], color=colour, alpha=0.13, lw=0)
        for ax in (ax_t, ax_m):
            _axis(ax, positions, numeric, log, setting)
        if len(times) and _positive(times):
            _log(ax_t, "y")
        if n == 1:
            ax_t.set_title(f"{text(task)}: epoch time")
            ax_m.set_title(f"{text(task)}: test {text(metric)}")
        else:  # small multiples: each panel names its point, the figure what is drawn
            ax_t.set_title(text(panel), fontsize=9.5)
            ax_m.set_title(text(panel), fontsize=9.5)
        if ax_t.get_subplotspec().is_first_col():
            ax_t.set_ylabel("ms per epoch (log; band: 95% CI)")
            ax_m.set_ylabel(f"test {text(metric)} (band: min–max)")
    pairs[0][1 if n == 1 else 0].legend(loc="best")
    if n > 1:
        what = f"{text(task)}: epoch time (upper row) and test {text(metric)} (lower row) against {text(setting)}"
        fig.suptitle(what, fontsize=10.5, fontweight="bold")
    return save_png(fig, path)


@_styled
def loss_by_point(
    curves: dict[str, pd.DataFrame],
    backends: Sequence[str],
    palette: dict[str, str],
    task: str,
    path: Path,
    stops: dict[str, dict[str, Any]] | None = None,
) -> Path | None:
    """Validation loss per epoch in one small panel per grid point (median line, min–max band over seeds).

    `stops` (panel title -> backend -> `early.StopMark`) marks each backend's best epoch and where it stopped.
    """
    panels = [(title, c) for title, c in curves.items() if len(c) and c["val_loss"].notna().any()]
    if not panels:
        return None
    ncols = min(len(panels), _MAX_COLUMNS)
    nrows = -(-len(panels) // ncols)
    fig, axes = _figure(3.0 * ncols + 0.8, 2.5 * nrows + 0.5, ncols=ncols, nrows=nrows, sharex=True)
    log = all(_positive(c["val_loss"]) for _, c in panels)
    flat = list(axes.flat)
    drawn = False
    for ax, (title, c) in zip(flat, panels, strict=False):
        marks = (stops or {}).get(title) or {}
        for i, b in enumerate(backends):
            _band(ax, c[c["backend"] == b], "epoch", "val_loss", palette[b], b, i)
            if b in marks:
                drawn |= mark_stops(ax, c[c["backend"] == b], "val_loss", marks[b], palette[b])
        ax.set_title(text(title), fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log:
            _log(ax, "y")
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    legend_with_stops(flat[0], drawn)
    fig.supxlabel("epoch", fontsize=9.5)
    fig.supylabel("validation loss" + (" (log scale)" if log else ""), fontsize=9.5)
    fig.suptitle(f"{text(task)}: validation loss at each grid point", fontsize=10.5, fontweight="bold")
    return save_png(fig, path)


def _steps(ratios: np.ndarray, top: float) -> tuple[np.ndarray, np.ndarray]:
    """The step function ρ(τ) for τ from 1 to `top`: share of problems with ratio ≤ τ."""
    finite = np.sort(ratios[np.isfinite(ratios)])
    xs = np.concatenate([[1.0], finite, [top]])
    ys = np.array([(ratios <= x).mean() for x in xs])
    return xs, ys


@_styled
def performance_profile(
    profiles: dict[str, pd.DataFrame], palette: dict[str, str], path: Path, units: str = "problems"
) -> Path | None:
    """Dolan–Moré performance profiles, one panel per measure: ρ_s(τ) against τ (log scale).

    `profiles` maps a measure's title to its ratio table (problems x backends, infinite = failed).
    A curve's height at τ = 1 is the share of `units` on which the backend was the best; where it levels
    off, the share it finished at all.
    """
    shown = {title: r for title, r in profiles.items() if not r.empty and np.isfinite(r.to_numpy()).any()}
    if not shown:
        return None
    fig, axes = _figure(5.2 * len(shown) + 0.6, 3.9, ncols=len(shown))
    for ax, (title, ratios) in zip(axes[0], shown.items(), strict=True):
        finite = ratios.to_numpy()[np.isfinite(ratios.to_numpy())]
        top = max(2.0, float(finite.max()) * 1.5) if len(finite) else 2.0
        for i, b in enumerate(ratios.columns):
            xs, ys = _steps(ratios[b].to_numpy(dtype=float), top)
            width, style = _LINE_STYLES[i % len(_LINE_STYLES)]
            ax.step(xs, ys, where="post", color=palette.get(b, "#888"), lw=width, ls=style, label=text(b))
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(_tau))
        ax.set_xlim(1, top)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(text(title))
        ax.set_xlabel("τ: within this factor of the best backend (log scale)")
        ax.set_ylabel(f"share of {units}")
    axes[0][-1].legend(loc="lower right")
    return save_png(fig, path)


def _tau(value: float, _pos: Any = None) -> str:
    return _plain(value) if value >= 1 and math.isfinite(value) else ""
