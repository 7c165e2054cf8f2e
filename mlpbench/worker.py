"""The worker process: one per backend, started by the runner with the thread environment already set.

It imports the framework once, then runs jobs sent as JSON lines on stdin and answers
on a private pipe (the original stdout), so whatever a framework prints cannot corrupt
the protocol: fd 1 is pointed at stderr, which the runner keeps in a log file.

Messages in:  {"type": "init", "backend", "options", "plugins", "threads"}, {"type": "job", "job": {...}}
Messages out: {"type": "ready", ...} | {"type": "init_error", ...}, {"type": "epoch", ...}, {"type": "result", ...}
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from . import flops, metrics
from .backend import Backend
from .controlled import batch_order, initial_weights
from .registry import discover
from .spec import ModelSpec
from .task import Split, Task

GRID_SIZE = 60  # points per axis of the decision-boundary grid stored for two-feature classification tasks


class Diverged(Exception):
    """A non-finite loss or prediction."""


class PeakRSS:
    """Peak resident memory of this process over a window.

    Where Linux allows it, the kernel's own high-water mark (VmHWM) is reset when the window
    opens (``/proc/self/clear_refs``) and read when it closes: exact, and nothing runs meanwhile.
    Elsewhere a thread samples the RSS every few milliseconds; its GIL hand-offs slow the timed
    code down (measured: about 12% of a 4 ms NumPy epoch on digits).
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def current() -> int:
        """Resident set size in bytes."""
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    @staticmethod
    def high_water_mark() -> int | None:
        """The kernel's peak RSS of this process in bytes (VmHWM), or None where there is none."""
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
        return None

    def __enter__(self) -> PeakRSS:
        self.peak = self.current()
        self._thread = None
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
            self._hwm = self.high_water_mark() is not None
        except OSError:
            self._hwm = False
        if not self._hwm:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.current())

    def __exit__(self, *exc: object) -> None:
        if self._thread:
            self._stop.set()
            self._thread.join()
        self.peak = max(self.peak, self.current(), (self.high_water_mark() or 0) if self._hwm else 0)


def _finite(name: str, value: float | np.ndarray) -> None:
    if not np.all(np.isfinite(value)):
        raise Diverged(f"non-finite {name}")


def _tail(exc: BaseException, lines: int = 12) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-lines:])


def _decision_grid(backend: Backend, X_train: np.ndarray, y_train: np.ndarray, parts: tuple[np.ndarray, ...],
                   n: int = GRID_SIZE) -> dict[str, Any]:
    """Predictions of the trained model on an n x n grid over the data (for the report's decision boundary).

    ``proba`` holds P(class 1) for binary tasks and the predicted class for multi-class ones; untimed.
    """
    X_all = np.concatenate(parts)
    lo, hi = X_all.min(axis=0), X_all.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-9)
    xs, ys = (np.linspace(lo[i] - pad[i], hi[i] + pad[i], n) for i in range(2))
    gx, gy = np.meshgrid(xs, ys)
    p = backend.predict(np.ascontiguousarray(np.column_stack([gx.ravel(), gy.ravel()]), dtype=X_train.dtype))
    values = p[:, 1] if p.shape[1] == 2 else p.argmax(axis=1)
    return {"x": np.round(xs, 4).tolist(), "y": np.round(ys, 4).tolist(),
            "proba": np.round(np.asarray(values, dtype=np.float64).reshape(n, n), 4).tolist(),
            "points": np.round(X_train.astype(np.float64), 4).tolist(),
            "labels": np.asarray(y_train).tolist()}  # fmt: skip


