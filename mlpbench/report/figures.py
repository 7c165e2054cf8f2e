"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no display, no pyplot state).

Each function takes tidy tables (the ``curves`` of ok jobs, or a per-backend mapping) and
writes one PNG; it returns the path, or None when there is nothing to draw.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ..files import write_atomic

DPI = 100
# Colour-blind-safe palette (Okabe-Ito), then matplotlib's tab10 for more backends.
_OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
PALETTE = _OKABE_ITO + _TAB10
_STYLE = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "legend.fontsize": 8.5,
    "legend.frameon": False,
}


def colours(backends: Sequence[str]) -> dict[str, str]:
    """One stable colour per backend label, in the given order."""
    return {b: PALETTE[i % len(PALETTE)] for i, b in enumerate(backends)}


def text(label: Any) -> str:
    """A string safe for matplotlib text: `$` would start mathtext."""
    return str(label).replace("$", r"\$")


def _styled(draw: Callable[..., Path | None]) -> Callable[..., Path | None]:
    """Apply the report's style while `draw` creates its artists (rc settings are read at creation)."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Path | None:
        with matplotlib.rc_context(_STYLE):
            return draw(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1, **kw: Any) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def save_png(fig: Figure, path: Path) -> Path:
    """Write `fig` as a PNG, atomically; no "Software" stamp, so the same results render to the same bytes.

    The canvas prints directly: ``Figure.savefig`` draws a figure with a layout engine twice (a dry
    run, then the real one), which doubles the cost of the report's figures for the same pixels.
    """
    buffer = io.BytesIO()
    fig.canvas.print_png(buffer, metadata={"Software": None})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())
    return path


# Backends trained under controlled mode often draw the very same curve: the first is drawn widest and
# solid, later ones narrower and dashed on top of it, so coinciding lines all stay visible.
_LINE_STYLES = ((2.8, "-"), (2.0, (0, (5, 2))), (1.4, (0, (2, 1.5))), (1.1, (0, (6, 2, 1, 2))))


def _band(ax: Any, curves: pd.DataFrame, x: str, y: str, colour: str, label: str, order: int = 0) -> None:
    """Median over seeds per epoch as a line, min-max over seeds as a shaded band."""
    g = curves.dropna(subset=[y]).groupby("epoch")
    stats = g[y].agg(["median", "min", "max"])
    if stats.empty:
        return
    xs = stats.index.to_series() if x == "epoch" else g[x].median()
    width, style = _LINE_STYLES[order % len(_LINE_STYLES)]
    marker = "o" if len(stats) == 1 else None  # a whole-call native fit: only its last epoch is evaluated
    ax.plot(
        xs.values,
        stats["median"].values,
        color=colour,
        lw=width,
        ls=style,
        label=text(label),
        zorder=3 + order,
        marker=marker,
    )
    if g.size().max() > 1:
        ax.fill_between(xs.values, stats["min"].values, stats["max"].values, color=colour, alpha=0.13, lw=0)


def mark_stops(ax: Any, curves: pd.DataFrame, column: str, mark: Any, colour: str, best: bool = True) -> bool:
    """Early stopping on a loss panel: the median best epoch on the median line (a triangle, when `best`),
    and the median epoch at which the seeds that stopped early stopped (a dotted vertical line).

    `mark` is an `early.StopMark` (``best``, ``stopped``); returns whether anything was drawn.
    """
    drew = False
    stats = curves.dropna(subset=[column]).groupby("epoch")[column].median()
    if best and mark.best is not None and len(stats):
        y = float(np.interp(mark.best, stats.index.to_numpy(dtype=float), stats.to_numpy(dtype=float)))
        ax.plot([mark.best], [y], marker="v", ms=8, color=colour, mec="black", mew=0.7, ls="none", zorder=20)
        drew = True
    if mark.stopped is not None:
        ax.axvline(mark.stopped, color=colour, ls=":", lw=1.4, zorder=2)
        drew = True
    return drew


def legend_with_stops(ax: Any, stops_drawn: bool, loc: str = "upper right") -> None:
    """The backends' legend, and what the early-stopping marks mean when some were drawn."""
    handles, labels = ax.get_legend_handles_labels()
    if stops_drawn:
        from matplotlib.lines import Line2D

        handles += [
            Line2D([], [], marker="v", ms=7, color="#555", mec="black", mew=0.7, ls="none"),
            Line2D([], [], color="#555", ls=":", lw=1.4),
        ]
        labels += ["best epoch (median)", "stopped early (median)"]
    ax.legend(handles, labels, loc=loc)


