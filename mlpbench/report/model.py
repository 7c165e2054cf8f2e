"""A results directory turned into a `Report`: one `TaskSection` per task, its table, findings and figures.

`build` reads only what the directory stores (runs.jsonl, env.json, config.json, parity.json,
scaling.json) and draws the figures into ``DIR/figures/``; the renderers turn the result into text.
A gridded task's table has one row per grid point and backend, and the task gets a sweep section
(`sweep`); a run of two or more problems gets performance profiles (`profile`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..metrics import HIGHER_IS_BETTER
from ..status import Status
from ..store import Results, ResultsStore, load_results
from .format import fmt_g, fmt_metric, missing
from .grid import applicable, ordered_values, point_label, point_order, point_settings, points_of, swept_settings
from .grid import column as grid_column
from .profile import PROFILE_CAPTION, PROFILE_FIGURE, Profile, build_profile
from .sweep import SWEEP_CAPTION, SweepSection, build_sweep, sweep_figure_name
from .tables import Column, mark_best, status_rank, task_columns, task_metric, task_rows

FIGURES_DIR, PARITY_FILE = "figures", "parity.json"
SCALING_FILE, SCALING_FIGURE = "scaling.json", "figures/scaling.png"  # written by `run_bench.py scaling`
_FIGURE_SUFFIXES = ("-loss.png", "-time.png", "-speed.png", "-boundary.png", "-points.png")


@dataclass
class Figure:
    """A figure of the report: its PNG file and what it shows."""

    path: Path
    title: str
    caption: str


@dataclass
class TaskSection:
    """Everything shown for one task."""

    task: str
    metric: str | None
    columns: list[Column]
    rows: list[dict[str, Any]]  # each with ``best``: the keys of the columns it is best in at its grid point
    setup: str
    settings: list[str] = field(default_factory=list)  # leading columns: the grid point's settings (and mode)
    figures: list[Figure] = field(default_factory=list)
    glance: list[str] = field(default_factory=list)
    sweep: SweepSection | None = None

    @property
    def best(self) -> dict[str, set[str]]:
        """Column key -> backends best in it at some grid point (one group for a run without a grid)."""
        return {c.key: {r["backend"] for r in self.rows if c.key in r.get("best", set())} for c in self.columns}


@dataclass
class Report:
    """A results directory turned into sections, ready to be written as Markdown or HTML."""

    path: Path
    results: Results
    records: list[dict[str, Any]]
    backends: list[str]
    tasks: list[str]
    sections: list[TaskSection]
    parity: list[dict[str, Any]] | None
    problems: list[dict[str, Any]]
    scaling: list[dict[str, Any]] | None = None  # scaling.json, written by `run_bench.py scaling`
    profile: Profile | None = None  # across problems: performance profiles

    def __repr__(self) -> str:
        return f"Report({self.path}: {len(self.tasks)} tasks, {len(self.backends)} backends)"


def slug(text: str) -> str:
    """A task name made safe for a file name and an HTML id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "task"


def _ordered(preferred: list[Any], seen: list[Any]) -> list[str]:
    out = [str(x) for x in preferred if str(x) in set(map(str, seen))]
    return out + [str(x) for x in dict.fromkeys(seen) if str(x) not in out]


def _setup_line(records: list[dict[str, Any]], swept: list[str] | None = None) -> str:
    """The task's network and training setup; what a grid sweeps is named as swept, not as one point's value."""
    rec = next((r for r in records if r.get("status") == Status.OK and r.get("spec")), None)
    rec = rec or next((r for r in records if r.get("spec")), None)
    if rec is None:
        return ""
    s, order, swept = rec["spec"], list(swept or []), set(swept or [])

    def val(key: str) -> Any:
        return "(swept)" if key in swept else s.get(key)

    hidden = ["(swept)"] if "hidden" in swept else (s.get("hidden") or [])
    layers = " → ".join(str(n) for n in [s.get("n_inputs"), *hidden, s.get("n_outputs")])
    parts = [
        f"network {layers} ({val('activation')})",
        f"loss {val('loss')}",
        f"{val('optimizer')} lr {val('lr')}",
        f"batch {val('batch_size')}",
        f"{val('epochs')} epochs",
        str(val("dtype")),
    ]
    if s.get("l2") or "l2" in swept:
        parts.append(f"l2 {val('l2')}")
    if s.get("dropout") or "dropout" in swept:
        parts.append(f"dropout {val('dropout')}")
    task_swept = any(k.partition(".")[0] == rec.get("task") for k in swept)  # the data's size may vary
    if rec.get("n_parameters") and "hidden" not in swept and not task_swept:
        parts.append(f"{rec['n_parameters']:,} parameters")
    if rec.get("n_train") is not None and not task_swept:
        parts.append(f"{rec['n_train']} train / {rec.get('n_val')} validation / {rec.get('n_test')} test samples")
    if rec.get("target_metric") and rec.get("target") is not None:
        parts.append(f"target: validation {rec['target_metric']} {rec['target']:g}")
    params = {k: v for k, v in (rec.get("task_params") or {}).items() if f"{rec.get('task')}.{k}" not in swept}
    if params:
        parts.append("parameters " + ", ".join(f"{k}={v}" for k, v in params.items()))
    if swept:
        parts.append("swept: " + ", ".join(order))
    return "; ".join(parts)


