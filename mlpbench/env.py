"""The machine and software a run was measured on, and the thread environment every worker gets."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .values import is_finite_number

# Distributions whose versions are recorded when installed (read from metadata, never imported).
_TRACKED = (
    "numpy",
    "pandas",
    "scikit-learn",
    "torch",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "jax",
    "jaxlib",
    "threadpoolctl",
    "matplotlib",
)

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def thread_env(threads: int) -> dict[str, str]:
    """Variables that cap every thread pool at `threads`; set before any framework is imported."""
    env = {name: str(threads) for name in THREAD_VARIABLES}
    env["TF_NUM_INTEROP_THREADS"] = "1"  # ops of a small MLP are sequential; extra inter-op threads only contend
    return env


def cpu_model() -> str:
    """The processor's model name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info(threads: int | None = None) -> list[dict[str, Any]]:
    """NumPy's BLAS/OpenMP libraries as threadpoolctl sees them, with their thread counts as a worker with
    `threads` threads runs them (a worker limits them to its budget; this process may not have)."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "version", "num_threads", "threading_layer", "architecture")
    if threads is None:
        return [{k: info.get(k) for k in keys} for info in threadpool_info()]
    with threadpool_limits(limits=threads):
        return [{k: info.get(k) for k in keys} for info in threadpool_info()]


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the mlpbench checkout (with "+dirty" for local changes), or None outside git."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Installed versions of the tracked distributions."""
    out = {"python": platform.python_version()}
    for dist in _TRACKED:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def matmul_gflops(threads: int, n: int = 1024, dtype: str = "float32", repeats: int = 5) -> float:
    """The machine's measured float32 matrix-multiply throughput (best of `repeats`) with `threads` threads."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    with threadpool_limits(limits=threads):
        np.matmul(a, b, out=out)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def _measure_peaks(counts: Iterable[int]) -> dict[str, float]:
    """`matmul_gflops` at each thread count, keyed by the count as text (as env.json has them)."""
    return {str(t): round(matmul_gflops(t), 2) for t in sorted(set(counts))}


def peak_gflops(env: dict[str, Any], threads: int | None = None) -> float | None:
    """The matmul peak env.json measured with `threads` threads (the run's own thread count if None).

    None when that thread count was not measured: a share of another thread count's peak would mislead.
    """
    by_threads = env.get("matmul_gflops_by_threads") or {}
    if threads is not None and str(threads) in by_threads:
        return float(by_threads[str(threads)])
    if threads is None or threads == env.get("threads"):
        peak = env.get("matmul_gflops")
        return float(peak) if is_finite_number(peak) else None
    return None


def collect(threads: int, measure_peak: bool = True, peak_threads: Iterable[int] = ()) -> dict[str, Any]:
    """Everything env.json records about this machine and run.

    The matmul peak is measured with `threads` threads and, when jobs run with other thread counts
    (a grid over threads), with each of those too (``matmul_gflops_by_threads``).
    """
    env: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "thread_env": thread_env(threads),
        "versions": versions(),
        "blas": blas_info(threads),
        "git_commit": git_commit(),
    }
    try:
        import psutil

        env["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    if measure_peak:
        peaks = _measure_peaks({threads, *peak_threads})
        env["matmul_gflops"] = peaks[str(threads)]
        env["matmul_gflops_note"] = "float32 1024x1024 matmul, best of 5, NumPy BLAS, same thread budget as jobs"
        if len(peaks) > 1:
            env["matmul_gflops_by_threads"] = peaks
    return env


def remeasure_peak(env: dict[str, Any]) -> dict[str, Any]:
    """`env` with its matmul peaks measured again (after the jobs) and each raised to the better of the two.

    A best-of-5 burst at the start of a run catches the machine in whatever state it is in then; on a
    shared or virtual machine that drifts by tens of percent within minutes, and a low start made
    jobs read as more than 100% of the peak. The best of both measurements is closer to what the
    machine can do; both are kept (``matmul_gflops_start``, ``matmul_gflops_end``).
    """
    if not is_finite_number(env.get("matmul_gflops")) or "matmul_gflops_end" in env:
        return env
    out = dict(env)
    threads = int(env.get("threads") or 1)
    by_threads = env.get("matmul_gflops_by_threads") or {str(threads): env["matmul_gflops"]}
    end = _measure_peaks(int(t) for t in by_threads)
    out["matmul_gflops_start"], out["matmul_gflops_end"] = env["matmul_gflops"], end[str(threads)]
    out["matmul_gflops"] = max(env["matmul_gflops"], end[str(threads)])
    if "matmul_gflops_by_threads" in env:
        out["matmul_gflops_start_by_threads"], out["matmul_gflops_end_by_threads"] = by_threads, end
        out["matmul_gflops_by_threads"] = {t: max(v, end[t]) for t, v in by_threads.items()}
    out["matmul_gflops_note"] = (
        "float32 1024x1024 matmul, NumPy BLAS, same thread budget as jobs: the better of a best of 5 before "
        "and a best of 5 after the jobs"
    )
    return out
