"""Runs a plan: one worker subprocess per backend, every finished job flushed to the store at once."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .env import thread_env
from .plan import BackendChoice, Job
from .registry import PluginError, Registry
from .spec import ModelSpec
from .store import ResultsStore
from .worker import SPLIT_CACHE_ENV, SplitCache

DEFAULT_TIMEOUT_S = 600.0  # per job
STARTUP_TIMEOUT_S = 180.0  # worker start-up: importing TensorFlow can take a while on a busy machine
STDERR_TAIL_LINES = 15


class WorkerDied(Exception):
    """The worker process ended without answering."""


class Worker:
    """A backend's worker subprocess and its JSON-lines pipe."""

    def __init__(self, choice: BackendChoice, backend_cls: type, threads: int, plugins: tuple[str, ...],
                 log_path: Path, extra_env: dict[str, str] | None = None) -> None:  # fmt: skip
        env = {**os.environ, **thread_env(threads), **backend_cls.worker_env(dict(choice.options)), **(extra_env or {})}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["PYTHONUNBUFFERED"] = "1"
        env["MLPBENCH_PARENT_PID"] = str(os.getpid())  # the worker ends itself when the runner is gone
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlpbench.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env,
            start_new_session=True,  # Ctrl-C reaches the runner only; the runner stops the worker
        )  # fmt: skip
        self._buffer = b""
        self.send({"type": "init", "backend": choice.name, "options": dict(choice.options), "plugins": list(plugins),
                   "threads": threads})  # fmt: skip

    def send(self, message: dict[str, Any]) -> None:
        """Write one message; a dead worker raises WorkerDied."""
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(str(exc)) from exc

    def receive(self, deadline: float) -> dict[str, Any] | None:
        """The next message, None at the deadline; WorkerDied when the pipe closes."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if not ready:
                # A child the worker forked (a data loader, say) can keep the pipe open after the
                # worker died, so the end of the pipe may never come: look at the process itself.
                if self.exit_code() is not None and not select.select([fd], [], [], 0)[0]:
                    raise WorkerDied("worker exited")
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerDied("worker closed its pipe")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            raise WorkerDied(f"unreadable message from the worker: {line[:200]!r}") from None

    def exit_code(self, wait_s: float = 0.0) -> int | None:
        """The worker's exit code (negative: killed by that signal), or None while it runs.

        The process is not reaped (WNOWAIT), so its pid, which is also its process group's
        id, cannot be reused before `stop` has killed what is left of the group.
        """
        end = time.monotonic() + wait_s
        while True:
            try:
                info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # already reaped
                return self.proc.returncode
            if info is not None:
                return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
            if time.monotonic() >= end:
                return None
            time.sleep(0.02)

    def death_reason(self) -> str:
        """Exit code or signal of a dead worker, with the tail of its stderr."""
        code = self.exit_code(wait_s=5)
        if code is None:
            how = "worker stopped answering"
        elif code < 0:
            how = f"worker killed by signal {signal.Signals(-code).name}"
            if code == -signal.SIGKILL:
                how += " (sent by another process: often the kernel's out-of-memory killer)"
        else:
            how = f"worker exited with code {code}"
        return f"{how}; last stderr lines:\n{self.stderr_tail()}"

    def stderr_tail(self) -> str:
        """The last lines the worker wrote to stderr."""
        self._log.flush()
        try:
            lines = self.log_path.read_bytes().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-STDERR_TAIL_LINES:])

    def stop(self, kill: bool = False) -> None:
        """End the worker (politely unless `kill`) and everything it started, and close its files.

        Its process group ends with it; so do descendants that left the group (a compiler's pool of
        processes in a session of its own), found before the worker goes and its children are orphaned.
        """
        if self.proc.returncode is None:
            descendants = _descendants(self.proc.pid)
            if not kill:
                try:
                    self.send({"type": "exit"})
                except WorkerDied:
                    pass
                self.exit_code(wait_s=10)
            # The worker is alive or an unreaped zombie, so its process group still exists: this
            # also ends the children it left behind.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for child in descendants:
                try:
                    child.kill()
                except Exception:  # noqa: BLE001 - already gone (psutil.NoSuchProcess) or not ours
                    pass
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self._log):
            try:
                f.close()
            except OSError:
                pass


def _descendants(pid: int) -> list[Any]:
    """Every live descendant process of `pid` (psutil handles), or [] where that cannot be read."""
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - the process is gone, or psutil cannot read it here
        return []


class Interrupted(Exception):
    """The run was stopped by SIGINT or SIGTERM; everything finished is on disk."""


Callback = Callable[[str, dict[str, Any]], None]


@dataclass
class Runner:
    """Executes a plan into a results store."""

    registry: Registry
    store: ResultsStore
    timeout_s: float = DEFAULT_TIMEOUT_S
    on_event: Callback = field(default=lambda kind, data: None)  # progress display hooks
    records: list[dict[str, Any]] = field(default_factory=list)
    _writing: bool = False  # a record is being written: a signal waits until it is on disk
    _pending_signal: str | None = None
    _stopping: bool = False  # a signal arrived: the run is shutting down
    _worker_env: dict[str, str] = field(default_factory=dict)  # what every worker of this run also gets
    _unavailable: dict[str, str | None] = field(default_factory=dict)  # per task and parameters, asked once a run

    def run(self, jobs: list[Job]) -> list[dict[str, Any]]:
        """Run every job not already finished in the store; return the new records."""
        done = self.store.finished_ids()
        pending = [j for j in jobs if j.id not in done]
        self.on_event("plan", {"jobs": pending, "skipped_done": len(jobs) - len(pending)})
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def interrupt(signum: int, frame: object) -> None:
            if self._writing or self._stopping:
                # A record is being written (it finishes first), or the run is already stopping: a
                # second Ctrl-C must not break the shutdown that saves everything.
                self._pending_signal = self._pending_signal or signal.Signals(signum).name
                return
            self._stopping = True
            raise Interrupted(signal.Signals(signum).name)

        for sig in previous:
            signal.signal(sig, interrupt)
        # Workers share the run's data splits through this directory (see worker.SplitCache).
        split_cache = tempfile.TemporaryDirectory(prefix="mlpbench-splits-")
        self._worker_env = {SPLIT_CACHE_ENV: split_cache.name}
        self._share_splits(pending, split_cache.name)
        try:
            # One worker per backend (with its options) and thread budget: threads are set before import.
            by_worker: dict[tuple[str, int], list[Job]] = {}
            for job in pending:
                by_worker.setdefault((job.backend, job.threads), []).append(job)
            for (label, _threads), backend_jobs in by_worker.items():
                self._run_backend(label, backend_jobs)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            split_cache.cleanup()
        return self.records

    # ------------------------------------------------------------------ internals
    def _task_unavailable(self, job: Job) -> str | None:
        """The task's `unavailable()` reason, asked once per task and parameters: it may read a whole data set."""
        key = json.dumps([job.task, job.task_params], sort_keys=True, default=str)
        if key not in self._unavailable:
            self._unavailable[key] = self.registry.task(job.task)(**job.task_params).unavailable()
        return self._unavailable[key]

    def _share_splits(self, jobs: list[Job], directory: str) -> None:
        """Build every split the plan needs once, here, so that no backend's worker pays for
        loading data (time or memory) and every backend trains on the very same arrays."""
        cache = SplitCache(directory)
        seen = set()
        for job in jobs:
            key = json.dumps([job.task, job.task_params, job.seed], sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
            try:
                task = self.registry.task(job.task)(**job.task_params)
                if task.share_split and not self._task_unavailable(job):
                    cache.share(task, job.seed)
            except Exception:  # noqa: BLE001 - the worker loads it again and records the error with the job
                continue

    def _finish(self, job: Job, record: dict[str, Any], worker_info: dict[str, Any] | None = None) -> None:
        identity = {k: v for k, v in job.to_message().items() if k != "return_weights"}
        full = {**identity, **(worker_info or {}), **record, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self._writing = True
        try:
            self.store.append(full)
            self.records.append(full)
        finally:
            self._writing = False
        self.on_event("job_done", full)
        if self._pending_signal:
            raise Interrupted(self._pending_signal)

    def _run_backend(self, label: str, jobs: list[Job]) -> None:
        choice = BackendChoice(jobs[0].backend_name, tuple(jobs[0].backend_options.items()))
        try:
            cls = self.registry.backend(choice.name)
        except PluginError as exc:
            for job in jobs:
                self._finish(job, {"status": "error", "error": str(exc)})
            return
        missing = cls.missing_requirements()
        if missing:
            reason = f"not installed: cannot import {', '.join(missing)}"
            for job in jobs:
                self._finish(job, {"status": "not_installed", "error": reason})
            return
        # What can be decided without a worker is decided here: no framework import for nothing.
        backend = cls(**dict(choice.options))
        runnable = []
        for job in jobs:
            why = self._task_unavailable(job)
            if why:
                self._finish(job, {"status": "unavailable", "error": why})
                continue
            why = backend.skip(ModelSpec.from_dict(job.spec))
            if why:
                self._finish(job, {"status": "skipped", "error": why})
                continue
            runnable.append(job)

        worker: Worker | None = None
        worker_info: dict[str, Any] = {}
        n_workers = 0
        start_failure: dict[str, Any] | None = None
        try:
            for job in runnable:
                if start_failure is not None:
                    # A worker that cannot start will not start for the next job either.
                    self._finish(job, start_failure)
                    continue
                if worker is None:
                    n_workers += 1
                    log = self.store.path / "logs" / f"worker-{_safe(label)}-t{jobs[0].threads}-{n_workers}.log"
                    self.on_event("worker_start", {"backend": label})
                    worker = Worker(choice, cls, jobs[0].threads, self.registry.plugin_files, log, self._worker_env)
                    try:
                        ready = worker.receive(time.monotonic() + STARTUP_TIMEOUT_S)
                    except WorkerDied:
                        ready = {"type": "init_error", "error": worker.death_reason()}
                    if ready is None:
                        ready = {"type": "init_error", "error": f"worker did not start in {STARTUP_TIMEOUT_S:.0f} s"}
                    if ready.get("type") != "ready":
                        worker.stop(kill=True)
                        worker = None
                        start_failure = {"status": "error", "error": f"worker start failed: {ready.get('error')}",
                                         "traceback": ready.get("traceback")}  # fmt: skip
                        self._finish(job, start_failure)
                        continue
                    worker_info = {"worker_import_s": ready.get("import_s"), "versions": ready.get("versions"),
                                   "blas": ready.get("blas")}  # fmt: skip
                    self.on_event("worker_ready", {"backend": label, **ready})
                if not self._run_job(worker, job, worker_info):
                    worker.stop(kill=True)
                    worker = None
        finally:
            if worker is not None:
                worker.stop(kill=True)

    def _run_job(self, worker: Worker, job: Job, worker_info: dict[str, Any]) -> bool:
        """Run one job on `worker`; False when the worker had to be abandoned."""
        self.on_event("job_start", {"job": job})
        # The epochs the worker reported: what a crashed or timed-out job leaves of its curve.
        curve: list[dict[str, Any]] = []
        try:
            worker.send({"type": "job", "job": job.to_message()})
            deadline = time.monotonic() + self.timeout_s
            while True:
                message = worker.receive(deadline)
                if message is None:
                    worker.stop(kill=True)
                    why = f"job ran past the {self.timeout_s:g} s timeout (--timeout); the worker was killed"
                    self._finish(job, {"status": "timeout", "error": why, **_partial(curve)}, worker_info)
                    return False
                if message.get("type") == "epoch":
                    curve.append({k: message.get(k) for k in ("epoch", "train_loss", "val_loss")})
                    self.on_event("epoch", {"job": job, **message})
                elif message.get("type") == "result":
                    self._finish(job, message["record"], worker_info)
                    return True
        except WorkerDied:
            reason = worker.death_reason()
            worker.stop(kill=True)
            self._finish(job, {"status": "crashed", "error": reason, **_partial(curve)}, worker_info)
            return False
        except Interrupted:
            worker.stop(kill=True)
            raise


def _partial(curve: list[dict[str, Any]]) -> dict[str, Any]:
    return {"curve": curve, "epochs_run": len(curve)}


def run_with_progress(registry: Registry, store: ResultsStore, jobs: list[Job], timeout_s: float,
                      show_progress: bool = True) -> tuple[list[dict[str, Any]], str | None]:
    """Run `jobs` with the live progress display; return the new records and the signal that
    interrupted the run (None when it finished)."""
    from .progress import Progress

    progress = Progress(enabled=show_progress)
    runner = Runner(registry=registry, store=store, timeout_s=timeout_s, on_event=progress.event)
    with progress:
        try:
            runner.run(jobs)
        except Interrupted as exc:
            return runner.records, str(exc)
    return runner.records, None


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
