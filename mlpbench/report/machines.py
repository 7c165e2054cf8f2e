"""Where the jobs ran: how many at once and on which cores, and which machines when there were several.

Every record says where it ran: ``host``, ``cpu``, ``cores`` (the cpu ids its worker was pinned to, or
null), ``concurrency`` (how many jobs ran at once) and, on Dask, ``matmul_gflops`` (that worker's own
measured peak) and ``cores_total``. When records come from more than one host, ``host`` becomes a point
setting of every task (`grid.point_settings`): each machine's rows are ranked apart, because timings
from different machines are not comparable, and the report lists the machines (`machine_rows`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from ..env import peak_gflops
from ..values import is_finite_number
from .format import DASH, fmt_g, missing
from .grid import HOST, value_text
from .tables import status_counts

MACHINES_NOTE = (
    "The records come from {n} machines. Timings from different machines are not comparable: every task "
    "table has a host column and ranks each machine's rows on their own, and the performance profiles "
    "treat a task on each machine as a problem of its own."
)
MACHINE_COLUMNS = ["host", "cpu", "logical cores", "matmul peak GFLOP/s", "jobs"]


def hosts(records: list[dict[str, Any]]) -> list[str]:
    """The hosts of the records, in the order they first appear."""
    return list(dict.fromkeys(str(r["host"]) for r in records if r.get("host")))


def _ranges(cores: list[int]) -> str:
    """``0–3, 8`` for [0, 1, 2, 3, 8]."""
    ids = sorted({int(c) for c in cores})
    spans, start = [], None
    for i, c in enumerate(ids):
        if start is None:
            start = c
        if i + 1 == len(ids) or ids[i + 1] != c + 1:
            spans.append(str(start) if start == c else f"{start}–{c}")
            start = None
    return ", ".join(spans)


def placement_facts(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """How many jobs ran at once, and on which cores their workers were pinned."""
    placed = [r for r in records if "concurrency" in r or "cores" in r]
    if not placed:
        return []
    counts = Counter(int(r["concurrency"]) for r in placed if isinstance(r.get("concurrency"), int))
    if not counts:
        at_once = DASH
    elif len(counts) == 1:
        n = next(iter(counts))
        at_once = "1 (one job at a time)" if n == 1 else f"{n} (jobs shared the machine)"
    else:
        at_once = ", ".join(f"{n} ({k} jobs)" for n, k in sorted(counts.items())) + " (the run was resumed)"
    sets = list(dict.fromkeys(tuple(r["cores"]) for r in placed if isinstance(r.get("cores"), list) and r["cores"]))
    unpinned = sum(1 for r in placed if not r.get("cores"))
    if not sets:
        where = "not pinned (the operating system placed the workers)"
    else:
        shown = [_ranges(list(s)) for s in sets[:8]] + (["…"] if len(sets) > 8 else [])
        where = f"pinned to cores {'; '.join(shown)} (one set per concurrent worker)"
        if unpinned:
            where += f"; {unpinned} jobs not pinned"
    return [("jobs at once", at_once), ("worker cores", where)]


def host_peak(records: list[dict[str, Any]], env: dict[str, Any], host: str, threads: int | None) -> float | None:
    """A host's matmul peak with `threads` threads: the median of its records' own (Dask workers measure
    theirs), else env.json's when it describes that host."""
    mine = [r.get("matmul_gflops") for r in records if r.get("host") == host and r.get("threads") == threads]
    own = [float(v) for v in mine if is_finite_number(v)]
    if own:
        return float(np.median(own))
    return peak_gflops(env, threads) if env.get("hostname") == host else None


def host_peaks(records: list[dict[str, Any]], env: dict[str, Any]) -> dict[str, float | None]:
    """Per host, its matmul peak at the run's thread count (`host_peak`)."""
    return {host: host_peak(records, env, host, env.get("threads")) for host in hosts(records)}


def machine_rows(records: list[dict[str, Any]], env: dict[str, Any]) -> list[list[str]]:
    """One row per host (host, cpu, cores, matmul peak, jobs) when the records come from more than one."""
    names = hosts(records)
    if len(names) < 2:
        return []
    peaks = host_peaks(records, env)
    out = []
    for host in names:
        mine = [r for r in records if r.get("host") == host]
        cpu = Counter(str(r["cpu"]) for r in mine if r.get("cpu")).most_common(1)
        cores = {r.get("cores_total") for r in mine if isinstance(r.get("cores_total"), int)}
        if not cores and env.get("hostname") == host and env.get("cores"):
            cores = {env["cores"]}
        out.append(
            [
                host,
                cpu[0][0] if cpu else DASH,
                ", ".join(str(c) for c in sorted(cores)) or DASH,
                fmt_g(peaks[host]) if peaks[host] is not None else DASH,
                status_counts(pd.Series([r.get("status") for r in mine])),
            ]
        )
    return out


def apply_host_peaks(
    rows: list[dict[str, Any]], settings: list[str], records: list[dict[str, Any]], env: dict[str, Any]
) -> None:
    """Each row's share of the peak against its own machine's peak at its thread count (rows of a task split
    by host)."""
    if HOST not in settings:
        return
    i = settings.index(HOST)
    by_text = {value_text(h): h for h in hosts(records)}
    for r in rows:
        host = by_text.get(r["point"][i])
        peak = host_peak(records, env, host, r.get("threads")) if host is not None else None
        r.pop("gflops_pct", None)
        if peak and not missing(r.get("gflops")):
            r["gflops_pct"] = 100.0 * r["gflops"] / peak
