"""A results directory turned into a `Report`: one `TaskSection` per task, its table, findings and figures.

`build` reads only what the directory stores (runs.jsonl, env.json, config.json, parity.json,
scaling.json, references.json) and draws the figures into ``DIR/figures/``; the renderers turn the
result into text. A gridded task's table has one row per grid point and backend, and the task gets a
sweep section (`sweep`); a task that ran in both modes a native vs controlled section (`modes`), one
with reference models their table (`references`), one with early stopping a line per row (`early`);
records from several machines split every table by host (`machines`); a run of two or more problems
gets performance profiles (`profile`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..env import peak_gflops
from ..painter import Painter
from ..stats import steady_epoch_times
from ..status import Status
from ..store import Results, ResultsStore, load_results
from . import early
from .findings import glance, setup_line
from .format import fmt_metric
from .grid import (
    HOST,
    MODE,
    applicable,
    ordered_values,
    point_label,
    point_order,
    point_settings,
    points_of,
    swept_settings,
)
from .grid import column as grid_column
from .machines import apply_host_peaks
from .modes import MODES_CAPTION, ModesSection, biggest_overhead, build_modes
from .profile import PROFILE_CAPTION, PROFILE_FIGURE, Profile, build_profile
from .references import ReferenceTable, read_references, reference_table
from .sweep import SWEEP_CAPTION, SweepSection, build_sweep, sweep_figure_name
from .tables import Column, mark_best, num, status_rank, task_columns, task_metric, task_rows

FIGURES_DIR, PARITY_FILE = "figures", "parity.json"
SCALING_FILE, SCALING_FIGURE = "scaling.json", "figures/scaling.png"  # written by `run_bench.py scaling`
_FIGURE_SUFFIXES = ("-loss.png", "-time.png", "-speed.png", "-boundary.png", "-points.png", "-modes.png")


@dataclass
class Figure:
    """A figure of the report: its PNG file and what it shows."""

    path: Path
    title: str
    caption: str


def _into(out: list[Figure], title: str, caption: str) -> Callable[[Path | None], None]:
    """A `Painter` callback that appends the drawn figure to `out` (nothing when there was nothing to draw)."""

    def then(path: Path | None) -> None:
        if path:
            out.append(Figure(path, title, caption))

    return then


def _onto(owner: Any, title: str, caption: str) -> Callable[[Path | None], None]:
    """A `Painter` callback that sets ``owner.figure`` to the drawn figure, or None."""

    def then(path: Path | None) -> None:
        owner.figure = Figure(path, title, caption) if path else None

    return then


@dataclass
class TaskSection:
    """Everything shown for one task."""

    task: str
    metric: str | None
    columns: list[Column]
    rows: list[dict[str, Any]]  # each with ``best``: the keys of the columns it is best in at its grid point
    setup: str
    settings: list[str] = field(default_factory=list)  # leading columns: the grid point's settings, mode, host
    figures: list[Figure] = field(default_factory=list)
    glance: list[str] = field(default_factory=list)
    sweep: SweepSection | None = None
    stopping: list[str] = field(default_factory=list)  # one line per row that used early stopping
    stopping_heading: str = ""
    references: ReferenceTable | None = None  # references.json's models on this task
    modes: ModesSection | None = None  # native vs controlled, when the task ran in both

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

    @property
    def glance(self) -> list[str]:
        """The at-a-glance lines: each task's, the biggest native overhead, the performance profiles'."""
        out = [g for s in self.sections for g in s.glance]
        overhead = biggest_overhead([s.modes for s in self.sections if s.modes is not None])
        return out + ([overhead] if overhead else []) + (self.profile.lines if self.profile else [])

    def __repr__(self) -> str:
        return f"Report({self.path}: {len(self.tasks)} tasks, {len(self.backends)} backends)"


def slug(text: str) -> str:
    """A task name made safe for a file name and an HTML id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "task"


def _ordered(preferred: list[Any], seen: list[Any]) -> list[str]:
    out = [str(x) for x in preferred if str(x) in set(map(str, seen))]
    return out + [str(x) for x in dict.fromkeys(seen) if str(x) not in out]


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


