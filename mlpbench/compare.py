"""Comparing results directories: which jobs correspond, how their numbers changed, and whether it is real.

Jobs correspond when they are the same experiment cell: backend label and options, task and its
parameters, grid point, mode, threads and the resolved spec. The seed is *not* part of it, and neither is
the job id (it digests the data fingerprint and the seed): a group is every seed of one cell, and the
seeds are the samples. Per matched group and measure, `mlpbench.stats.compare_samples` gives the ratio
B / A (or, for the test metric, the difference B − A) of the medians with a bootstrap 95% interval and
a Mann–Whitney U p-value; a change is significant when p < `ALPHA` and the interval excludes no-change.

Machines differ more often than code does, so every comparison carries each run's machine (env.json)
and warns when CPU, BLAS, cores, threads, measured matmul peak or library versions differ. A run whose
jobs ran on several machines (Dask workers on more than one host) is compared host by host: the host
joins the cell, so no group pools one machine's seeds with another's.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .metrics import HIGHER_IS_BETTER
from .report.grid import value_text
from .report.machines import hosts
from .stats import ALPHA, Change, compare_samples, steady_epoch_times
from .status import Status
from .store import CONFIG_FILE, ENV_FILE, RUNS_FILE, ResultsStore, records_to_frames
from .values import is_finite_number

#: Default noise band of time and memory ratios, as asv's default factor: a change counts only when its 95%
#: interval lies beyond ±10%. Two default-suite runs of the same code flagged 13 of 15 groups with no band,
#: 4 with ±5% and 1 with ±10% (docs/performance/2026-12-01-compare-noise.md).
NOISE = 0.10
IDENTITY = ("backend", "backend_options", "task", "task_params", "grid_point", "mode", "threads", "spec")
EPOCH, TTT, MEMORY = "epoch time", "time to target", "peak memory"
PEAK_TOLERANCE = 0.10  # measured matmul peaks further apart than this suggest another (or a busier) machine


class CompareError(ValueError):
    """Results that cannot be compared (missing or not results directories, nothing in common)."""


@dataclass
class Run:
    """One results directory, as compare reads it: its records, tables, machine and configuration."""

    path: Path
    records: list[dict[str, Any]]
    runs: pd.DataFrame
    curves: pd.DataFrame
    env: dict[str, Any]
    config: dict[str, Any]

    @property
    def name(self) -> str:
        """The directory's name, how tables refer to the run."""
        return self.path.name or str(self.path)

    @property
    def commit(self) -> str:
        """The mlpbench git commit the run was made with, short (``812e7fb+dirty``), or "unknown"."""
        commit = str(self.env.get("git_commit") or "")
        if not commit:
            return "unknown"
        head, plus, rest = commit.partition("+")
        return head[:7] + plus + rest

    @property
    def created(self) -> str:
        """When the run started (env.json ``created``), or ""."""
        return str(self.env.get("created") or "")


def load_run(path: str | Path) -> Run:
    """A results directory; CompareError when it is missing or holds no runs.jsonl."""
    p = Path(path)
    if not p.is_dir():
        raise CompareError(f"{p}: no such results directory")
    store = ResultsStore(p)
    if not store.runs_path.exists():
        raise CompareError(f"{p}: not a results directory (no {RUNS_FILE})")
    records = store.records()
    runs, curves = records_to_frames(records)
    return Run(p, records, runs, curves, store.read_json(ENV_FILE), store.read_json(CONFIG_FILE))


#: What a record from before a field existed meant by leaving it out.
_DEFAULTS: dict[str, Any] = {
    "backend_options": {},
    "task_params": {},
    "grid_point": {},
    "mode": "controlled",
    "threads": 1,
}


def identity(record: dict[str, Any], by_host: bool = False) -> str:
    """The cell a job belongs to, as text: everything that determines its result except the seed; with
    `by_host`, also the machine it ran on.

    Fields a record does not have take the value they had before they were recorded (no grid point,
    controlled mode, one thread), so runs of an older mlpbench still match their counterparts.
    """
    keys = IDENTITY + (("host",) if by_host else ())
    values = [record.get(k) if record.get(k) is not None else _DEFAULTS.get(k) for k in keys]
    return json.dumps(values, sort_keys=True, default=str)


def spans_hosts(*runs: Run) -> bool:
    """Whether any of the runs has jobs from more than one machine: then cells are told apart by host."""
    return any(len(hosts(run.records)) > 1 for run in runs)


