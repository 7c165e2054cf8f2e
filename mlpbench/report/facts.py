"""The facts the reports list as text: what ran, on which machine and software, parity and scaling rows."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

import pandas as pd

from .format import DASH, fmt_g, missing, threads_text
from .machines import hosts, placement_facts
from .tables import num, status_counts

if TYPE_CHECKING:
    from .model import Report


def backend_libraries(records: list[dict[str, Any]], backend: str) -> dict[str, list[str]]:
    """The libraries `backend` required, as its workers reported them: name -> every version seen.

    Each record carries ``versions``, read by the worker from the backend's ``requires`` (built-in and
    plugin backends alike). A run resumed after an upgrade can have seen more than one version.
    """
    out: dict[str, list[str]] = {}
    for r in records:
        if r.get("backend") == backend and isinstance(r.get("versions"), dict):
            for name, version in r["versions"].items():
                seen = out.setdefault(str(name), [])
                if str(version) not in seen:
                    seen.append(str(version))
    return out


def _library_text(name: str, versions: list[str]) -> str:
    return f"{name} {' / '.join(versions)}"


def backend_facts(report: Report) -> list[dict[str, str]]:
    """Per backend: implementation, options, library versions, jobs."""
    out = []
    for b in report.backends:
        recs = [r for r in report.records if r.get("backend") == b]
        first = recs[0] if recs else {}
        options = first.get("backend_options") or {}
        libraries = backend_libraries(report.records, b)
        out.append(
            {
                "backend": b,
                "implementation": str(first.get("backend_name") or b),
                "options": ", ".join(f"{k}={v}" for k, v in options.items()) or DASH,
                "versions": ", ".join(_library_text(k, v) for k, v in libraries.items()) or DASH,
                "jobs": status_counts(pd.Series([r.get("status") for r in recs])),
            }
        )
    return out


def required_libraries(report: Report) -> str:
    """Every library the run's backends required, with its versions and the backends that needed it."""
    users: dict[tuple[str, str], list[str]] = {}
    for b in report.backends:
        for name, versions in backend_libraries(report.records, b).items():
            users.setdefault((name, " / ".join(versions)), []).append(b)
    return "; ".join(f"{name} {version} ({', '.join(bs)})" for (name, version), bs in sorted(users.items()))


def run_facts(report: Report) -> list[tuple[str, str]]:
    """What ran and when."""
    env, config, runs = report.results.env or {}, report.results.config or {}, report.results.runs
    seeds = config.get("seeds") or sorted(runs["seed"].dropna().astype(int).unique().tolist())
    per_task = {t: sorted({int(v) for v in num(runs[runs["task"] == t], "spec_epochs").dropna()}) for t in report.tasks}
    if len({tuple(v) for v in per_task.values() if v}) <= 1:
        epochs = next((", ".join(map(str, v)) for v in per_task.values() if v), DASH)
    else:
        epochs = ", ".join(f"{t} {'/'.join(map(str, v))}" for t, v in per_task.items() if v)
    finished = [str(r["finished_at"]) for r in report.records if r.get("finished_at")]
    facts = [
        ("results", str(report.path)),
        ("started", when(env.get("created"))),
        ("last job finished", when(max(finished)) if finished else DASH),
        ("jobs", f"{len(runs)} ({status_counts(runs['status'])})" if len(runs) else "0"),
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


def when(stamp: Any) -> str:
    """A stored timestamp as ``YYYY-mm-dd HH:MM:SS +hh:mm``."""
    if not stamp:
        return DASH
    try:
        t = _dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f" {t.strftime('%z')[:3]}:{t.strftime('%z')[3:]}" if t.tzinfo else "")


def machine_facts(report: Report) -> list[tuple[str, str]]:
    """The machine and software, from env.json, and the libraries the backends' workers reported."""
    env = report.results.env or {}
    required = [("libraries the backends required", required_libraries(report) or DASH)]
    placed, n_hosts = placement_facts(report.records), len(hosts(report.records))
    if n_hosts > 1:
        placed.append(
            (
                "machines",
                f"{n_hosts}, listed below; the other rows here describe the machine the run started on (env.json)",
            )
        )
    if not env:
        return [("environment", "not recorded (no env.json)"), *placed, *required]
    blas = env.get("blas") or []
    blas_text = "; ".join(
        " ".join(str(x) for x in (b.get("internal_api"), b.get("version"), b.get("architecture")) if x)
        for b in blas
        if b.get("user_api") != "openmp" or len(blas) == 1
    )
    threads = env.get("thread_env") or {}
    memory = f", {env['memory_gb']} GB memory" if env.get("memory_gb") else ""
    peak = (
        f"{env['matmul_gflops']:g} GFLOP/s ({env.get('matmul_gflops_note', '')})" if env.get("matmul_gflops") else DASH
    )
    by_threads = env.get("matmul_gflops_by_threads") or {}
    if len(by_threads) > 1:  # a sweep over threads: each job's share is against its own thread count's peak
        shown = ", ".join(f"{v:g} GFLOP/s with {threads_text(t)}" for t, v in by_threads.items())
        peak = f"{shown} ({env.get('matmul_gflops_note', '')})"
    return [
        ("CPU", f"{env.get('cpu', DASH)}, {env.get('cores', '?')} logical cores{memory}"),
        ("threads per worker", str(env.get("threads", DASH))),
        *placed,
        ("thread environment", ", ".join(f"{k}={v}" for k, v in sorted(threads.items())) or DASH),
        ("BLAS", blas_text or DASH),
        ("matmul peak", peak),
        ("platform", f"{env.get('platform', DASH)}, Python {env.get('python', DASH)}"),
        ("libraries", ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items()) or DASH),
        *required,
        ("mlpbench commit", str(env.get("git_commit") or "unknown (not a git checkout)")),
    ]


PARITY_COLUMNS = [
    ("backend", "backend"),
    ("task", "task"),
    ("optimizer", "optimizer"),
    ("batch_norm", "batch norm"),
    ("max_rel_loss_diff", "max rel. loss diff"),
    ("max_rel_weight_diff", "max rel. weight diff"),
    ("target", "target"),
    ("within_target", "within target"),
    ("note", "note"),
]


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


SCALING_COLUMNS = [
    "backend",
    "samples",
    "width",
    "GFLOP/epoch",
    "epoch time s",
    "train GFLOP/s",
    "% of peak",
    "log-log slope",
]


def scaling_cells(row: dict[str, Any]) -> list[str]:
    """Display strings of one scaling.json entry."""
    pct = row.get("fraction_of_peak")
    return [
        str(row.get("series") or row.get("backend")),  # the backend, with its thread count in a sweep over threads
        f"{row.get('n_samples', 0):,}",
        str(row.get("width")),
        fmt_g((row.get("flops_per_epoch") or 0) / 1e9, 3),
        fmt_g(row.get("epoch_time_s"), 3),
        fmt_g(row.get("gflops"), 3),
        DASH if missing(pct) else f"{100 * pct:.3g}",
        fmt_g(row.get("slope"), 3),
    ]


def reason(record: dict[str, Any]) -> str:
    """Why a job did not finish, as its record says."""
    return str(record.get("error") or "(no reason recorded)")
