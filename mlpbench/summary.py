"""The table printed at the end of a run: per task, grid point and backend, quality and speed at a glance.

A gridded run gets one leading column per swept task-level setting (and ``mode`` when a task ran in
more than one, ``host`` when its records come from more than one machine), so no row pools the jobs of
two grid points, modes or machines; a run without a grid looks as it always did.
"""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .report.grid import column, ordered_values, point_order, point_settings, points_of
from .stats import EPOCH_MS, EPOCH_MS_LABEL, median_epoch_time_s
from .status import Status
from .store import CONFIG_FILE, Results, ResultsStore, records_to_frames


def _groups(runs: pd.DataFrame, config: dict | None) -> tuple[list[str], list[tuple[str, tuple, str, pd.DataFrame]]]:
    """(every point setting of any task, [(task, point values, backend, jobs)]) in the order jobs ran."""
    settings: list[str] = []
    out = []
    for task, t_runs in runs.groupby("task", sort=False):
        mine = point_settings(t_runs, str(task), config)
        settings += [s for s in mine if s not in settings]
        keys = points_of(t_runs, mine)
        orders = {k: ordered_values(k, list(t_runs[column(k)]), config) for k in mine}
        for point in point_order(list(keys), mine, orders):
            at = t_runs[keys == point]
            for backend, g in at.groupby("backend", sort=False):
                out.append((str(task), dict(zip(mine, point, strict=True)), str(backend), g))
    return settings, out


def summary_frame(runs: pd.DataFrame, curves: pd.DataFrame | None = None, config: dict | None = None) -> pd.DataFrame:
    """Median over seeds per (task, grid point, backend) of the headline figures, with job counts by status.

    "epoch ms" is `mlpbench.stats.median_epoch_time_s` of the ok jobs' `curves` (see `EPOCH_MS_LABEL`),
    the figure the reports show; without curves, the median of the jobs' own ``epoch_time_s``. A gridded
    run has one column per swept setting after "task" (`config`: the run's config.json, for grid order).
    """
    if curves is None:
        curves = pd.DataFrame(columns=["id", "epoch", "epoch_time_s"])
    rows = []
    settings, groups = _groups(runs, config)
    for task, point, backend, g in groups:
        ok = g[g["status"] == Status.OK]
        metric_cols = [c for c in g.columns if c.startswith("test_") and g[c].notna().any()]
        main = metric_cols[0] if metric_cols else None
        counts = g["status"].value_counts()
        ok_curves = curves[curves["id"].isin(ok["id"])]
        epoch_s = median_epoch_time_s(ok_curves, fallback=ok["epoch_time_s"]) if len(ok) else None
        rows.append(
            {
                "task": task,
                **{k: point.get(k, "") for k in settings},
                "backend": backend,
                "jobs": " ".join(f"{n} {s}" for s, n in counts.items()),
                "metric": main[5:] if main else "",
                "test (median)": ok[main].median() if main and len(ok) else None,
                EPOCH_MS: 1000 * epoch_s if epoch_s is not None else None,
                "first epoch ms": 1000 * ok["first_epoch_s"].median() if len(ok) else None,
                "time to target s": ok["time_to_target_s"].median() if len(ok) else None,
                "peak MB": ok["peak_rss_mb"].median() if len(ok) else None,
            }
        )
    return pd.DataFrame(rows)


def _fmt(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def print_summary(store: ResultsStore, console: Console | None = None, results: Results | None = None) -> None:
    """Print the summary table of a results directory (`results`: as already loaded, see `load_results`)."""
    runs, curves = (results.runs, results.curves) if results is not None else records_to_frames(store.records())
    if runs.empty:
        return
    table = Table(title=f"mlpbench results: {store.path}", caption=EPOCH_MS_LABEL)
    frame = summary_frame(runs, curves, store.read_json(CONFIG_FILE))
    numeric = ("test (median)", EPOCH_MS, "first epoch ms", "time to target s", "peak MB")
    for col in frame.columns:
        table.add_column(col, justify="right" if col in numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(escape(_fmt(v)) for v in row))  # labels like torch[compile=true] are not markup
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)  # logs and pipes: don't squeeze the table into 80 columns
    console.print(table)