def describe(record: dict[str, Any], by_host: bool = False) -> dict[str, str]:
    """How a group is named in tables: backend, task, grid point (with task parameters, and with
    `by_host` the host first) and mode."""
    point = {"host": record.get("host"), **(record.get("grid_point") or {})} if by_host else record.get("grid_point")
    point = ", ".join(f"{k}={value_text(v)}" for k, v in (point or {}).items())
    return {
        "backend": str(record.get("backend")),
        "task": str(record.get("task")),
        "point": point,
        "mode": str(record.get("mode") or ""),
    }


def label(record: dict[str, Any], by_host: bool = False) -> str:
    """``numpy · digits · hidden=16`` (mode added when it is not "controlled"; `by_host`: see `describe`)."""
    d = describe(record, by_host)
    parts = [d["backend"], d["task"]] + ([d["point"]] if d["point"] else [])
    return " · ".join(parts + ([d["mode"]] if d["mode"] not in ("", "controlled") else []))


@dataclass
class Measure:
    """One measure of one group: the change and its verdict in words."""

    name: str  # epoch time, time to target, peak memory, test <metric>
    unit: str  # how A and B are shown: "ms", "s", "MB", ""
    scale: float  # from stored units (seconds, MB, metric) to `unit`
    change: Change
    verdict: str  # faster / slower / ... / no significant change / no test possible / no values
    note: str = ""  # what else to know: seeds that reached the target, why no test


@dataclass
class Group:
    """The jobs of one cell in both runs and their measures."""

    key: str
    names: dict[str, str]  # describe()
    a: list[dict[str, Any]]
    b: list[dict[str, Any]]
    measures: list[Measure] = field(default_factory=list)
    problem: str = ""  # e.g. "no ok job in B"
    by_host: bool = False  # the runs span machines: the host is part of the cell (`spans_hosts`)

    @property
    def label(self) -> str:
        """The group's one-line name."""
        return label((self.a or self.b)[0], self.by_host)

    def measure(self, name: str) -> Measure | None:
        """The measure called `name`, if the group has it."""
        return next((m for m in self.measures if m.name == name), None)


@dataclass
class Comparison:
    """Run A against run B: matched groups, what did not match, both machines and the warnings."""

    a: Run
    b: Run
    groups: list[Group]
    only_a: list[str]
    only_b: list[str]
    machine: list[tuple[str, str, str, bool]]  # (what, A, B, differs)
    warnings: list[str]
    alpha: float = ALPHA


_WORDS = {
    EPOCH: ("slower", "faster"),
    TTT: ("slower", "faster"),
    MEMORY: ("more memory", "less memory"),
}


def _verdict(name: str, change: Change, higher_is_better: bool = True) -> str:
    if not math.isfinite(change.estimate):
        return "no values" if change.note == "no values to compare" else "not comparable"
    if not change.tested:
        return "no test possible"
    if change.direction == 0:
        return "no significant change"
    if name in _WORDS:
        up, down = _WORDS[name]
        return up if change.direction > 0 else down
    good = (change.direction > 0) == higher_is_better
    return "better" if good else "worse"