def build(
    path: str | Path, figures: bool = True, painter: Painter | None = None, results: Results | None = None
) -> Report:
    """Read a results directory and compute every table; draw the figures into DIR/figures/.

    `painter` draws them (a run passes the one it started while planning; it stays open); without
    one, a painter of this call's own. `results`: the directory as already loaded (`load_results`).
    """
    results = results if results is not None else load_results(path)
    store = ResultsStore(path)
    records = results.records
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
    sections = []
    refs = read_references(store.path)
    parts = {task: _TaskData.of(task, runs, curves, records, backends, config) for task in tasks}
    point_map = {task: part.settings for task, part in parts.items()}
    # The figures are drawn while the tables are computed; they are all in place after `painter.finish`.
    # The performance profile and an ungridded task's figures need no table: they are asked for first,
    # so that the drawing processes work while the tables are computed here.
    own = painter is None
    painter = (Painter(None if figures else 0) if own else painter).start()
    try:
        profile = build_profile(runs, curves, backends, point_map)
        early_figures: dict[str, list[Figure]] = {}
        for task, part in parts.items():
            if figures and not part.settings:
                ctx = _FigureContext(figs, painter, task, palette, part.metric, part.loss_name, fig_dir)
                out = early_figures[task] = []
                ctx.task_figures(part.runs, part.curves, part.records, [], part.backends, None, out)
        if profile is not None and figures:
            painter.draw(
                figs_sweep().performance_profile,
                profile.ratios,
                palette,
                fig_dir / PROFILE_FIGURE,
                profile.unit,
                then=_onto(profile, "Performance profiles", PROFILE_CAPTION),
            )
        for task, part in parts.items():
            t_runs, t_curves, t_records, t_backends = part.runs, part.curves, part.records, part.backends
            metric, loss_name, settings = part.metric, part.loss_name, part.settings
            columns = task_columns(metric, loss_name)
            orders = {k: ordered_values(k, list(t_runs[grid_column(k)]), config) for k in settings}
            points = point_order(list(points_of(t_runs, settings)), settings, orders) if settings else None
            rows = task_rows(t_runs, t_curves, t_backends, partial(peak_gflops, results.env or {}), settings, points)
            apply_host_peaks(rows, settings, t_records, results.env or {})
            mark_best(rows, columns)
            swept = applicable(t_runs, swept_settings(t_runs, config))
            section = TaskSection(task, metric, columns, rows, setup_line(t_records, swept), settings)
            section.stopping = early.stopping_lines(t_runs, rows, settings)
            section.stopping_heading = early.stopping_heading(t_runs) if section.stopping else ""
            section.references = reference_table(refs, task, metric, rows) if refs is not None else None
            section.modes = build_modes(task, t_runs, rows, settings, metric)
            ctx = _FigureContext(figs, painter, task, palette, metric, loss_name, fig_dir)
            draw = ctx.sweep_figure if figures else None
            section.sweep = build_sweep(task, t_runs, rows, columns, settings, t_backends, metric, config, draw)
            section.glance = section.sweep.glance if section.sweep else glance(task, rows, metric)
            if task in early_figures:
                section.figures = early_figures[task]
            elif figures:
                ctx.task_figures(t_runs, t_curves, t_records, rows, t_backends, settings, section.figures)
            if figures and section.modes is not None:
                painter.draw(
                    figs_modes().modes,
                    section.modes.pairs,
                    palette,
                    task,
                    fig_dir / f"{slug(task)}-modes.png",
                    then=_onto(section.modes, "Epoch time, native vs controlled", MODES_CAPTION),
                )
            sections.append(section)
        painter.finish()
    finally:
        if own:
            painter.close()
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


def figs_modes() -> Any:
    """The native vs controlled drawing module (matplotlib: imported only when a report is built)."""
    from . import figures_modes

    return figures_modes


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
    "One panel per grid point: validation loss per epoch, median over seeds (line) and min–max range (band)."
)
_SWEEP_BELOW = " The sweep below shows epoch time and test metric across the grid."
_STOPS_CAPTION = (
    " Early stopping: a triangle marks each backend's median best epoch, a dotted line the median epoch at "
    "which its seeds that stopped early stopped."
)


