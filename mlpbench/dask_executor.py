"""The Dask executor: a plan's units as tasks on a Dask cluster, every record written here as it arrives.

Each task runs one unit (a backend's share of the jobs) with the same `UnitRunner` as the local
executor, so on a Dask worker a job still runs in a backend subprocess with its thread
environment set before import, its timeout enforced by killing that subprocess, and a crash or
hang becoming a record. Records travel back through a `distributed.Queue` the moment a job ends,
and the client appends and fsyncs each one, so an interrupted run resumes like a local one. A
Dask worker that dies mid-task makes Dask run the task again elsewhere; the client keeps the
first record of every job id, so no job ever has two.

Data reaches workers without shared disk: tasks load their seeded split on the worker, and the
worker checks the data fingerprint of the plan; a csv file travels with the task and is written
to a temporary file where its path cannot be read.
"""

from __future__ import annotations

import functools
import os
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .execution import Unit, UnitRunner, full_record, group_units
from .plan import Job
from .registry import Registry, discover
from .status import Status
from .store import ResultsStore

if TYPE_CHECKING:
    from .experiment import Experiment

POLL_S = 0.2


@functools.cache
def _machine(threads: int) -> dict[str, Any]:
    """What a record says about the Dask worker's machine; its matmul peak with the job's thread count is
    measured once per worker process and thread count."""
    from . import env

    return {"matmul_gflops": round(env.matmul_gflops(threads), 2), "cores_total": os.cpu_count()}


def run_unit_task(
    jobs: list[dict[str, Any]],
    plugins: list[str],
    timeout_s: float,
    concurrency: int,
    queue_name: str,
    files: dict[str, bytes],
) -> list[str]:
    """Run one unit on this Dask worker; put every record on the queue; return the ids done.

    `files` maps a csv path to its bytes, for workers that cannot read the path.
    """
    from distributed import Queue

    queue = Queue(queue_name)
    originals = {m["id"]: Job(**m) for m in jobs}
    with tempfile.TemporaryDirectory(prefix="mlpbench-dask-") as tmp:
        sent = []
        for message in jobs:
            path = (message.get("task_params") or {}).get("path")
            if path in files and not os.access(path, os.R_OK):
                local = Path(tmp) / f"data-{abs(hash(path))}.csv"
                if not local.exists():
                    local.write_bytes(files[path])
                message = {**message, "task_params": {**message["task_params"], "path": str(local)}}
            sent.append(Job(**message))
        machines = {t: _machine(t) for t in sorted({job.threads for job in sent})}  # before any job runs
        done: list[str] = []

        def finish(job: Job, record: dict[str, Any]) -> None:
            full = full_record(originals[job.id], {**machines[job.threads], **record})
            queue.put(full)
            done.append(job.id)

        runner = UnitRunner(discover(plugins), timeout_s, Path(tmp) / "logs", finish)
        runner.run(Unit(sent, cores=None, concurrency=concurrency))
    return done


def _client(experiment: Experiment) -> tuple[Any, Any]:
    """A client of the experiment's scheduler, or of a LocalCluster of `jobs` single-threaded workers."""
    from distributed import Client, LocalCluster

    if experiment.scheduler_file:
        return Client(scheduler_file=experiment.scheduler_file, timeout="30s"), None
    if experiment.scheduler:
        return Client(experiment.scheduler, timeout="30s"), None
    cluster = LocalCluster(n_workers=experiment.jobs, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), cluster


def run_on_dask(
    registry: Registry, store: ResultsStore, jobs: list[Job], experiment: Experiment, show_progress: bool = False
) -> tuple[list[dict[str, Any]], str | None]:
    """Run the pending jobs on Dask; return the new records and the signal that stopped the run (or None)."""
    from distributed import Queue

    from .progress import Progress

    done = store.finished_ids()
    pending = [j for j in jobs if j.id not in done]
    stopped: list[str] = []

    def interrupt(signum: int, frame: object) -> None:
        if not stopped:
            stopped.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    records: list[dict[str, Any]] = []
    progress = Progress(enabled=show_progress)
    try:
        client, cluster = _client(experiment)
    except (OSError, TimeoutError) as exc:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise OSError(f"cannot reach the Dask scheduler: {exc}") from exc
    try:
        with progress:
            progress.event("plan", {"jobs": pending, "skipped_done": len(jobs) - len(pending)})
            slots = max(1, sum(client.nthreads().values()))
            queue = Queue(f"mlpbench-{uuid.uuid4().hex}", client=client)
            files = _travelling_files(pending)
            units = group_units(pending, slots)
            futures = {
                client.submit(
                    run_unit_task,
                    [j.to_message() for j in unit],
                    list(experiment.plugins),
                    experiment.timeout_s,
                    slots,
                    queue.name,
                    files,
                    pure=False,
                    retries=2,
                ): unit
                for unit in units
            }
            written = set(done)

            def write(record: dict[str, Any]) -> None:
                if record["id"] in written:  # a retried task's second record of a job: the first one stands
                    return
                written.add(record["id"])
                store.append(record)
                records.append(record)
                progress.event("job_done", record)

            while futures and not stopped:
                for record in _drain(queue):
                    write(record)
                for future in [f for f in futures if f.done()]:
                    unit = futures.pop(future)
                    for record in _drain(queue):
                        write(record)
                    if future.status != "finished":  # the task itself failed (after Dask's retries)
                        why = f"the Dask task failed: {future.exception()!r}"
                        for job in unit:
                            if job.id not in written:
                                write(full_record(job, {"status": Status.ERROR, "error": why}))
                time.sleep(POLL_S)
            if stopped:
                client.cancel(list(futures))  # what is queued never starts; running tasks' results are dropped
            for record in _drain(queue):
                write(record)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        client.close()
        if cluster is not None:
            cluster.close()
    return records, (stopped[0] if stopped else None)


def _drain(queue: Any) -> list[dict[str, Any]]:
    """Every record waiting on the queue, without blocking."""
    out = []
    while True:
        try:
            size = queue.qsize()
        except Exception:  # noqa: BLE001 - the scheduler went away: nothing more will arrive
            return out
        if not size:
            return out
        out += queue.get(batch=size)


def _travelling_files(jobs: list[Job]) -> dict[str, bytes]:
    """The csv files the plan reads, by path, so workers without the file get its bytes."""
    files = {}
    for job in jobs:
        path = (job.task_params or {}).get("path")
        if path and path not in files and os.path.isfile(path):
            files[path] = Path(path).read_bytes()
    return files