def _ok(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") == Status.OK]


def _epoch_samples(run: Run, jobs: list[dict[str, Any]]) -> pd.Series:
    """The pooled steady-state epochs (2..n) of the jobs' curves, in seconds; the jobs' own medians without curves."""
    ids = {r.get("id") for r in jobs}
    times = steady_epoch_times(run.curves[run.curves["id"].isin(ids)]) if len(run.curves) else pd.Series(dtype=float)
    if len(times):
        return times
    return pd.Series([r.get("epoch_time_s") for r in jobs], dtype=float)


def _values(jobs: list[dict[str, Any]], key: str) -> list[float]:
    out = []
    for r in jobs:
        v = r.get(key)
        if is_finite_number(v):
            out.append(float(v))
    return out


def _metric(records: list[dict[str, Any]]) -> str | None:
    named = next((r.get("target_metric") for r in records if r.get("target_metric")), None)
    if named and any(f"test_{named}" in r for r in records):
        return str(named)
    for name in ("accuracy", "r2"):
        if any(r.get(f"test_{name}") is not None for r in records):
            return name
    return None


def measure_group(group: Group, a: Run, b: Run, alpha: float = ALPHA, threshold: float = NOISE) -> None:
    """Fill `group.measures`: epoch time, time to target, peak memory and the test metric, A → B."""
    ok_a, ok_b = _ok(group.a), _ok(group.b)
    if not ok_a or not ok_b:
        failed = [(side, jobs) for side, jobs, ok in (("A", group.a, ok_a), ("B", group.b, ok_b)) if not ok]
        group.problem = " and ".join(f"no ok job in {side} ({_statuses(jobs)})" for side, jobs in failed)
        return
    change = compare_samples(_epoch_samples(a, ok_a), _epoch_samples(b, ok_b), "ratio", alpha, threshold)
    group.measures.append(Measure(EPOCH, "ms", 1000.0, change, _verdict(EPOCH, change), change.note))
    ta, tb = _values(ok_a, "time_to_target_s"), _values(ok_b, "time_to_target_s")
    change = compare_samples(ta, tb, "ratio", alpha, threshold)
    reached = f"reached the target on {len(ta)}/{len(ok_a)} → {len(tb)}/{len(ok_b)} seeds"
    note = reached + (f"; {change.note}" if change.note and change.note != "no values to compare" else "")
    group.measures.append(Measure(TTT, "s", 1.0, change, _verdict(TTT, change), note))
    change = compare_samples(_values(ok_a, "peak_rss_mb"), _values(ok_b, "peak_rss_mb"), "ratio", alpha, threshold)
    group.measures.append(Measure(MEMORY, "MB", 1.0, change, _verdict(MEMORY, change), change.note))
    metric = _metric(ok_a + ok_b)
    if metric:
        key = f"test_{metric}"
        change = compare_samples(_values(ok_a, key), _values(ok_b, key), "difference", alpha)
        verdict = _verdict(metric, change, HIGHER_IS_BETTER.get(metric, True))
        group.measures.append(Measure(f"test {metric}", "", 1.0, change, verdict, change.note))


def _statuses(jobs: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in jobs:
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def match(a: Run, b: Run) -> tuple[list[Group], list[str], list[str]]:
    """Group both runs' jobs by cell; return the matched groups and the labels found in only one run."""
    by_host = spans_hosts(a, b)
    cells_a: dict[str, list[dict[str, Any]]] = {}
    cells_b: dict[str, list[dict[str, Any]]] = {}
    for records, cells in ((a.records, cells_a), (b.records, cells_b)):
        for r in records:
            if r.get("task") is not None and r.get("backend") is not None:
                cells.setdefault(identity(r, by_host), []).append(r)
    groups = [
        Group(k, describe(v[0], by_host), v, cells_b[k], by_host=by_host) for k, v in cells_a.items() if k in cells_b
    ]
    only_a = [label(v[0], by_host) + _seeds(v) for k, v in cells_a.items() if k not in cells_b]
    only_b = [label(v[0], by_host) + _seeds(v) for k, v in cells_b.items() if k not in cells_a]
    return groups, only_a, only_b


def _seeds(records: list[dict[str, Any]]) -> str:
    seeds = sorted({r.get("seed") for r in records if isinstance(r.get("seed"), int)})
    return f" (seeds {', '.join(map(str, seeds))})" if seeds else ""


def compare_runs(a: Run, b: Run, alpha: float = ALPHA, threshold: float = NOISE) -> Comparison:
    """Compare run A (the baseline) with run B; CompareError when no job of one matches a job of the other."""
    groups, only_a, only_b = match(a, b)
    if not groups:
        same = "same backend and options, task and parameters, grid point, mode, threads and spec"
        if spans_hosts(a, b):
            same += ", and host, as a run spans machines"
        raise CompareError(
            f"nothing to compare: no job of {a.path} matches a job of {b.path} ({same}). {a.path} has: "
            f"{_summary(only_a)}; {b.path} has: {_summary(only_b)}"
        )
    for g in groups:
        measure_group(g, a, b, alpha, threshold)
    machine, warnings = machines(a, b)
    for g in groups:
        fa = {r.get("seed"): r.get("data_fingerprint") for r in g.a}
        if any(fa.get(r.get("seed")) and r.get("data_fingerprint") not in (None, fa[r.get("seed")]) for r in g.b):
            warnings.append(f"{g.label}: the data differ between the runs (another data fingerprint)")
    return Comparison(a, b, groups, only_a, only_b, machine, warnings, alpha)


def _summary(labels: list[str], n: int = 4) -> str:
    if not labels:
        return "no jobs"
    return "; ".join(labels[:n]) + (f"; and {len(labels) - n} more" if len(labels) > n else "")


def blas_text(env: dict[str, Any]) -> str:
    """The BLAS libraries of env.json, one string (``openblas 0.3.30 Haswell``)."""
    blas = env.get("blas") or []
    return "; ".join(
        " ".join(str(x) for x in (b.get("internal_api"), b.get("version"), b.get("architecture")) if x)
        for b in blas
        if isinstance(b, dict) and (b.get("user_api") != "openmp" or len(blas) == 1)
    )


def machine_rows(env: dict[str, Any]) -> list[tuple[str, str]]:
    """What a comparison shows of one machine: CPU, cores, BLAS, matmul peak, threads, software, commit, date."""
    peak = env.get("matmul_gflops")
    versions = env.get("versions") or {}
    return [
        ("CPU", str(env.get("cpu") or "?")),
        ("cores", str(env.get("cores") or "?")),
        ("host", str(env.get("hostname") or "?")),
        ("BLAS", blas_text(env) or "?"),
        ("matmul peak GFLOP/s", f"{peak:g}" if isinstance(peak, (int, float)) else "?"),
        ("threads per worker", str(env.get("threads") or "?")),
        ("platform", str(env.get("platform") or "?")),
        ("Python", str(env.get("python") or "?")),
        ("libraries", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "?"),
        ("mlpbench commit", str(env.get("git_commit") or "unknown")),
        ("started", str(env.get("created") or "?")),
    ]


def machines(a: Run, b: Run) -> tuple[list[tuple[str, str, str, bool]], list[str]]:
    """Both machines side by side, and a warning for each difference that can explain a timing difference."""
    rows_a, rows_b = dict(machine_rows(a.env)), dict(machine_rows(b.env))
    informational = ("mlpbench commit", "started")
    rows = [(k, rows_a[k], rows_b[k], rows_a[k] != rows_b[k] and k not in informational) for k in rows_a]
    warnings = []
    if not a.env or not b.env:
        warnings.append("a run has no env.json: its machine is unknown, and differences may be the machine's")
    different = [k for k in ("CPU", "cores", "host", "BLAS", "platform") if rows_a[k] != rows_b[k]]
    if a.env and b.env and different:
        detail = "; ".join(f"{k}: {rows_a[k]} vs {rows_b[k]}" for k in different)
        warnings.append(f"the runs were made on different machines ({detail}): timing differences may be the machine's")
    pa, pb = a.env.get("matmul_gflops"), b.env.get("matmul_gflops")
    if isinstance(pa, (int, float)) and isinstance(pb, (int, float)) and pa > 0 and abs(pb / pa - 1) > PEAK_TOLERANCE:
        warnings.append(
            f"the measured matmul peak differs by {100 * (pb / pa - 1):+.0f}% ({pa:g} → {pb:g} GFLOP/s): another "
            "machine, or the same one busier during one of the runs"
        )
    for run in (a, b):
        names = hosts(run.records)
        if len(names) > 1:
            warnings.append(
                f"{run.name} ran on {len(names)} machines ({', '.join(names)}): its jobs are compared host by host, "
                "and its machine above is where the run was started"
            )
    if a.env.get("threads") != b.env.get("threads") and a.env and b.env:
        warnings.append(f"threads per worker differ ({a.env.get('threads')} vs {b.env.get('threads')})")
    va, vb = a.env.get("versions") or {}, b.env.get("versions") or {}
    changed = [f"{k} {va.get(k, '–')} → {vb.get(k, '–')}" for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k)]
    if changed and va and vb:
        warnings.append("library versions differ: " + ", ".join(changed))
    return rows, warnings


def parse_percent(text: str, option: str = "--fail-slower", allow_zero: bool = True) -> float:
    """``10%`` or ``10`` -> 0.10; ValueError (naming `option`) for anything but a non-negative finite number."""
    t = str(text).strip()
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*%?", t)
    if not m:
        raise ValueError(f"{option} {text!r}: expected a percentage like 10% or 10")
    value = float(m.group(1)) / 100.0
    if not math.isfinite(value) or (value == 0 and not allow_zero):
        raise ValueError(f"{option} {text!r}: expected a finite percentage")
    return value


def regressions(comparison: Comparison, threshold: float) -> list[tuple[Group, Measure]]:
    """Groups that got significantly slower by more than `threshold` (0.10: 10%), in epoch time or time to target.

    Significant means the verdict "slower" (p < alpha and the interval of the ratio above the noise band); "by more
    than" compares the ratio's point estimate with 1 + threshold.
    """
    out = []
    for g in comparison.groups:
        for m in g.measures:
            if m.name in (EPOCH, TTT) and m.verdict == "slower" and m.change.estimate > 1.0 + threshold:
                out.append((g, m))
    return out
