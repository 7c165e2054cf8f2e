"""The worker process: one per backend, started by the runner with the thread environment already set.

It imports the framework once, then runs jobs sent as JSON lines on stdin and answers
on a private pipe (the original stdout), so whatever a framework prints cannot corrupt
the protocol: fd 1 is pointed at stderr, which the runner keeps in a log file.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import psutil

from ..env import cpu_model
from ..plan import data_fingerprint
from ..registry import discover
from ..task import Task
from .execute import _tail, execute
from .protocol import decode, encode
from .splits import SPLIT_CACHE_ENV, SplitCache


def _die_with_parent() -> None:
    """End this process, and every process it started, when the runner that started it is gone.

    Without this, a worker stuck in a job (and a compiler's pool of processes under it) would
    outlive a killed run, even one killed with SIGKILL. Linux only: the kernel sends SIGTERM
    when the *thread* that started the worker ends (workers are started from a thread that
    outlives them), and the handler takes the worker's descendants and group with it; elsewhere
    the worker ends at its next write to the closed pipe.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            signal.signal(signal.SIGTERM, _end_with_descendants)
            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        except (OSError, AttributeError):
            pass
    parent = os.environ.get("MLPBENCH_PARENT_PID")
    if parent and os.getppid() != int(parent):  # the runner died before prctl took effect
        _end_with_descendants()


def _end_with_descendants(*_: object) -> None:
    """Kill every descendant (also those in sessions of their own), then this process group.

    psutil is imported with this module, not here: a handler that imports can be entered again
    by a second signal halfway through the import.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass
    except psutil.Error:
        pass  # the group kill below still runs
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os._exit(1)


def main() -> None:
    """Entry point of ``python -m mlpbench.worker``."""
    _die_with_parent()
    # Keep the protocol on a private copy of stdout; anything printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(message: dict[str, Any]) -> None:
        out.write(encode(message))
        out.flush()

    init = decode(sys.stdin.readline())
    t0 = time.perf_counter()
    try:
        registry = discover(init.get("plugins") or [])
        backend = registry.backend(init["backend"])(**(init.get("options") or {}))
        threads = int(init["threads"])
        backend.prepare(threads)
        from threadpoolctl import threadpool_info, threadpool_limits

        limiter = threadpool_limits(limits=threads)  # BLAS under NumPy and scikit-learn  # noqa: F841
        blas = [{"internal_api": i.get("internal_api"), "num_threads": i.get("num_threads")} for i in threadpool_info()]
    except Exception as exc:
        send({"type": "init_error", "error": f"{type(exc).__name__}: {exc}", "traceback": _tail(exc)})
        return
    send(
        {
            "type": "ready",
            "import_s": time.perf_counter() - t0,
            "pid": os.getpid(),
            "versions": backend.versions(),
            "cpu": cpu_model(),
            "blas": blas,
        }
    )

    splits = SplitCache(os.environ.get(SPLIT_CACHE_ENV))
    tasks: dict[str, Task] = {}
    for line in sys.stdin:
        message = decode(line)
        if message.get("type") == "exit":
            break
        job = message["job"]
        try:
            key = json.dumps([job["task"], job.get("task_params") or {}], sort_keys=True)
            if key not in tasks:
                tasks[key] = registry.task(job["task"])(**(job.get("task_params") or {}))
            task = tasks[key]
            split = splits.get(task, int(job["seed"]))
            expected = job.get("data_fingerprint")
            if expected and data_fingerprint(split) != expected:
                send(
                    {
                        "type": "result",
                        "id": job["id"],
                        "record": {
                            "status": "error",
                            "error": f"the data of task {job['task']!r} here (fingerprint "
                            f"{data_fingerprint(split)}) is not the data the plan was made on ({expected}): results on "
                            "other data would be mixed with the run's; make the same data available, or start a "
                            "new run",
                        },
                    }
                )
                continue
        except Exception as exc:
            send(
                {
                    "type": "result",
                    "id": job["id"],
                    "record": {
                        "status": "error",
                        "error": f"loading task {job['task']!r} failed: {type(exc).__name__}: {exc}",
                        "traceback": _tail(exc),
                    },
                }
            )
            continue
        record = execute(backend, task, split, job, emit=send)
        try:
            send({"type": "result", "id": job["id"], "record": record})
        except (TypeError, ValueError) as exc:  # something in the record is not JSON: say so, keep going
            send(
                {
                    "type": "result",
                    "id": job["id"],
                    "record": {
                        "status": "error",
                        "error": f"the job's record could not be sent: {type(exc).__name__}: {exc}",
                    },
                }
            )