def _iqr(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    q75, q25 = np.percentile(values, [75, 25])
    return float(q75 - q25)


def execute(
    backend: Backend,
    task: Task,
    split: Split,
    job: dict[str, Any],
    emit: Callable[[dict[str, Any]], None] = lambda m: None,
) -> dict[str, Any]:
    """Train and evaluate one job; always returns a record (status ok, skipped, error or diverged)."""
    spec = ModelSpec.from_dict(job["spec"])
    seed = int(job["seed"])
    record: dict[str, Any] = {"status": "ok", "error": None, "threads": backend.threads, "curve": []}
    reason = backend.skip(spec)
    if reason:
        return {**record, "status": "skipped", "error": reason}

    dt = np.dtype(spec.dtype)
    X_train, X_val, X_test = (np.ascontiguousarray(a, dtype=dt) for a in (split.X_train, split.X_val, split.X_test))
    y_train, y_val, y_test = split.y_train, split.y_val, split.y_test
    if task.kind == "regression":
        y_train, y_val, y_test = (np.ascontiguousarray(a, dtype=dt) for a in (y_train, y_val, y_test))
    record.update(n_train=len(X_train), n_val=len(X_val), n_test=len(X_test), n_parameters=spec.n_parameters(),
                  target_metric=task.target_metric, target=task.target)  # fmt: skip

    epoch_times: list[float] = []
    elapsed = cpu = 0.0
    target_metric = f"val_{task.target_metric}"
    stage = "build"
    cpu0 = time.process_time()
    with PeakRSS() as rss:
        try:
            weights = initial_weights(spec, seed) if backend.accepts_weights else None
            t0 = time.perf_counter()
            backend.build(spec, weights, seed)
            record["build_s"] = time.perf_counter() - t0
            for epoch in range(spec.epochs):
                batches = batch_order(len(X_train), spec.batch_size, seed, epoch)
                stage = "train_epoch"
                backend.sync()
                t0, c0 = time.perf_counter(), time.process_time()
                running = backend.train_epoch(X_train, y_train, batches)
                backend.sync()
                took = time.perf_counter() - t0
                cpu += time.process_time() - c0
                epoch_times.append(took)
                elapsed += took
                if running is not None:
                    _finite("training loss", running)
                # Evaluation is not timed: the core computes every loss and metric from predictions.
                stage = "predict"
                p_train, p_val = backend.predict(X_train), backend.predict(X_val)
                point = {"epoch": epoch + 1, "epoch_time_s": took, "elapsed_s": elapsed,
                         "running_loss": float(running) if running is not None else None}  # fmt: skip
                _finite("prediction on the training set", p_train)
                _finite("prediction on the validation set", p_val)
                point["train_loss"] = metrics.loss(spec.loss, y_train, p_train)
                point["val_loss"] = metrics.loss(spec.loss, y_val, p_val)
                # Finite but huge predictions can still overflow the loss.
                _finite("training loss computed from the predictions", point["train_loss"])
                _finite("validation loss computed from the predictions", point["val_loss"])
                for name, value in metrics.evaluate(task.kind, y_val, p_val).items():
                    point[f"val_{name}"] = value
                record["curve"].append(point)
                if record.get("time_to_target_s") is None and metrics.reached(
                    task.target_metric, point[target_metric], task.target
                ):
                    record["time_to_target_s"] = elapsed
                    record["epochs_to_target"] = epoch + 1
                emit({"type": "epoch", "id": job["id"], "epoch": epoch + 1, "epochs": spec.epochs,
                      "train_loss": point["train_loss"], "val_loss": point["val_loss"]})  # fmt: skip
            stage = "predict"
            p_test = backend.predict(X_test)  # warm-up and the predictions we score
            _finite("prediction on the test set", p_test)
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                backend.predict(X_test)
                backend.sync()
                best = min(best, time.perf_counter() - t0)
            record["predict_time_s"] = best
            record["predict_throughput"] = len(X_test) / best if best > 0 else None
            for name, value in metrics.evaluate(task.kind, y_test, p_test).items():
                record[f"test_{name}"] = value
            if X_train.shape[1] == 2 and task.kind != "regression":
                try:  # an extra for the report: it must never turn a finished job into a failure
                    record["grid"] = _decision_grid(backend, X_train, y_train, (X_train, X_val, X_test))
                except Exception as exc:
                    record["grid_error"] = f"{type(exc).__name__}: {exc}"
            if job.get("return_weights"):
                record["weights"] = [[W.tolist(), b.tolist()] for W, b in backend.get_weights()]
        except Diverged as exc:
            record["status"] = "diverged"
            record["error"] = f"{exc} at epoch {len(epoch_times)} ({stage})"
        except Exception as exc:  # a backend bug becomes a record, the worker goes on
            record["status"] = "error"
            record["error"] = f"{type(exc).__name__} in {stage}: {exc}"
            record["traceback"] = _tail(exc)
    record["peak_rss_mb"] = rss.peak / 2**20
    record["cpu_time_s"] = cpu
    record["job_cpu_time_s"] = time.process_time() - cpu0
    record["epochs_run"] = len(epoch_times)
    record["train_time_s"] = elapsed
    record["first_epoch_s"] = epoch_times[0] if epoch_times else None
    steady = epoch_times[1:] or epoch_times
    record["epoch_time_s"] = float(np.median(steady)) if steady else None
    record["epoch_time_iqr_s"] = _iqr(steady)
    # Work per epoch (matrix-multiply FLOPs, mlpbench/flops.py) and the steady-state throughput.
    record["flops_per_epoch"] = flops.training_flops(spec, len(X_train))
    record["train_gflops"] = flops.gflops(record["flops_per_epoch"], record["epoch_time_s"])
    if record["curve"]:
        last = record["curve"][-1]
        record["final_train_loss"] = last["train_loss"]
        record["final_val_loss"] = last["val_loss"]
    record.setdefault("time_to_target_s", None)
    return record


SPLIT_CACHE_ENV = "MLPBENCH_SPLIT_CACHE"
_SPLIT_CACHE_MAX_BYTES = 64 * 2**20  # larger splits (the scaling task) are rebuilt by each worker


class SplitCache:
    """Splits per (task, params, seed): in memory, and shared between a run's workers on disk.

    The first worker that needs a split builds it and saves it as .npz in the run's cache
    directory; the other workers read it instead of loading the data set again (and never
    import scikit-learn for it).
    """

    def __init__(self, directory: str | None = None) -> None:
        self._cache: dict[str, Split] = {}
        self.directory = directory

    def get(self, task: Task, seed: int) -> Split:
        key = self._key(task, seed)
        if key not in self._cache:
            self._cache[key] = self._from_disk(key) or self._build(key, task, seed)
        return self._cache[key]

    def share(self, task: Task, seed: int) -> None:
        """Build the split and save it for the workers, without keeping it in memory here."""
        key = self._key(task, seed)
        path = self._path(key)
        if path and not os.path.exists(path):
            self._build(key, task, seed)

    @staticmethod
    def _key(task: Task, seed: int) -> str:
        return json.dumps([task.name, task.config, seed], sort_keys=True, default=str)

    def _path(self, key: str) -> str | None:
        if not self.directory:
            return None
        return os.path.join(self.directory, hashlib.sha1(key.encode()).hexdigest() + ".npz")

    def _from_disk(self, key: str) -> Split | None:
        path = self._path(key)
        if not path or not os.path.exists(path):
            return None
        with np.load(path, allow_pickle=False) as data:
            return Split(**{name: data[name] for name in data.files})

    def _build(self, key: str, task: Task, seed: int) -> Split:
        split = task.load(seed)
        path = self._path(key)
        arrays = vars(split)
        if path and sum(a.nbytes for a in arrays.values()) <= _SPLIT_CACHE_MAX_BYTES:
            tmp = f"{path}.{os.getpid()}.tmp.npz"
            np.savez(tmp, **arrays)
            os.replace(tmp, path)  # atomic: another worker never reads half a file
        return split


def _die_with_parent() -> None:
    """End this process when the runner that started it is gone (even killed with SIGKILL).

    Without this, a worker stuck in a job would outlive a killed run. Linux only (prctl, which
    fires when the *thread* that started the worker ends: start workers from a thread that
    outlives them); elsewhere the worker ends at its next write to the closed pipe.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        except (OSError, AttributeError):
            pass
    parent = os.environ.get("MLPBENCH_PARENT_PID")
    if parent and os.getppid() != int(parent):  # the runner died before prctl took effect
        os._exit(1)


def main() -> None:
    """Entry point of ``python -m mlpbench.worker``."""
    _die_with_parent()
    # Keep the protocol on a private copy of stdout; anything printed goes to stderr.
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, default=_json_default) + "\n")
        out.flush()

    init = json.loads(sys.stdin.readline())
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
    send({"type": "ready", "import_s": time.perf_counter() - t0, "pid": os.getpid(), "versions": backend.versions(),
          "blas": blas})  # fmt: skip

    splits = SplitCache(os.environ.get(SPLIT_CACHE_ENV))
    tasks: dict[str, Task] = {}
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("type") == "exit":
            break
        job = message["job"]
        try:
            key = json.dumps([job["task"], job.get("task_params") or {}], sort_keys=True)
            if key not in tasks:
                tasks[key] = registry.task(job["task"])(**(job.get("task_params") or {}))
            task = tasks[key]
            split = splits.get(task, int(job["seed"]))
        except Exception as exc:
            send({"type": "result", "id": job["id"], "record": {
                "status": "error", "error": f"loading task {job['task']!r} failed: {type(exc).__name__}: {exc}",
                "traceback": _tail(exc)}})  # fmt: skip
            continue
        record = execute(backend, task, split, job, emit=send)
        try:
            send({"type": "result", "id": job["id"], "record": record})
        except (TypeError, ValueError) as exc:  # something in the record is not JSON: say so, keep going
            send({"type": "result", "id": job["id"], "record": {
                "status": "error", "error": f"the job's record could not be sent: {type(exc).__name__}: {exc}"}})


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    main()
