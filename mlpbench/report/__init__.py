"""Reports of a results directory: ``report.md`` (renders on GitHub) and ``report.html`` (one offline page).

Everything is computed from what the directory stores — runs.jsonl, env.json, config.json and,
when present, parity.json — so ``run_bench.py report DIR`` renders the same report again at any
time. Figures are PNG files under ``DIR/figures/``: linked from the Markdown, embedded as data
URIs in the HTML. Every string that comes from results is escaped before it reaches either file.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..metrics import HIGHER_IS_BETTER
from ..store import Results, ResultsStore, load_results

REPORT_MD, REPORT_HTML, FIGURES_DIR, PARITY_FILE = "report.md", "report.html", "figures", "parity.json"
#: Statuses listed in the "jobs that did not finish" section, in that order.
PROBLEM_STATUSES = ("error", "crashed", "timeout", "diverged", "not_installed", "unavailable", "skipped")
_FIGURE_SUFFIXES = ("-loss.png", "-time.png", "-speed.png", "-boundary.png")
DASH = "–"


# ------------------------------------------------------------------------------------------ numbers
def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and not math.isfinite(v))


def fmt_g(v: Any, digits: int = 3) -> str:
    """A number in `digits` significant figures, thousands separated from 1000 up; a dash when missing."""
    if _missing(v):
        return DASH
    v = float(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def fmt_metric(v: Any) -> str:
    """A test metric: four decimals (accuracy 0.9650, r2 0.4143)."""
    if _missing(v):
        return DASH
    return f"{float(v):.4f}" if abs(float(v)) < 1000 else fmt_g(v)


def fmt_int(v: Any) -> str:
    """A large count or rate, thousands separated."""
    return DASH if _missing(v) else f"{float(v):,.0f}"


def _median(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.median()) if len(values) else float("nan")


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    """A numeric column, or NaNs when the column is absent (e.g. every job failed)."""
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


# ------------------------------------------------------------------------------------------ tables
@dataclass
class Column:
    """One column of a task table: where its value lives in a row, how to show it, which way is better."""

    key: str
    header: str
    better: str | None = None  # "max", "min" or None (not ranked)
    fmt: Callable[[Any], str] = fmt_g
    detail: Callable[[dict[str, Any]], str] | None = None  # small print after the value (range, IQR, ...)
    tip: str = ""


def _range_detail(row: dict[str, Any]) -> str:
    lo, hi = row.get("metric_min"), row.get("metric_max")
    if _missing(lo) or _missing(hi) or lo == hi:
        return ""
    return f"{fmt_metric(lo)}{DASH}{fmt_metric(hi)}"


def _iqr_detail(row: dict[str, Any]) -> str:
    iqr = row.get("epoch_iqr_ms")
    return "" if _missing(iqr) else f"IQR {fmt_g(iqr, 2)}"


def _peak_detail(row: dict[str, Any]) -> str:
    pct = row.get("gflops_pct")
    return "" if _missing(pct) else f"{pct:.2g}% of peak"


def _target_detail(row: dict[str, Any]) -> str:
    reached, n = row.get("ttt_reached", 0), row.get("n_ok", 0)
    if n and reached < n:
        return f"{reached}/{n} seeds" if reached else f"not reached by {n} seed{'s' * (n > 1)}"
    return ""


def task_columns(metric: str | None, loss_name: str | None) -> list[Column]:
    """The columns of every task table."""
    better = "max" if HIGHER_IS_BETTER.get(metric or "", True) else "min"
    loss = f" ({loss_name})" if loss_name else ""
    return [
        Column("metric", f"test {metric or 'metric'}", better, fmt_metric, _range_detail,
               "median over seeds, min–max range after it"),
        Column("train_loss", "final train loss", "min", lambda v: fmt_g(v, 4), tip=f"last epoch{loss}, median"),
        Column("val_loss", "final val loss", "min", lambda v: fmt_g(v, 4), tip=f"last epoch{loss}, median"),
        Column("epoch_ms", "epoch ms", "min", fmt_g, _iqr_detail,
               "steady-state training time per epoch (epochs 2..n of every seed): median and interquartile range"),
        Column("overhead_ms", "1st-epoch overhead ms", "min", fmt_g,
               tip="first epoch minus the steady-state epoch (graph building, compilation, warm-up), median"),
        Column("train_s", "train time s", "min", fmt_g, tip="all epochs, training only (evaluation not timed), median"),
        Column("ttt_s", "time to target s", "min", fmt_g, _target_detail,
               "training time until the validation metric first met the task's target, median over seeds that did"),
        Column("throughput", "predict samples/s", "max", fmt_int, tip="test-set prediction, best of 3, median"),
        Column("gflops", "train GFLOP/s", "max", lambda v: fmt_g(v, 3), _peak_detail,
               "achieved training throughput: analytic FLOPs of forward + backward per epoch / steady-state "
               "epoch time, median; % of the machine's measured matmul peak below it"),
        Column("peak_mb", "peak memory MB", "min", fmt_int, tip="peak resident memory of the worker during the job"),
        Column("jobs", "jobs", None, str, tip="jobs by status"),
    ]  # fmt: skip


#: How to read the task tables, shown once per report.
COLUMN_NOTES = [
    ("test metric", "the task's headline metric on the test set: median over seeds, min–max range below it"),
    ("final train / val loss", "the loss after the last epoch, computed by mlpbench from each backend's "
     "predictions (never the framework's running average); median over seeds"),
    ("epoch ms", "steady-state training time of one epoch (epochs 2..n of every seed pooled): median and "
     "interquartile range"),
    ("1st-epoch overhead ms", "first epoch minus the steady-state epoch: graph building, compilation, warm-up"),
    ("train time s", "all epochs, training only: evaluation between epochs is not timed"),
    ("time to target s", "training time until the validation metric first met the task's target; the median "
     "over the seeds that reached it, with how many did when not all"),
    ("predict samples/s", "test-set prediction throughput, best of 3 calls"),
    ("train GFLOP/s", "analytic FLOPs of training (forward + backward matmuls) per epoch divided by the "
     "steady-state epoch time; the percentage compares it with the machine's measured float32 matmul peak"),
    ("peak memory MB", "peak resident memory of the worker process during the job (includes the framework)"),
    ("jobs", "jobs by status; anything but ok is explained under “Jobs that did not finish”"),
]  # fmt: skip


def _status_counts(statuses: pd.Series) -> str:
    counts = statuses.fillna("?").value_counts()
    order = ["ok", *PROBLEM_STATUSES]
    keys = sorted(counts.index, key=lambda s: order.index(s) if s in order else len(order))
    return " · ".join(f"{counts[k]} {k}" for k in keys)


def task_rows(runs: pd.DataFrame, curves: pd.DataFrame, backends: list[str],
              peak_gflops: float | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """One row of numbers per backend for one task (runs and curves already restricted to the task)."""
    rows = []
    metric = _task_metric(runs)
    for b in backends:
        g = runs[runs["backend"] == b]
        if g.empty:
            continue
        ok = g[g["status"] == "ok"]
        c = curves[curves["id"].isin(ok["id"])] if len(ok) else curves.iloc[0:0]
        last = c.sort_values("epoch").groupby("id").tail(1) if len(c) else c
        steady = c[c["epoch"] >= 2] if len(c) and c["epoch"].max() >= 2 else c
        epoch_ms = _num(steady, "epoch_time_s").dropna() * 1000 if len(steady) else pd.Series(dtype=float)
        values = _num(ok, f"test_{metric}") if metric else pd.Series(dtype=float)
        ttt = _num(ok, "time_to_target_s")
        rows.append({
            "backend": b, "n_ok": len(ok), "n_jobs": len(g),
            "metric": _median(values), "metric_min": values.min(), "metric_max": values.max(),
            "metric_values": values.dropna().tolist(),
            "train_loss": _median(_num(last, "train_loss")), "val_loss": _median(_num(last, "val_loss")),
            "epoch_ms": float(epoch_ms.median()) if len(epoch_ms) else _median(_num(ok, "epoch_time_s")) * 1000,
            "epoch_iqr_ms": float(epoch_ms.quantile(0.75) - epoch_ms.quantile(0.25)) if len(epoch_ms) > 1
            else _median(_num(ok, "epoch_time_iqr_s")) * 1000,
            "epoch_samples_ms": epoch_ms.to_numpy(),
            "overhead_ms": _median(_num(ok, "first_epoch_s") - _num(ok, "epoch_time_s")) * 1000,
            "train_s": _median(_num(ok, "train_time_s")),
            "ttt_s": _median(ttt), "ttt_reached": int(ttt.notna().sum()),
            "throughput": _median(_num(ok, "predict_throughput")),
            "peak_mb": _median(_num(ok, "peak_rss_mb")),
            "gflops": _median(_num(ok, "train_gflops")),
            "jobs": _status_counts(g["status"]),
        })  # fmt: skip
        if peak_gflops and not _missing(rows[-1]["gflops"]):
            rows[-1]["gflops_pct"] = 100.0 * rows[-1]["gflops"] / peak_gflops
    return rows


def best_backends(rows: list[dict[str, Any]], column: Column) -> set[str]:
    """Backends holding the best value of `column` (ties included; nothing when fewer than two have a value).

    Values are compared as displayed, so two backends that both show 1.0000 are both best. For time to
    target, a backend that reached the target on more seeds beats a faster one that reached it on fewer.
    """
    if column.better is None:
        return set()
    have = [r for r in rows if not _missing(r.get(column.key))]
    if len(have) < 2:
        return set()
    if column.key == "ttt_s":
        share = {r["backend"]: r["ttt_reached"] / max(r["n_ok"], 1) for r in have}
        top = max(share.values())
        have = [r for r in have if share[r["backend"]] == top]
    pick = max if column.better == "max" else min
    best = pick(float(r[column.key]) for r in have)
    shown = column.fmt(best)
    return {r["backend"] for r in have if column.fmt(r[column.key]) == shown}


def _task_metric(runs: pd.DataFrame) -> str | None:
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


# ------------------------------------------------------------------------------------------ model
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
    rows: list[dict[str, Any]]
    best: dict[str, set[str]]
    setup: str
    figures: list[Figure] = field(default_factory=list)
    glance: list[str] = field(default_factory=list)


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

    def __repr__(self) -> str:
        return f"Report({self.path}: {len(self.tasks)} tasks, {len(self.backends)} backends)"


def _ordered(preferred: list[Any], seen: list[Any]) -> list[str]:
    out = [str(x) for x in preferred if str(x) in set(map(str, seen))]
    return out + [str(x) for x in dict.fromkeys(seen) if str(x) not in out]


def _setup_line(records: list[dict[str, Any]]) -> str:
    rec = next((r for r in records if r.get("status") == "ok" and r.get("spec")), None)
    rec = rec or next((r for r in records if r.get("spec")), None)
    if rec is None:
        return ""
    s = rec["spec"]
    layers = " → ".join(str(n) for n in [s.get("n_inputs"), *(s.get("hidden") or []), s.get("n_outputs")])
    parts = [f"network {layers} ({s.get('activation')})", f"loss {s.get('loss')}",
             f"{s.get('optimizer')} lr {s.get('lr')}", f"batch {s.get('batch_size')}", f"{s.get('epochs')} epochs",
             str(s.get("dtype"))]  # fmt: skip
    if s.get("l2"):
        parts.append(f"l2 {s['l2']}")
    if s.get("dropout"):
        parts.append(f"dropout {s['dropout']}")
    if rec.get("n_parameters"):
        parts.append(f"{rec['n_parameters']:,} parameters")
    if rec.get("n_train") is not None:
        parts.append(f"{rec['n_train']} train / {rec.get('n_val')} validation / {rec.get('n_test')} test samples")
    if rec.get("target_metric") and rec.get("target") is not None:
        parts.append(f"target: validation {rec['target_metric']} {rec['target']:g}")
    if rec.get("task_params"):
        parts.append("parameters " + ", ".join(f"{k}={v}" for k, v in rec["task_params"].items()))
    return "; ".join(parts)


def _glance(task: str, rows: list[dict[str, Any]], metric: str | None) -> list[str]:
    """One-line findings: who is most accurate, who is fastest and by how much."""
    out = []
    scored = [r for r in rows if not _missing(r["metric"])]
    if len(scored) >= 2 and metric:
        high = HIGHER_IS_BETTER.get(metric, True)
        ranked = sorted(scored, key=lambda r: r["metric"], reverse=high)
        best, worst = ranked[0], ranked[-1]
        if fmt_metric(best["metric"]) == fmt_metric(worst["metric"]):
            out.append(f"{task}: every backend reaches test {metric} {fmt_metric(best['metric'])} (median over seeds)")
        else:
            out.append(f"{task}: best test {metric} {fmt_metric(best['metric'])} ({best['backend']}), "
                       f"lowest {fmt_metric(worst['metric'])} ({worst['backend']})")  # fmt: skip
    timed = [r for r in rows if not _missing(r["epoch_ms"]) and r["epoch_ms"] > 0]
    if len(timed) >= 2:
        fast = min(timed, key=lambda r: r["epoch_ms"])
        slow = max(timed, key=lambda r: r["epoch_ms"])
        ratio = slow["epoch_ms"] / fast["epoch_ms"]
        if ratio < 1.1:
            out.append(f"{task}: steady-state epoch times within 10% of each other "
                       f"({fmt_g(fast['epoch_ms'])}–{fmt_g(slow['epoch_ms'])} ms)")  # fmt: skip
        else:
            out.append(
                f"{task}: fastest epoch {fmt_g(fast['epoch_ms'])} ms ({fast['backend']}), "
                f"{ratio:.1f}× faster than the slowest, {slow['backend']} ({fmt_g(slow['epoch_ms'])} ms)"
            )
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "task"


def _clear_figures(folder: Path) -> None:
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_file() and p.name.endswith(_FIGURE_SUFFIXES):
                p.unlink()


def build(path: str | Path, figures: bool = True) -> Report:
    """Read a results directory and compute every table; draw the figures into DIR/figures/."""
    results = load_results(path)
    store = ResultsStore(path)
    records = store.records()
    runs, curves = results.runs, results.curves
    config = results.config or {}
    backends = _ordered(config.get("backends") or [], runs["backend"].dropna().tolist())
    tasks = _ordered(config.get("tasks") or [], runs["task"].dropna().tolist())
    parity = _read_parity(store.path / PARITY_FILE)
    problems = [r for r in records if r.get("status") not in ("ok", None)]
    order = {s: i for i, s in enumerate(PROBLEM_STATUSES)}
    problems.sort(key=lambda r: (order.get(r.get("status"), 99), str(r.get("task")), str(r.get("backend")),
                                 r.get("seed") if isinstance(r.get("seed"), int) else -1))  # fmt: skip

    fig_dir = store.path / FIGURES_DIR
    if figures:
        _clear_figures(fig_dir)
    from . import figures as figs

    palette = figs.colours(backends)
    sections = []
    for task in tasks:
        t_runs = runs[runs["task"] == task]
        t_curves = curves[curves["task"] == task] if len(curves) else curves
        t_records = [r for r in records if r.get("task") == task]
        t_backends = [b for b in backends if (t_runs["backend"] == b).any()]
        metric = _task_metric(t_runs)
        loss_name = next((r["spec"].get("loss") for r in t_records if r.get("spec")), None)
        columns = task_columns(metric, loss_name)
        rows = task_rows(t_runs, t_curves, t_backends, (results.env or {}).get("matmul_gflops"))
        section = TaskSection(task=task, metric=metric, columns=columns, rows=rows,
                              best={c.key: best_backends(rows, c) for c in columns}, setup=_setup_line(t_records),
                              glance=_glance(task, rows, metric))  # fmt: skip
        if figures:
            section.figures = _task_figures(figs, task, t_runs, t_curves, t_records, rows, t_backends, palette,
                                            metric, loss_name, fig_dir)  # fmt: skip
        sections.append(section)
    scaling_path = store.path / SCALING_FILE
    scaling = json.loads(scaling_path.read_text(encoding="utf-8")) if scaling_path.is_file() else None
    return Report(path=store.path, results=results, records=records, backends=backends, tasks=tasks,
                  sections=sections, parity=parity, problems=problems, scaling=scaling)  # fmt: skip


SCALING_FILE, SCALING_FIGURE = "scaling.json", "figures/scaling.png"
SCALING_COLUMNS = ["backend", "samples", "width", "GFLOP/epoch", "epoch time s", "train GFLOP/s", "% of peak",
                   "log-log slope"]  # fmt: skip


def scaling_cells(row: dict[str, Any]) -> list[str]:
    """Display strings of one scaling.json entry."""
    pct = row.get("fraction_of_peak")
    return [str(row.get("backend")), f"{row.get('n_samples', 0):,}", str(row.get("width")),
            fmt_g((row.get("flops_per_epoch") or 0) / 1e9, 3), fmt_g(row.get("epoch_time_s"), 3),
            fmt_g(row.get("gflops"), 3), DASH if _missing(pct) else f"{100 * pct:.3g}",
            fmt_g(row.get("slope"), 3)]  # fmt: skip


def _task_figures(figs: Any, task: str, runs: pd.DataFrame, curves: pd.DataFrame, records: list[dict[str, Any]],
                  rows: list[dict[str, Any]], backends: list[str], palette: dict[str, str], metric: str | None,
                  loss_name: str | None, folder: Path) -> list[Figure]:  # fmt: skip
    ok_ids = set(runs.loc[runs["status"] == "ok", "id"])
    ok_curves = curves[curves["id"].isin(ok_ids)] if len(curves) else curves
    slug = _slug(task)
    out = []
    p = figs.loss_curves(ok_curves, backends, palette, task, loss_name or "loss", folder / f"{slug}-loss.png")
    if p:
        out.append(Figure(p, "Loss per epoch", "Median over seeds (line) and min–max range (band). Every backend "
                          "starts from the same weights and sees the same batches, and mlpbench computes the losses "
                          "from each backend's predictions: backends that implement the spec alike draw one curve "
                          "(dashed lines on top of a solid one)."))  # fmt: skip
    p = figs.loss_vs_time(ok_curves, backends, palette, task, folder / f"{slug}-time.png")
    if p:
        out.append(Figure(p, "Validation loss against training time",
                          "What a user waits for: loss reached after a given amount of training wall time "
                          "(evaluation excluded)."))  # fmt: skip
    times = {r["backend"]: r["epoch_samples_ms"] / 1000 for r in rows}
    spread = {r["backend"]: np.asarray(r["metric_values"]) for r in rows}
    p = figs.speed_and_spread(times, spread, metric or "metric", palette, task, folder / f"{slug}-speed.png")
    if p:
        out.append(Figure(p, "Epoch time and seed-to-seed spread",
                          "Left: every steady-state epoch of every seed (box: quartiles, whiskers 1.5 IQR). "
                          "Right: the test metric of each seed."))  # fmt: skip
    grids, titles = {}, {}
    for b in backends:
        recs = sorted((r for r in records if r.get("backend") == b and r.get("status") == "ok" and r.get("grid")),
                      key=lambda r: r.get("seed", 0))  # fmt: skip
        if recs:
            grids[b] = recs[0]["grid"]
            score = recs[0].get(f"test_{metric}") if metric else None
            titles[b] = f"{b}\nseed {recs[0].get('seed')}" + (f" · test {metric} {fmt_metric(score)}"
                                                               if score is not None else "")  # fmt: skip
    p = figs.decision_boundaries(grids, titles, task, folder / f"{slug}-boundary.png")
    if p:
        out.append(Figure(p, "Decision boundary", "Predicted probability of class 1 over the input plane after "
                          "training (first seed), with the training points."))  # fmt: skip
    return out


def _read_parity(path: Path) -> list[dict[str, Any]] | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = data.get("results") or data.get("rows") or []
    return [d for d in data if isinstance(d, dict)]


# ------------------------------------------------------------------------------------------ facts
def _versions(records: list[dict[str, Any]], backend: str) -> dict[str, str]:
    for r in records:
        if r.get("backend") == backend and isinstance(r.get("versions"), dict) and r["versions"]:
            return r["versions"]
    return {}


def backend_facts(report: Report) -> list[dict[str, str]]:
    """Per backend: implementation, options, library versions, jobs."""
    out = []
    for b in report.backends:
        recs = [r for r in report.records if r.get("backend") == b]
        first = recs[0] if recs else {}
        options = first.get("backend_options") or {}
        out.append({
            "backend": b, "implementation": str(first.get("backend_name") or b),
            "options": ", ".join(f"{k}={v}" for k, v in options.items()) or DASH,
            "versions": ", ".join(f"{k} {v}" for k, v in _versions(report.records, b).items()) or DASH,
            "jobs": _status_counts(pd.Series([r.get("status") for r in recs])),
        })  # fmt: skip
    return out


def run_facts(report: Report) -> list[tuple[str, str]]:
    """What ran and when."""
    env, config, runs = report.results.env or {}, report.results.config or {}, report.results.runs
    seeds = config.get("seeds") or sorted(runs["seed"].dropna().astype(int).unique().tolist())
    per_task = {t: sorted({int(v) for v in _num(runs[runs["task"] == t], "spec_epochs").dropna()})
                for t in report.tasks}  # fmt: skip
    if len({tuple(v) for v in per_task.values() if v}) <= 1:
        epochs = next((", ".join(map(str, v)) for v in per_task.values() if v), DASH)
    else:
        epochs = ", ".join(f"{t} {'/'.join(map(str, v))}" for t, v in per_task.items() if v)
    finished = [str(r["finished_at"]) for r in report.records if r.get("finished_at")]
    facts = [
        ("results", str(report.path)),
        ("started", _when(env.get("created"))),
        ("last job finished", _when(max(finished)) if finished else DASH),
        ("jobs", f"{len(runs)} ({_status_counts(runs['status'])})" if len(runs) else "0"),
        ("backends", ", ".join(report.backends)),
        ("tasks", ", ".join(report.tasks)),
        ("seeds", ", ".join(map(str, seeds))),
        ("epochs", epochs),
    ]
    if config.get("overrides"):
        facts.append(("spec overrides", ", ".join(f"{k}={v}" for k, v in config["overrides"].items())))
    if config.get("timeout_s"):
        facts.append(("timeout per job", f"{config['timeout_s']:g} s"))
    if config.get("resumed"):
        facts.append(("resumed", "yes (finished jobs were kept, the rest run again)"))
    return facts


def _when(stamp: Any) -> str:
    if not stamp:
        return DASH
    try:
        t = _dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f" {t.strftime('%z')[:3]}:{t.strftime('%z')[3:]}" if t.tzinfo else "")


def machine_facts(env: dict[str, Any]) -> list[tuple[str, str]]:
    """The machine and software, from env.json."""
    if not env:
        return [("environment", "not recorded (no env.json)")]
    blas = env.get("blas") or []
    blas_text = "; ".join(
        " ".join(str(x) for x in (b.get("internal_api"), b.get("version"), b.get("architecture")) if x)
        for b in blas if b.get("user_api") != "openmp" or len(blas) == 1
    )  # fmt: skip
    threads = env.get("thread_env") or {}
    facts = [
        ("CPU", f"{env.get('cpu', DASH)}, {env.get('cores', '?')} logical cores"
         + (f", {env['memory_gb']} GB memory" if env.get("memory_gb") else "")),
        ("threads per worker", str(env.get("threads", DASH))),
        ("thread environment", ", ".join(f"{k}={v}" for k, v in sorted(threads.items())) or DASH),
        ("BLAS", blas_text or DASH),
        ("matmul peak", f"{env['matmul_gflops']:g} GFLOP/s ({env.get('matmul_gflops_note', '')})"
         if env.get("matmul_gflops") else DASH),
        ("platform", f"{env.get('platform', DASH)}, Python {env.get('python', DASH)}"),
        ("libraries", ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items()) or DASH),
        ("mlpbench commit", str(env.get("git_commit") or "unknown (not a git checkout)")),
    ]  # fmt: skip
    return facts


PARITY_COLUMNS = [("backend", "backend"), ("task", "task"), ("optimizer", "optimizer"),
                  ("max_rel_loss_diff", "max rel. loss diff"), ("max_rel_weight_diff", "max rel. weight diff"),
                  ("target", "target"), ("within_target", "within target"), ("note", "note")]  # fmt: skip


def parity_cells(row: dict[str, Any]) -> list[str]:
    """Display strings of one parity.json entry."""
    out = []
    for key, _ in PARITY_COLUMNS:
        v = row.get(key)
        if key == "within_target":
            out.append(DASH if v is None else ("yes" if v else "NO"))
        elif isinstance(v, float):
            out.append(f"{v:.2e}" if v and abs(v) < 1e-2 else fmt_g(v))
        else:
            out.append(DASH if v is None or v == "" else str(v))
    return out


def _reason(r: dict[str, Any]) -> str:
    return str(r.get("error") or "(no reason recorded)")


# ------------------------------------------------------------------------------------------ Markdown
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_text(value: Any) -> str:
    """Text for a Markdown table cell or line: HTML and Markdown syntax neutralised, one line."""
    s = html.escape(str(value), quote=False)
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def _code_span(value: Any) -> str:
    """Text for inside a Markdown code span (shown literally): only backticks and line breaks must go."""
    return " ".join(str(value).replace("`", "'").split())


def md_table(headers: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A GitHub Markdown table; cells must already be escaped."""
    align = align or ["l"] * len(headers)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _md_cell(section: TaskSection, col: Column, row: dict[str, Any]) -> str:
    value = col.fmt(row.get(col.key))
    if row["backend"] in section.best[col.key]:
        value = f"**{value}**"
    detail = col.detail(row) if col.detail else ""
    return md_text(value).replace(r"\*\*", "**") + (f" ({md_text(detail)})" if detail else "")


