"""One unit of work: jobs of one backend (with its options) and thread budget, in one worker subprocess.

Every executor runs units: the local one in threads of this process, the Dask one inside a task
on a Dask worker. A unit turns every way a job can end (a result, a crash, a hang past its timeout,
a worker that cannot start, a framework that is not installed) into exactly one record, handed
to `finish`; the executor decides where records go.
"""

from __future__ import annotations

import json
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .choices import BackendChoice
from .plan import Job
from .registry import PluginError, Registry
from .spec import ModelSpec
from .status import Status
from .workerproc import STARTUP_TIMEOUT_S, Worker, WorkerDied

Finish = Callable[[Job, dict[str, Any]], None]
Event = Callable[[str, dict[str, Any]], None]


class Stopped(Exception):
    """The executor asked the unit to stop (a signal): the running job gets no record."""


@dataclass
class Unit:
    """Jobs that share one worker: the same backend label and thread budget."""

    jobs: list[Job]
    cores: list[int] | None = None  # pinned to these, or None
    concurrency: int = 1  # how many units ran at once beside this one, itself included

    @property
    def label(self) -> str:
        """The backend label of the unit's jobs."""
        return self.jobs[0].backend


def full_record(job: Job, record: dict[str, Any], worker_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """A job's record as stored: its identity, where it ran, and what the worker measured."""
    identity = {k: v for k, v in job.to_message().items() if k != "return_weights"}
    return {**identity, **(worker_info or {}), **record, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def group_units(jobs: list[Job], slots: int) -> list[list[Job]]:
    """The jobs cut into units: one per backend label and thread budget, each split `slots` ways.

    With one slot a backend's jobs share one worker (one framework import); with more, each
    backend's jobs are dealt round-robin so that `slots` workers can run them at once.
    """
    groups: dict[tuple[str, int], list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.backend, job.threads), []).append(job)
    units = []
    for group in groups.values():
        parts = min(slots, len(group))
        units += [group[i::parts] for i in range(parts)]
    return units


@dataclass
class UnitRunner:
    """Runs units of one run; the same object serves every unit (it caches what tasks say about themselves)."""

    registry: Registry
    timeout_s: float
    log_dir: Path
    finish: Finish
    on_event: Event = field(default=lambda kind, data: None)
    worker_env: dict[str, str] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    _unavailable: dict[str, str | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _active: set[Worker] = field(default_factory=set)
    _started: dict[str, int] = field(default_factory=dict)

    def kill_all(self) -> None:
        """Stop every running unit now (its running job gets no record)."""
        self.stop.set()
        with self._lock:
            active = list(self._active)
        for worker in active:
            worker.stop(kill=True)

    def task_unavailable(self, job: Job) -> str | None:
        """The task's `unavailable()` reason, asked once per task and parameters: it may read a whole data set."""
        key = json.dumps([job.task, job.task_params], sort_keys=True, default=str)
        with self._lock:
            if key not in self._unavailable:
                self._unavailable[key] = self.registry.task(job.task)(**job.task_params).unavailable()
            return self._unavailable[key]

    def run(self, unit: Unit) -> None:
        """Every job of `unit`, each ending in exactly one call of `finish` (unless stopped)."""
        first = unit.jobs[0]
        choice = BackendChoice(first.backend_name, tuple(first.backend_options.items()))
        where = {"host": platform.node(), "cores": unit.cores, "concurrency": unit.concurrency}
        try:
            cls = self.registry.backend(choice.name)
        except PluginError as exc:
            for job in unit.jobs:
                self.finish(job, {**where, "status": Status.ERROR, "error": str(exc)})
            return
        missing = cls.missing_requirements()
        if missing:
            reason = f"not installed: cannot import {', '.join(missing)}"
            for job in unit.jobs:
                self.finish(job, {**where, "status": Status.NOT_INSTALLED, "error": reason})
            return
        # What can be decided without a worker is decided here: no framework import for nothing.
        backend = cls(**dict(choice.options))
        runnable = []
        for job in unit.jobs:
            why = self.task_unavailable(job)
            if why:
                self.finish(job, {**where, "status": Status.UNAVAILABLE, "error": why})
                continue
            spec = ModelSpec.from_dict(job.spec)
            why = backend.skip(spec) or backend.skip_mode(spec, job.mode)
            if why:
                self.finish(job, {**where, "status": Status.SKIPPED, "error": why})
                continue
            runnable.append(job)
        self._run_in_workers(unit, choice, cls, runnable, where)

    def _start(self, unit: Unit, choice: BackendChoice, cls: type, info: dict[str, Any]) -> tuple[Worker | None, dict]:
        with self._lock:  # numbered per backend, in start order: worker-<label>-t<threads>-<n>.log
            n = self._started[unit.label] = self._started.get(unit.label, 0) + 1
        log = self.log_dir / f"worker-{_safe(unit.label)}-t{unit.jobs[0].threads}-{n}.log"
        self.on_event("worker_start", {"backend": unit.label})
        worker = Worker(
            choice, cls, unit.jobs[0].threads, self.registry.plugin_files, log, self.worker_env, cores=unit.cores
        )
        with self._lock:
            self._active.add(worker)
        try:
            ready = worker.receive(time.monotonic() + STARTUP_TIMEOUT_S)
        except WorkerDied:
            if self.stop.is_set():  # stopped while it started (Ctrl-C): not a failure of the backend
                raise Stopped from None
            ready = {"type": "init_error", "error": worker.death_reason()}
        if ready is None:
            ready = {"type": "init_error", "error": f"worker did not start in {STARTUP_TIMEOUT_S:.0f} s"}
        if ready.get("type") != "ready":
            self._drop(worker)
            failure = {
                **info,
                "status": Status.ERROR,
                "error": f"worker start failed: {ready.get('error')}",
                "traceback": ready.get("traceback"),
            }
            return None, failure
        self.on_event("worker_ready", {"backend": unit.label, **ready})
        return worker, {
            **info,
            "worker_import_s": ready.get("import_s"),
            "versions": ready.get("versions"),
            "blas": ready.get("blas"),
            "cpu": ready.get("cpu"),
        }

    def _drop(self, worker: Worker) -> None:
        worker.stop(kill=True)
        with self._lock:
            self._active.discard(worker)

    def _run_in_workers(self, unit: Unit, choice: BackendChoice, cls: type, jobs: list[Job], where: dict) -> None:
        worker: Worker | None = None
        info = dict(where)
        failure: dict[str, Any] | None = None
        try:
            for job in jobs:
                if self.stop.is_set():
                    return
                if failure is not None:  # a worker that cannot start will not start for the next job either
                    self.finish(job, failure)
                    continue
                if worker is None:
                    worker, info = self._start(unit, choice, cls, where)
                    if worker is None:
                        if self.stop.is_set():
                            return
                        failure = info
                        self.finish(job, failure)
                        continue
                if not self._run_job(worker, job, info):
                    self._drop(worker)
                    worker = None
        except Stopped:
            return
        finally:
            if worker is not None:
                self._drop(worker)

    def _run_job(self, worker: Worker, job: Job, info: dict[str, Any]) -> bool:
        """Run one job on `worker`; False when the worker had to be abandoned."""
        self.on_event("job_start", {"job": job})
        # The epochs the worker reported: what a crashed or timed-out job leaves of its curve.
        curve: list[dict[str, Any]] = []
        try:
            worker.send({"type": "job", "job": job.to_message()})
            deadline = time.monotonic() + self.timeout_s
            while True:
                message = worker.receive(deadline)
                if self.stop.is_set():
                    raise Stopped
                if message is None:
                    worker.stop(kill=True)
                    why = f"job ran past the {self.timeout_s:g} s timeout (--timeout); the worker was killed"
                    self.finish(job, {**info, "status": Status.TIMEOUT, "error": why, **_partial(curve)})
                    return False
                if message.get("type") == "epoch":
                    curve.append({k: message.get(k) for k in ("epoch", "train_loss", "val_loss")})
                    self.on_event("epoch", {"job": job, **message})
                elif message.get("type") == "result":
                    self.finish(job, {**info, **message["record"]})
                    return True
        except WorkerDied:
            if self.stop.is_set():
                raise Stopped from None
            reason = worker.death_reason()
            worker.stop(kill=True)
            self.finish(job, {**info, "status": Status.CRASHED, "error": reason, **_partial(curve)})
            return False


def _partial(curve: list[dict[str, Any]]) -> dict[str, Any]:
    return {"curve": curve, "epochs_run": len(curve)}


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