def _plain(value: float, _pos: Any = None) -> str:
    return f"{value:g}"


def _log(ax: Any, which: str) -> None:
    """Log scale on axis `which` ("x" or "y") labelled with plain numbers (0.1, 0.2, 0.5), not powers of ten."""
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_formatter(NullFormatter())


def _positive(series: pd.Series) -> bool:
    values = series.dropna()
    return len(values) > 0 and bool((values > 0).all())


@_styled
def loss_curves(
    curves: pd.DataFrame,
    backends: Sequence[str],
    palette: dict[str, str],
    task: str,
    loss_name: str,
    path: Path,
    stops: dict[str, Any] | None = None,
) -> Path | None:
    """Training and validation loss against epoch, one colour per backend (median line, min-max band).

    `stops` (backend -> `early.StopMark`) marks early stopping: the best epoch on the validation curve,
    where training stopped on both.
    """
    if curves.empty or curves[["train_loss", "val_loss"]].isna().all().all():
        return None
    fig, axes = _figure(10.5, 3.6, ncols=2, sharey=True)
    log = _positive(curves["train_loss"]) and _positive(curves["val_loss"])
    drawn = False
    for ax, column, title in zip(
        axes[0], ("train_loss", "val_loss"), ("training loss", "validation loss"), strict=True
    ):
        for i, b in enumerate(backends):
            _band(ax, curves[curves["backend"] == b], "epoch", column, palette[b], b, i)
            if stops and b in stops:
                mine = curves[curves["backend"] == b]
                drawn |= mark_stops(ax, mine, column, stops[b], palette[b], best=column == "val_loss")
        ax.set_title(f"{text(task)}: {title}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log:
            _log(ax, "y")
    axes[0][0].set_ylabel(text(loss_name) + (" (log scale)" if log else ""))
    legend_with_stops(axes[0][1], drawn)
    return save_png(fig, path)


@_styled
def loss_vs_time(
    curves: pd.DataFrame, backends: Sequence[str], palette: dict[str, str], task: str, path: Path
) -> Path | None:
    """Validation loss against cumulative training wall time (evaluation excluded)."""
    data = curves.dropna(subset=["val_loss", "elapsed_s"])
    if data.empty:
        return None
    fig, axes = _figure(10.5, 3.6)
    ax = axes[0][0]
    for i, b in enumerate(backends):
        _band(ax, data[data["backend"] == b], "elapsed_s", "val_loss", palette[b], b, i)
    if _positive(data["elapsed_s"]):
        _log(ax, "x")
    if _positive(data["val_loss"]):
        _log(ax, "y")
    ax.set_title(f"{text(task)}: validation loss against training time")
    ax.set_xlabel("cumulative training time, s (log scale; median over seeds)")
    ax.set_ylabel("validation loss")
    ax.legend(loc="upper right")
    return save_png(fig, path)


@_styled
def speed_and_spread(
    epoch_times: dict[str, np.ndarray],
    metric_values: dict[str, np.ndarray],
    metric: str,
    palette: dict[str, str],
    task: str,
    path: Path,
) -> Path | None:
    """Left: steady-state epoch times per backend (box plot, log scale). Right: test metric of every seed."""
    names = [b for b in epoch_times if len(epoch_times[b]) or len(metric_values.get(b, []))]
    if not names:
        return None
    fig, axes = _figure(10.5, 0.9 + 0.45 * len(names) + 1.0, ncols=2)
    ax_t, ax_m = axes[0]
    ys = np.arange(len(names))[::-1]
    for y, b in zip(ys, names, strict=True):
        times = np.asarray(epoch_times.get(b, []), dtype=float) * 1000
        times = times[np.isfinite(times) & (times > 0)]
        if len(times):
            bp = ax_t.boxplot(
                times,
                positions=[y],
                orientation="horizontal",
                widths=0.55,
                patch_artist=True,
                showfliers=True,
                flierprops={"markersize": 2.5, "alpha": 0.5},
            )
            for box in bp["boxes"]:
                box.set(facecolor=palette[b], alpha=0.55, edgecolor=palette[b])
            for key in ("medians", "whiskers", "caps"):
                for line in bp[key]:
                    line.set(color="black" if key == "medians" else palette[b], lw=1.4)
        values = np.asarray(metric_values.get(b, []), dtype=float)
        values = values[np.isfinite(values)]
        if len(values):
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
            ax_m.scatter(values, y + jitter, color=palette[b], s=28, alpha=0.85, zorder=3, edgecolor="white", lw=0.5)
            ax_m.plot([np.median(values)] * 2, [y - 0.3, y + 0.3], color="black", lw=1.6, zorder=4)
    for ax in (ax_t, ax_m):
        ax.set_yticks(ys, [text(b) for b in names])
        ax.set_ylim(-0.7, len(names) - 0.3)
        ax.grid(True, axis="y", alpha=0)
    _log(ax_t, "x")
    ax_t.set_title(f"{text(task)}: steady-state time per epoch")
    ax_t.set_xlabel("ms per epoch (log scale; epochs 2..n of every seed)")
    ax_m.set_title(f"{text(task)}: test {text(metric)} of each seed")
    ax_m.set_xlabel(f"test {text(metric)} (bar: median)")
    ax_m.tick_params(labelleft=False)
    return save_png(fig, path)


@_styled
def decision_boundaries(grids: dict[str, dict[str, Any]], titles: dict[str, str], task: str, path: Path) -> Path | None:
    """Each backend's predicted P(class 1) (or class) over the input plane, with the training points."""
    names = [b for b, g in grids.items() if g and g.get("proba")]
    if not names:
        return None
    ncols = min(4, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = _figure(3.3 * ncols + 1.0, 3.2 * nrows + 0.4, ncols=ncols, nrows=nrows, sharex=True, sharey=True)
    image = None
    for ax, b in zip(list(axes.flat)[: len(names)], names, strict=True):
        g = grids[b]
        xs, ys, z = np.asarray(g["x"]), np.asarray(g["y"]), np.asarray(g["proba"], dtype=float)
        points, labels = np.asarray(g.get("points") or np.empty((0, 2))), np.asarray(g.get("labels") or [])
        binary = bool(np.nanmax(z) <= 1.0) and (labels.size == 0 or labels.max() <= 1)
        if binary:
            image = ax.contourf(xs, ys, z, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75, vmin=0, vmax=1)
            ax.contour(xs, ys, z, levels=[0.5], colors="black", linewidths=1.2)
        else:
            k = int(max(np.nanmax(z), labels.max() if labels.size else 0)) + 1
            cmap = ListedColormap(PALETTE[:k])
            ax.contourf(xs, ys, z, levels=np.arange(k + 1) - 0.5, cmap=cmap, alpha=0.35)
        if len(points):
            few = len(points) < 50  # a handful of points (xor) must stand out; hundreds must not hide the map
            colours_pts = ["#2166ac", "#b2182b"] if binary else list(PALETTE[: int(labels.max()) + 1])
            ax.scatter(
                points[:, 0],
                points[:, 1],
                c=labels,
                cmap=ListedColormap(colours_pts),
                s=60 if few else 16 if len(points) < 200 else 8,
                edgecolor="black" if few else "white",
                linewidths=0.8 if few else 0.4,
                vmin=0,
                vmax=max(1, int(labels.max())),
            )
        ax.set_title(text(titles.get(b, b)), fontsize=9.5)
        ax.grid(False)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.85, label="P(class 1)")
    fig.suptitle(f"{text(task)}: decision boundary per backend", fontsize=10.5, fontweight="bold")
    return save_png(fig, path)
