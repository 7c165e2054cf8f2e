"""The local executor: a plan's units in worker subprocesses on this machine, N at once on disjoint cores.

Every finished job is appended (and fsynced) to the results store the moment it ends, so an
interrupted run loses nothing and ``--resume`` runs only what is missing. ``--jobs 1`` (the
default) runs one worker at a time, which gives the cleanest timings; with ``--jobs N`` each
concurrent worker is pinned to a core set of its own, so concurrent jobs do not steal each
other's cores (they still share caches and memory bandwidth, which the records say).
"""

from __future__ import annotations

import json
import queue
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .execution import Unit, UnitRunner, full_record, group_units
from .plan import Job
from .registry import Registry
from .store import ResultsStore
from .worker import SPLIT_CACHE_ENV, SplitCache
from .workerproc import pinned_cores

DEFAULT_TIMEOUT_S = 600.0  # per job


class Interrupted(Exception):
    """The run was stopped by SIGINT or SIGTERM; everything finished is on disk."""


Callback = Callable[[str, dict[str, Any]], None]


def core_sets(slots: int, threads: int) -> list[list[int] | None]:
    """Disjoint core sets of `threads` cores for `slots` concurrent workers (None: no pinning).

    One slot is not pinned (the worker may use every core; its thread budget caps it), nor are
    slots that do not fit (an experiment validated with ``oversubscribe``).
    """
    cores = pinned_cores()
    if slots == 1 or cores is None or slots * threads > len(cores):
        return [None] * slots
    return [cores[i * threads : (i + 1) * threads] for i in range(slots)]


@dataclass
class Runner:
    """Executes a plan into a results store, `jobs` workers at a time."""

    registry: Registry
    store: ResultsStore
    timeout_s: float = DEFAULT_TIMEOUT_S
    jobs: int = 1  # workers at once
    on_event: Callback = field(default=lambda kind, data: None)  # progress display hooks
    split_dir: str | None = None  # the run's split cache (see worker.SplitCache); None: a directory of its own
    records: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, jobs: list[Job]) -> list[dict[str, Any]]:
        """Run every job not already finished in the store; return the new records."""
        done = self.store.finished_ids()
        pending = [j for j in jobs if j.id not in done]
        self.on_event("plan", {"jobs": pending, "skipped_done": len(jobs) - len(pending)})
        threads = max((j.threads for j in pending), default=1)
        slots = core_sets(self.jobs, threads)
        # Workers share the run's data splits through this directory (see worker.SplitCache).
        own = tempfile.TemporaryDirectory(prefix="mlpbench-splits-") if self.split_dir is None else None
        split_dir = self.split_dir if own is None else own.name
        units = UnitRunner(
            self.registry,
            self.timeout_s,
            self.store.path / "logs",
            self._finish,
            self._event,
            {SPLIT_CACHE_ENV: split_dir},
        )
        stopped: list[str] = []

        def interrupt(signum: int, frame: object) -> None:
            # Only flags: the slot threads finish writing what they write, and stop at the next message.
            if not stopped:
                stopped.append(signal.Signals(signum).name)
                units.stop.set()

        previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._share_splits(units, pending, split_dir)
            work: queue.Queue[list[Job]] = queue.Queue()
            for part in group_units(pending, len(slots)):
                work.put(part)

            failures: list[BaseException] = []

            def slot(cores: list[int] | None) -> None:
                try:
                    while not units.stop.is_set():
                        try:
                            part = work.get_nowait()
                        except queue.Empty:
                            return
                        units.run(Unit(part, cores=cores, concurrency=len(slots)))
                except BaseException as exc:  # noqa: BLE001 - a full disk, say: the main thread re-raises it
                    failures.append(exc)
                    units.stop.set()

            workers = [threading.Thread(target=slot, args=(c,), name=f"slot-{i}") for i, c in enumerate(slots)]
            for w in workers:
                w.start()
            while any(w.is_alive() for w in workers):
                for w in workers:
                    w.join(timeout=0.2)
                if units.stop.is_set():
                    units.kill_all()  # the running jobs end now, without records; finished ones are on disk
            for w in workers:
                w.join()
            if failures:
                raise failures[0]
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if own is not None:
                own.cleanup()
        if stopped:
            raise Interrupted(stopped[0])
        return self.records

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            self.on_event(kind, data)

    def _finish(self, job: Job, record: dict[str, Any]) -> None:
        full = full_record(job, record)
        with self._lock:
            self.store.append(full)
            self.records.append(full)
            self.on_event("job_done", full)

    def _share_splits(self, units: UnitRunner, jobs: list[Job], directory: str) -> None:
        """Build every split the plan needs once, here, so that no backend's worker pays for
        loading data (time or memory) and every backend trains on the very same arrays.
        Splits the plan already shared into the directory are not built again."""
        cache = SplitCache(directory)
        seen = set()
        for job in jobs:
            key = json.dumps([job.task, job.task_params, job.seed], sort_keys=True, default=str)
            if key in seen or units.stop.is_set():
                continue
            seen.add(key)
            try:
                task = self.registry.task(job.task)(**job.task_params)
                if task.share_split and not units.task_unavailable(job):
                    cache.share(task, job.seed)
            except Exception:  # noqa: BLE001 - the worker loads it again and records the error with the job
                continue


def run_with_progress(
    registry: Registry,
    store: ResultsStore,
    jobs: list[Job],
    timeout_s: float,
    show_progress: bool = True,
    concurrency: int = 1,
    split_dir: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Run `jobs` with the live progress display; return the new records and the signal that
    interrupted the run (None when it finished)."""
    from .progress import Progress

    progress = Progress(enabled=show_progress)
    runner = Runner(
        registry=registry,
        store=store,
        timeout_s=timeout_s,
        jobs=concurrency,
        on_event=progress.event,
        split_dir=split_dir,
    )
    with progress:
        try:
            runner.run(jobs)
        except Interrupted as exc:
            return runner.records, str(exc)
    return runner.records, None