def _glance(task: str, rows: list[dict[str, Any]], metric: str | None) -> list[str]:
    """One-line findings: who is most accurate, who is fastest and by how much."""
    out = []
    scored = [r for r in rows if not missing(r["metric"])]
    if len(scored) >= 2 and metric:
        ranked = sorted(scored, key=lambda r: r["metric"], reverse=HIGHER_IS_BETTER.get(metric, True))
        best, worst = ranked[0], ranked[-1]
        if fmt_metric(best["metric"]) == fmt_metric(worst["metric"]):
            out.append(f"{task}: every backend reaches test {metric} {fmt_metric(best['metric'])} (median over seeds)")
        else:
            out.append(
                f"{task}: best test {metric} {fmt_metric(best['metric'])} ({best['backend']}), "
                f"lowest {fmt_metric(worst['metric'])} ({worst['backend']})"
            )
    timed = [r for r in rows if not missing(r["epoch_ms"]) and r["epoch_ms"] > 0]
    if len(timed) >= 2:
        fast = min(timed, key=lambda r: r["epoch_ms"])
        slow = max(timed, key=lambda r: r["epoch_ms"])
        ratio = slow["epoch_ms"] / fast["epoch_ms"]
        if ratio < 1.1:
            out.append(
                f"{task}: steady-state epoch times within 10% of each other "
                f"({fmt_g(fast['epoch_ms'])}–{fmt_g(slow['epoch_ms'])} ms)"
            )
        else:
            tied = [r["backend"] for r in timed if r is not fast and "epoch_ms" in r.get("best", set())]
            ties = f"; tied with {', '.join(tied)} (overlapping 95% intervals)" if tied else ""
            out.append(
                f"{task}: fastest epoch {fmt_g(fast['epoch_ms'])} ms ({fast['backend']}{ties}), "
                f"{ratio:.1f}× faster than the slowest, {slow['backend']} ({fmt_g(slow['epoch_ms'])} ms)"
            )
    return out


def _clear_figures(folder: Path) -> None:
    """Remove the figures a previous rendering drew (a grid or a task may be gone since)."""
    if folder.is_dir():
        for p in folder.iterdir():
            drawn = p.name.endswith(_FIGURE_SUFFIXES) or "-sweep-" in p.name or p.name == PROFILE_FIGURE
            if p.is_file() and drawn and p.suffix == ".png":
                p.unlink()


def _problem_order(r: dict[str, Any]) -> tuple[int, str, str, int]:
    seed = r.get("seed")
    return (
        status_rank(r.get("status")),
        str(r.get("task")),
        str(r.get("backend")),
        seed if isinstance(seed, int) else -1,
    )


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _read_parity(path: Path) -> list[dict[str, Any]] | None:
    data = _read_json(path)
    if data is None:
        return None
    if isinstance(data, dict):
        data = data.get("results") or data.get("rows") or []
    return [d for d in data if isinstance(d, dict)]