def render_markdown(report: Report) -> str:
    """report.md: tables, figures linked as PNG files next to it."""
    out = [f"# mlpbench report: {md_text(report.path.name)}", ""]
    out += ["## What ran", ""]
    out.append(md_table(["", ""], [[f"**{md_text(k)}**", md_text(v)] for k, v in run_facts(report)]))
    out += ["", md_table(["backend", "implementation", "options", "versions", "jobs"],
                         [[md_text(f[k]) for k in ("backend", "implementation", "options", "versions", "jobs")]
                          for f in backend_facts(report)]), ""]  # fmt: skip
    out += ["## Machine", "", md_table(["", ""], [[f"**{md_text(k)}**", md_text(v)]
                                                 for k, v in machine_facts(report.results.env)]), ""]  # fmt: skip
    glance = [g for s in report.sections for g in s.glance]
    if glance:
        out += ["## At a glance", ""] + [f"- {md_text(g)}" for g in glance] + [""]
    if report.sections:
        out += ["## Reading the tables", ""] + [f"- **{md_text(k)}**: {md_text(v)}" for k, v in COLUMN_NOTES] + [""]
    for s in report.sections:
        out += [f"## Task: {md_text(s.task)}", ""]
        if s.setup:
            out += [md_text(s.setup), ""]
        headers = ["backend"] + [md_text(c.header) for c in s.columns]
        rows = [[md_text(r["backend"])] + [_md_cell(s, c, r) for c in s.columns] for r in s.rows]
        out += [md_table(headers, rows, ["l"] + ["l" if c.key == "jobs" else "r" for c in s.columns]), ""]
        out += ["Bold: best value of the column (ties included). Medians over seeds; ok jobs only.", ""]
        for f in s.figures:
            rel = f.path.relative_to(report.path).as_posix()
            out += [f"![{md_text(f.title)}]({rel})", "", f"*{md_text(f.caption)}*", ""]
    if report.parity is not None:
        out += ["## Parity between backends", ""]
        if report.parity:
            out.append(md_table([h for _, h in PARITY_COLUMNS],
                                [[md_text(c) for c in parity_cells(r)] for r in report.parity],
                                ["l", "l", "l", "r", "r", "r", "l", "l"]))  # fmt: skip
        else:
            out.append("parity.json holds no entries.")
        out.append("")
    if report.scaling:
        out += ["## Scaling: epoch time against work", ""]
        if (report.path / SCALING_FIGURE).is_file():
            out += [f"![epoch time against work]({SCALING_FIGURE})", ""]
        out += [md_table(SCALING_COLUMNS, [[md_text(c) for c in scaling_cells(r)] for r in report.scaling],
                         ["l"] + ["r"] * (len(SCALING_COLUMNS) - 1)), ""]  # fmt: skip
    out += ["## Jobs that did not finish", ""]
    if report.problems:
        out.append(md_table(["backend", "task", "seed", "status", "reason"],
                            [[md_text(r.get("backend")), md_text(r.get("task")), md_text(r.get("seed")),
                              md_text(r.get("status")), md_text(_reason(r))] for r in report.problems]))  # fmt: skip
    else:
        out.append("None: every job finished with status ok.")
    out += ["", f"<sub>Generated by mlpbench {__version__} from the stored results; "
            f"re-render with `python run_bench.py report {_code_span(report.path)}`.</sub>", ""]  # fmt: skip
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ HTML
def e(value: Any) -> str:
    """Escape any value for HTML text or attribute."""
    return html.escape(str(value), quote=True)