@dataclass
class _TaskData:
    """One task's part of the results: its runs, curves and records, backends, metric, loss and grid settings."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    records: list[dict[str, Any]]
    backends: list[str]
    metric: str | None
    loss_name: str | None
    settings: list[str]

    @classmethod
    def of(
        cls,
        task: str,
        runs: pd.DataFrame,
        curves: pd.DataFrame,
        records: list[dict[str, Any]],
        backends: list[str],
        config: dict[str, Any],
    ) -> _TaskData:
        t_runs = runs[runs["task"] == task]
        t_records = [r for r in records if r.get("task") == task]
        return cls(
            runs=t_runs,
            curves=curves[curves["task"] == task] if len(curves) else curves,
            records=t_records,
            backends=[b for b in backends if (t_runs["backend"] == b).any()],
            metric=task_metric(t_runs),
            loss_name=next((r["spec"].get("loss") for r in t_records if r.get("spec")), None),
            settings=point_settings(t_runs, task, config),
        )


@dataclass
class _FigureContext:
    """What every figure of one task needs: the drawing module, the painter, colours, names and the folder.

    Each method asks `painter` for its figures and names the list they go into (in the order asked).
    """

    figs: Any
    painter: Painter
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
        settings: list[str] | None,
        out: list[Figure],
    ) -> None:
        """Draw the task's figures (those that have something to show) into `out`, described.

        A gridded task's figures never pool grid points: its losses are drawn per point (small
        multiples), its times and metrics by the sweep figures, its decision boundary at one point.
        """
        figs, task, palette, metric, draw = self.figs, self.task, self.palette, self.metric, self.painter.draw
        name = slug(task)
        ok_ids = set(runs.loc[runs["status"] == Status.OK, "id"])
        ok_curves = curves[curves["id"].isin(ok_ids)] if len(curves) else curves
        if settings:
            self._gridded_figures(runs, ok_curves, records, rows, backends, settings, out)
            return
        stops = early.marks(runs)
        loss_caption = _LOSS_CAPTION + (_STOPS_CAPTION if stops else "")
        loss_name, folder = self.loss_name or "loss", self.folder
        draw(
            figs.loss_curves,
            *(ok_curves, backends, palette, task, loss_name, folder / f"{name}-loss.png", stops),
            then=_into(out, "Loss per epoch", loss_caption),
        )
        draw(
            figs.loss_vs_time,
            *(ok_curves, backends, palette, task, folder / f"{name}-time.png"),
            then=_into(out, "Validation loss against training time", _TIME_CAPTION),
        )
        # From the runs and curves themselves (what the rows hold), so these figures need no table.
        ok_runs = runs[runs["status"] == Status.OK]
        times = {b: steady_epoch_times(ok_curves[ok_curves["backend"] == b]).to_numpy() for b in backends}
        column = f"test_{metric}"
        spread = {
            b: num(ok_runs[ok_runs["backend"] == b], column).dropna().to_numpy() if metric else np.array([])
            for b in backends
        }
        draw(
            figs.speed_and_spread,
            *(times, spread, metric or "metric", palette, task, folder / f"{name}-speed.png"),
            then=_into(out, "Epoch time and seed-to-seed spread", _SPEED_CAPTION),
        )
        self._boundary(records, backends, "Decision boundary", out)

    def _boundary(self, records: list[dict[str, Any]], backends: list[str], title: str, out: list[Figure]) -> None:
        grids, titles, metric = {}, {}, self.metric
        for b in backends:
            mine = [r for r in records if r.get("backend") == b and r.get("status") == Status.OK and r.get("grid")]
            if mine:
                first = min(mine, key=lambda r: r.get("seed", 0))
                grids[b] = first["grid"]
                score = first.get(f"test_{metric}") if metric else None
                shown = f" · test {metric} {fmt_metric(score)}" if score is not None else ""
                titles[b] = f"{b}\nseed {first.get('seed')}{shown}"
        path = self.folder / f"{slug(self.task)}-boundary.png"
        self.painter.draw(
            self.figs.decision_boundaries, grids, titles, self.task, path, then=_into(out, title, _BOUNDARY_CAPTION)
        )

    def _gridded_figures(
        self,
        runs: pd.DataFrame,
        ok_curves: pd.DataFrame,
        records: list[dict[str, Any]],
        rows: list[dict[str, Any]],
        backends: list[str],
        settings: list[str],
        out: list[Figure],
    ) -> None:
        keys = points_of(runs, settings)
        ordered = list(dict.fromkeys(r["point"] for r in rows))  # the table's (grid) order
        panels, stops = {}, {}
        for point in ordered:
            ids = set(runs.loc[keys == point, "id"])
            title = point_label(settings, point) or "–"
            panels[title] = ok_curves[ok_curves["id"].isin(ids)]
            stops[title] = early.marks(runs[runs["id"].isin(ids)])
        path = self.folder / f"{slug(self.task)}-points.png"
        sweep = _SWEEP_BELOW if any(s not in (MODE, HOST) for s in settings) else ""
        marked = _STOPS_CAPTION if any(stops.values()) else ""
        self.painter.draw(
            figs_sweep().loss_by_point,
            *(panels, backends, self.palette, self.task, path, stops),
            then=_into(out, "Validation loss at each grid point", _POINTS_CAPTION + sweep + marked),
        )
        if ordered:  # the decision boundary at one grid point: maps of different points side by side mislead
            first = set(runs.loc[keys == ordered[0], "id"])
            title = f"Decision boundary at {point_label(settings, ordered[0])}"
            self._boundary([r for r in records if r.get("id") in first], backends, title, out)

    def sweep_figure(
        self,
        setting: str,
        points: pd.DataFrame,
        positions: dict[str, float],
        numeric: bool,
        series: list[str],
        panels: list[str],
        out: list[Figure],
    ) -> None:
        """One setting's sweep figure into `out`: epoch time and test metric against it, per backend."""
        colours = {s: self.palette.get(s) or _series_colour(s, self.palette) for s in series}
        path = self.folder / sweep_figure_name(slug(self.task), setting)
        metric = self.metric or "metric"
        self.painter.draw(
            figs_sweep().sweep,
            *(points, setting, positions, numeric, series, panels, colours, self.task, metric, path),
            then=_into(out, f"Sweep over {setting}", SWEEP_CAPTION),
        )


def _series_colour(series: str, palette: dict[str, str]) -> str:
    """A backend-option sweep's series (``torch``) takes the colour of its first backend label."""
    name = series.partition("[")[0]
    return next((c for b, c in palette.items() if b.partition("[")[0] == name), "#888")