def build(path: str | Path, figures: bool = True) -> Report:
    """Read a results directory and compute every table; draw the figures into DIR/figures/."""
    results = load_results(path)
    store = ResultsStore(path)
    records = store.records()
    runs, curves = results.runs, results.curves
    config = results.config or {}
    backends = _ordered(config.get("backends") or [], runs["backend"].dropna().tolist())
    tasks = _ordered(config.get("tasks") or [], runs["task"].dropna().tolist())
    problems = sorted((r for r in records if r.get("status") not in (Status.OK, None)), key=_problem_order)

    fig_dir = store.path / FIGURES_DIR
    if figures:
        _clear_figures(fig_dir)
    from . import figures as figs  # matplotlib: imported only when a report is built

    palette = figs.colours(backends)
    sections, point_map = [], {}
    for task in tasks:
        t_runs = runs[runs["task"] == task]
        t_curves = curves[curves["task"] == task] if len(curves) else curves
        t_records = [r for r in records if r.get("task") == task]
        t_backends = [b for b in backends if (t_runs["backend"] == b).any()]
        metric = task_metric(t_runs)
        loss_name = next((r["spec"].get("loss") for r in t_records if r.get("spec")), None)
        columns = task_columns(metric, loss_name)
        settings = point_settings(t_runs, task, config)
        point_map[task] = settings
        orders = {k: ordered_values(k, list(t_runs[grid_column(k)]), config) for k in settings}
        points = point_order(list(points_of(t_runs, settings)), settings, orders) if settings else None
        peak = (results.env or {}).get("matmul_gflops")
        rows = task_rows(t_runs, t_curves, t_backends, peak, settings, points)
        mark_best(rows, columns)
        swept = applicable(t_runs, swept_settings(t_runs, config))
        section = TaskSection(
            task=task,
            metric=metric,
            columns=columns,
            rows=rows,
            setup=_setup_line(t_records, swept),
            settings=settings,
        )
        ctx = _FigureContext(figs, task, palette, metric, loss_name, fig_dir)
        draw = ctx.sweep_figure if figures else None
        section.sweep = build_sweep(task, t_runs, rows, columns, settings, t_backends, metric, config, draw)
        section.glance = section.sweep.glance if section.sweep else _glance(task, rows, metric)
        if figures:
            section.figures = ctx.task_figures(t_runs, t_curves, t_records, rows, t_backends, settings)
        sections.append(section)
    profile = build_profile(runs, curves, backends, point_map)
    if profile is not None and figures:
        p = figs_sweep().performance_profile(profile.ratios, palette, fig_dir / PROFILE_FIGURE, profile.unit)
        profile.figure = Figure(p, "Performance profiles", PROFILE_CAPTION) if p else None
    return Report(
        path=store.path,
        results=results,
        records=records,
        backends=backends,
        tasks=tasks,
        sections=sections,
        parity=_read_parity(store.path / PARITY_FILE),
        problems=problems,
        scaling=_read_json(store.path / SCALING_FILE),
        profile=profile,
    )


def figs_sweep() -> Any:
    """The sweep and profile drawing module (matplotlib: imported only when a report is built)."""
    from . import figures_sweep

    return figures_sweep


_LOSS_CAPTION = (
    "Median over seeds (line) and min–max range (band). Every backend starts from the same weights and sees "
    "the same batches, and mlpbench computes the losses from each backend's predictions: backends that "
    "implement the spec alike draw one curve (dashed lines on top of a solid one)."
)
_TIME_CAPTION = "What a user waits for: loss reached after a given amount of training wall time (evaluation excluded)."
_SPEED_CAPTION = (
    "Left: every steady-state epoch of every seed (box: quartiles, whiskers 1.5 IQR). "
    "Right: the test metric of each seed."
)
_BOUNDARY_CAPTION = (
    "Predicted probability of class 1 over the input plane after training (first seed), with the training points."
)
_POINTS_CAPTION = (
    "One panel per grid point: validation loss per epoch, median over seeds (line) and min–max range (band). "
    "The sweep below shows epoch time and test metric across the grid."
)