_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#ffffff;--soft:#f6f8fa;--accent:#0969da;--best:#dafbe1;
--bad:#cf222e;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI","Noto Sans",Helvetica,Arial,sans-serif;
color:var(--fg);background:var(--bg)}
main{max-width:1240px;margin:0 auto;padding:8px 28px 48px}
header.top{background:linear-gradient(135deg,#0b3d91,#0969da);color:#fff;padding:26px 28px 22px}
header.top .inner{max-width:1240px;margin:0 auto}
header.top h1{margin:0 0 4px;font-size:28px;letter-spacing:.2px}
header.top p{margin:0;opacity:.9}
.chips{margin-top:12px;display:flex;flex-wrap:wrap;gap:8px}
.chip{background:rgba(255,255,255,.16);border:1px solid rgba(255,255,255,.28);border-radius:999px;padding:2px 12px;
font-size:13px}
.chip.bad{background:#ffebe9;color:var(--bad);border-color:#ffcecb;font-weight:600}
nav.toc{position:sticky;top:0;z-index:5;background:rgba(255,255,255,.96);border-bottom:1px solid var(--line);
padding:8px 28px;font-size:14px}
nav.toc .inner{max-width:1240px;margin:0 auto;display:flex;flex-wrap:wrap;gap:4px 16px}
nav.toc a{color:var(--accent);text-decoration:none}
h2{font-size:22px;margin:34px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:22px 0 8px}
.setup{color:var(--muted);font-size:14px;margin:0 0 12px}
.grid2{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:20px;align-items:start}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{padding:6px 9px;border-bottom:1px solid var(--line);vertical-align:top}
td:first-child{white-space:nowrap}
tr:last-child td{border-bottom:0}
thead th{background:var(--soft);text-align:left;font-weight:600;vertical-align:bottom;line-height:1.25}
th.num{text-align:right}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.best{background:var(--best)}
td.best b{color:#116329}
.detail{display:block;color:var(--muted);font-size:12px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:baseline}
table.kv th{width:190px;background:var(--soft);text-align:left;font-weight:600}
table.kv td{word-break:break-word}
.legend{color:var(--muted);font-size:12.5px;margin:8px 2px 0}
.legend b{color:var(--fg)}
figure{margin:18px 0;border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fff}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
figcaption{color:var(--muted);font-size:13px;margin-top:6px}
figcaption b{color:var(--fg)}
ul.glance{padding-left:20px}
dl.notes{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;font-size:14px}
dl.notes dt{font-weight:600}
dl.notes dd{margin:0;color:var(--muted)}
.status{font-weight:600;border-radius:4px;padding:0 6px;font-size:12.5px;white-space:nowrap}
.s-error,.s-crashed,.s-timeout,.s-diverged{background:#ffebe9;color:var(--bad)}
.s-skipped,.s-not_installed,.s-unavailable{background:#fff8c5;color:var(--warn)}
.no{color:var(--bad);font-weight:600}
details{margin-top:4px}
summary{cursor:pointer;color:var(--accent);font-size:12.5px}
pre{background:var(--soft);padding:8px;border-radius:6px;overflow-x:auto;font-size:12px;margin:4px 0 0}
footer{color:var(--muted);font-size:12.5px;margin-top:40px;border-top:1px solid var(--line);padding-top:10px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;background:var(--soft);
padding:1px 4px;border-radius:4px}
"""

# Reports how many images decoded, for readers and for the headless-browser test (data-images-loaded).
_SCRIPT = """window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-loaded", ok + "/" + imgs.length);
});"""


def _kv_table(facts: list[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    return f'<div class="scroll"><table class="kv"><tbody>{rows}</tbody></table></div>'


def _html_table(headers: list[tuple[str, str, str]], rows: list[list[tuple[str, str]]]) -> str:
    """headers: (text, css class, tooltip); rows: (inner HTML, css class) — inner HTML already escaped."""
    head = "".join(f'<th class="{c}" title="{e(t)}">{e(h)}</th>' for h, c, t in headers)
    body = "".join("<tr>" + "".join(f'<td class="{c}">{v}</td>' for v, c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{e(alt)}" loading="eager">'


def _status(s: Any) -> str:
    return f'<span class="status s-{e(re.sub(r"[^a-z_]", "", str(s)))}">{e(s)}</span>'


def render_html(report: Report) -> str:
    """report.html: one self-contained page (inline CSS, figures as data URIs, no external resource)."""
    from . import figures as figs

    palette = figs.colours(report.backends)
    runs = report.results.runs
    n_bad = len(report.problems)
    chips = [f"{len(report.backends)} backend{'s' * (len(report.backends) != 1)}",
             f"{len(report.tasks)} task{'s' * (len(report.tasks) != 1)}", f"{len(runs)} jobs",
             f"{int((runs['status'] == 'ok').sum()) if len(runs) else 0} ok"]  # fmt: skip
    chip_html = "".join(f'<span class="chip">{e(c)}</span>' for c in chips)
    if n_bad:
        chip_html += f'<a class="chip bad" href="#problems">{n_bad} did not finish</a>'
    toc = ['<a href="#run">What ran</a>', '<a href="#machine">Machine</a>']
    toc += [f'<a href="#task-{e(_slug(s.task))}">{e(s.task)}</a>' for s in report.sections]
    if report.parity is not None:
        toc.append('<a href="#parity">Parity</a>')
    toc.append('<a href="#problems">Did not finish</a>')

    body = [f'<header class="top"><div class="inner"><h1>mlpbench report</h1>'
            f'<p>{e(report.path.name)} · {e(", ".join(report.backends))} on {e(", ".join(report.tasks))}</p>'
            f'<div class="chips">{chip_html}</div></div></header>',
            f'<nav class="toc"><div class="inner">{"".join(toc)}</div></nav><main>']  # fmt: skip

    body.append('<section id="run"><h2>What ran</h2><div class="grid2">')
    body.append(_kv_table(run_facts(report)))
    bf = backend_facts(report)
    body.append(_html_table(
        [("backend", "", ""), ("implementation", "", ""), ("options", "", ""), ("versions", "", ""),
         ("jobs", "", "")],
        [[(f'<span class="swatch" style="background:{palette.get(f["backend"], "#888")}"></span>{e(f["backend"])}',
           ""), (e(f["implementation"]), ""), (e(f["options"]), ""), (e(f["versions"]), ""), (e(f["jobs"]), "")]
         for f in bf]))  # fmt: skip
    body.append("</div></section>")
    body.append(f'<section id="machine"><h2>Machine</h2>{_kv_table(machine_facts(report.results.env))}</section>')

    glance = [g for s in report.sections for g in s.glance]
    if glance:
        body.append('<section id="glance"><h2>At a glance</h2><ul class="glance">'
                    + "".join(f"<li>{e(g)}</li>" for g in glance) + "</ul></section>")  # fmt: skip

    if report.sections:
        body.append(
            '<section id="reading"><h2>Reading the tables</h2><dl class="notes">'
            + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in COLUMN_NOTES)
            + "</dl></section>"
        )
    for s in report.sections:
        body.append(f'<section id="task-{e(_slug(s.task))}"><h2>Task: {e(s.task)}</h2>')
        if s.setup:
            body.append(f'<p class="setup">{e(s.setup)}</p>')
        headers = [("backend", "", "")] + [(c.header, "" if c.key == "jobs" else "num", c.tip) for c in s.columns]
        rows = []
        for r in s.rows:
            cells = [(f'<span class="swatch" style="background:{palette.get(r["backend"], "#888")}"></span>'
                      f'<b>{e(r["backend"])}</b>', "")]  # fmt: skip
            for c in s.columns:
                best = r["backend"] in s.best[c.key]
                value = e(c.fmt(r.get(c.key)))
                detail = c.detail(r) if c.detail else ""
                inner = (f"<b>{value}</b>" if best else value) + (
                    f'<span class="detail">{e(detail)}</span>' if detail else ""
                )
                cls = ("" if c.key == "jobs" else "num") + (" best" if best else "")
                cells.append((inner, cls.strip()))
            rows.append(cells)
        body.append(_html_table(headers, rows))
        body.append(
            '<p class="legend">Green and bold: best value of the column (ties included). Medians over '
            "seeds, ok jobs only; hover a header for its definition, or see "
            '<a href="#reading">reading the tables</a>.</p>'
        )
        for f in s.figures:
            body.append(f"<figure>{_img(f.path, f'{s.task}: {f.title}')}"
                        f"<figcaption><b>{e(f.title)}.</b> {e(f.caption)}</figcaption></figure>")  # fmt: skip
        body.append("</section>")

    if report.parity is not None:
        body.append('<section id="parity"><h2>Parity between backends</h2>')
        if report.parity:
            prow = []
            for r in report.parity:
                cells = parity_cells(r)
                prow.append([(e(v) if k != "within_target" or v != "NO" else '<span class="no">NO</span>',
                              "num" if k.startswith("max_") or k == "target" else "")
                             for (k, _), v in zip(PARITY_COLUMNS, cells, strict=True)])  # fmt: skip
            body.append(_html_table([(h, "num" if k.startswith("max_") or k == "target" else "", "")
                                     for k, h in PARITY_COLUMNS], prow))  # fmt: skip
            body.append(
                '<p class="legend">Largest relative difference to the reference backend over the '
                "training run, same initial weights and batches (from parity.json).</p>"
            )
        else:
            body.append("<p>parity.json holds no entries.</p>")
        body.append("</section>")

    if report.scaling:
        body.append('<section id="scaling"><h2>Scaling: epoch time against work</h2>')
        if (report.path / SCALING_FIGURE).is_file():
            body.append(f"<figure>{_img(report.path / SCALING_FIGURE, 'epoch time against work')}</figure>")
        body.append(_html_table([(h, "" if h == "backend" else "num", "") for h in SCALING_COLUMNS],
                                [[(e(c), "" if i == 0 else "num") for i, c in enumerate(scaling_cells(r))]
                                 for r in report.scaling]))  # fmt: skip
        body.append("</section>")

    body.append('<section id="problems"><h2>Jobs that did not finish</h2>')
    if report.problems:
        prow = []
        for r in report.problems:
            reason = e(_reason(r))
            if r.get("traceback"):
                reason += f"<details><summary>traceback</summary><pre>{e(r['traceback'])}</pre></details>"
            prow.append([(e(r.get("backend")), ""), (e(r.get("task")), ""), (e(r.get("seed")), "num"),
                         (_status(r.get("status")), ""), (reason, "")])  # fmt: skip
        body.append(_html_table([("backend", "", ""), ("task", "", ""), ("seed", "num", ""), ("status", "", ""),
                                 ("reason", "", "")], prow))  # fmt: skip
    else:
        body.append("<p>None: every job finished with status ok.</p>")
    body.append("</section>")
    body.append(f"<footer>Generated by mlpbench {e(__version__)} from the stored results in "
                f"<code>{e(report.path)}</code>; render again with "
                f"<code>python run_bench.py report {e(report.path)}</code>.</footer></main>")  # fmt: skip

    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    # The policy forbids every network fetch and every script but ours, whatever the results contain.
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{script_hash}'")  # fmt: skip
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>mlpbench report: {e(report.path.name)}</title><style>{_CSS}</style></head>"
            f"<body>{''.join(body)}<script>{_SCRIPT}</script></body></html>\n")  # fmt: skip


# ------------------------------------------------------------------------------------------ entry points
def write_reports(path: str | Path) -> tuple[Path, Path]:
    """Render DIR/report.md, DIR/report.html and DIR/figures/*.png from the stored results; return both paths."""
    report = build(path)
    md_path, html_path = report.path / REPORT_MD, report.path / REPORT_HTML
    for target, text in ((md_path, render_markdown(report)), (html_path, render_html(report))):
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return md_path, html_path