@dataclass
class _FigureContext:
    """What every figure of one task needs: the drawing module, colours, names and the folder."""

    figs: Any
    task: str
    palette: dict[str, str]
    metric: str | None
    loss_name: str | None
    folder: Path

    def task_figures(
        self,
        runs: pd.DataFrame,
        curves: pd.DataFrame,
        records: list[dict[str, Any]],
        rows: list[dict[str, Any]],
        backends: list[str],
        settings: list[str] | None = None,
    ) -> list[Figure]:
        """Draw the task's figures (those that have something to show) and describe them.

        A gridded task's figures never pool grid points: its losses are drawn per point (small
        multiples), its times and metrics by the sweep figures, its decision boundary at one point.
        """
        figs, task, palette, metric = self.figs, self.task, self.palette, self.metric
        name = slug(task)
        ok_ids = set(runs.loc[runs["status"] == Status.OK, "id"])
        ok_curves = curves[curves["id"].isin(ok_ids)] if len(curves) else curves
        if settings:
            return self._gridded_figures(runs, ok_curves, records, rows, backends, settings)
        out = []
        p = figs.loss_curves(
            ok_curves, backends, palette, task, self.loss_name or "loss", self.folder / f"{name}-loss.png"
        )
        if p:
            out.append(Figure(p, "Loss per epoch", _LOSS_CAPTION))
        p = figs.loss_vs_time(ok_curves, backends, palette, task, self.folder / f"{name}-time.png")
        if p:
            out.append(Figure(p, "Validation loss against training time", _TIME_CAPTION))
        times = {r["backend"]: r["epoch_samples_ms"] / 1000 for r in rows}
        spread = {r["backend"]: np.asarray(r["metric_values"]) for r in rows}
        p = figs.speed_and_spread(times, spread, metric or "metric", palette, task, self.folder / f"{name}-speed.png")
        if p:
            out.append(Figure(p, "Epoch time and seed-to-seed spread", _SPEED_CAPTION))
        return out + self._boundary(records, backends, "Decision boundary")

    def _boundary(self, records: list[dict[str, Any]], backends: list[str], title: str) -> list[Figure]:
        grids, titles, metric = {}, {}, self.metric
        for b in backends:
            mine = [r for r in records if r.get("backend") == b and r.get("status") == Status.OK and r.get("grid")]
            if mine:
                first = min(mine, key=lambda r: r.get("seed", 0))
                grids[b] = first["grid"]
                score = first.get(f"test_{metric}") if metric else None
                shown = f" · test {metric} {fmt_metric(score)}" if score is not None else ""
                titles[b] = f"{b}\nseed {first.get('seed')}{shown}"
        p = self.figs.decision_boundaries(grids, titles, self.task, self.folder / f"{slug(self.task)}-boundary.png")
        return [Figure(p, title, _BOUNDARY_CAPTION)] if p else []

    def _gridded_figures(
        self,
        runs: pd.DataFrame,
        ok_curves: pd.DataFrame,
        records: list[dict[str, Any]],
        rows: list[dict[str, Any]],
        backends: list[str],
        settings: list[str],
    ) -> list[Figure]:
        keys = points_of(runs, settings)
        ordered = list(dict.fromkeys(r["point"] for r in rows))  # the table's (grid) order
        panels = {}
        for point in ordered:
            ids = set(runs.loc[keys == point, "id"])
            panels[point_label(settings, point) or "–"] = ok_curves[ok_curves["id"].isin(ids)]
        out = []
        path = self.folder / f"{slug(self.task)}-points.png"
        p = figs_sweep().loss_by_point(panels, backends, self.palette, self.task, path)
        if p:
            out.append(Figure(p, "Validation loss at each grid point", _POINTS_CAPTION))
        if ordered:  # the decision boundary at one grid point: maps of different points side by side mislead
            first = set(runs.loc[keys == ordered[0], "id"])
            title = f"Decision boundary at {point_label(settings, ordered[0])}"
            out += self._boundary([r for r in records if r.get("id") in first], backends, title)
        return out

    def sweep_figure(
        self,
        setting: str,
        points: pd.DataFrame,
        positions: dict[str, float],
        numeric: bool,
        series: list[str],
        panels: list[str],
    ) -> Figure | None:
        """One setting's sweep figure: epoch time and test metric against it, per backend."""
        colours = {s: self.palette.get(s) or _series_colour(s, self.palette) for s in series}
        path = self.folder / sweep_figure_name(slug(self.task), setting)
        metric = self.metric or "metric"
        p = figs_sweep().sweep(points, setting, positions, numeric, series, panels, colours, self.task, metric, path)
        return Figure(p, f"Sweep over {setting}", SWEEP_CAPTION) if p else None


def _series_colour(series: str, palette: dict[str, str]) -> str:
    """A backend-option sweep's series (``torch``) takes the colour of its first backend label."""
    name = series.partition("[")[0]
    return next((c for b, c in palette.items() if b.partition("[")[0] == name), "#888")
