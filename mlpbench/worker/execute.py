"""One job in the worker: build, train epoch by epoch (only `train_epoch` is timed), evaluate, record.

Every loss and metric in a record is computed here from the backend's predictions by the
shared implementation in `mlpbench.metrics`, never taken from a framework's running averages.

Native mode (``job["mode"] == "native"``) hands the training to `Backend.fit_native`, which
calls back after each epoch with the epoch's time (the evaluation then runs, untimed), or
reports one whole-call time. Its records have the controlled fields (None where the framework
gives no per-epoch hook) and ``timing`` ("per_epoch" / "whole_call"), ``native_loop``,
``early_stopping`` (None, "runner" or the framework's own) and ``fit_time_s`` (the whole
call without the runner's evaluation: the framework's set-up outside any epoch included).
Controlled records have ``timing`` and ``early_stopping`` too.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import flops, metrics
from ..backend import TIMINGS, Backend, NativeFit
from ..controlled import batch_order, initial_weights
from ..spec import ModelSpec
from ..task import Split, Task
from .memory import PeakRSS
from .stopping import EarlyStopping

GRID_SIZE = 60  # points per axis of the decision-boundary grid stored for two-feature classification tasks


class Diverged(Exception):
    """A non-finite loss or prediction."""


def _finite(name: str, value: float | np.ndarray) -> None:
    if not np.all(np.isfinite(value)):
        raise Diverged(f"non-finite {name}")


def _tail(exc: BaseException, lines: int = 12) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-lines:])


def _decision_grid(
    backend: Backend, X_train: np.ndarray, y_train: np.ndarray, parts: tuple[np.ndarray, ...], n: int = GRID_SIZE
) -> dict[str, Any]:
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
    return {
        "x": np.round(xs, 4).tolist(),
        "y": np.round(ys, 4).tolist(),
        "proba": np.round(np.asarray(values, dtype=np.float64).reshape(n, n), 4).tolist(),
        "points": np.round(X_train.astype(np.float64), 4).tolist(),
        "labels": np.asarray(y_train).tolist(),
    }


def _iqr(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    q75, q25 = np.percentile(values, [75, 25])
    return float(q75 - q25)


ONE_CALL_BYTES = 32 * 2**20  # largest activation of one evaluation call that merges training and validation sets


@dataclass(frozen=True)
class EvalData:
    """The training and validation sets as the per-epoch evaluation predicts them.

    Small sets go to the backend in one `predict` call (their rows stacked once per job): on the
    default tasks a call's fixed cost (a framework's dispatch, Keras' `predict_on_batch`) is most of
    an evaluation. Large ones stay two calls, so evaluating never holds more activations than
    predicting the training set did. Predictions are row by row either way (a model in evaluation
    mode), so the curve's values are those of two calls.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_both: np.ndarray | None  # X_train stacked on X_val, or None for two calls

    @classmethod
    def of(
        cls, spec: ModelSpec, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
    ) -> EvalData:
        rows = len(X_train) + len(X_val)
        widest = max([X_train.shape[1], *spec.hidden, 1])
        small = rows * widest * X_train.dtype.itemsize <= ONE_CALL_BYTES
        return cls(X_train, y_train, X_val, y_val, np.concatenate([X_train, X_val]) if small else None)

    def predict(self, backend: Backend) -> tuple[np.ndarray, np.ndarray]:
        """The backend's predictions on the training and on the validation set."""
        if self.X_both is None:
            return backend.predict(self.X_train), backend.predict(self.X_val)
        p = np.asarray(backend.predict(self.X_both))
        return p[: len(self.X_train)], p[len(self.X_train) :]


def evaluate_epoch(
    backend: Backend,
    task: Task,
    spec: ModelSpec,
    data: EvalData,
    epoch: int,
    took: float | None,
    elapsed: float | None,
    running: float | None,
) -> dict[str, Any]:
    """One point of the curve: losses and validation metrics computed by the core from predictions (untimed)."""
    t_eval = time.perf_counter()
    y_train, y_val = data.y_train, data.y_val
    p_train, p_val = data.predict(backend)
    point = {
        "epoch": epoch,
        "epoch_time_s": took,
        "elapsed_s": elapsed,
        "running_loss": float(running) if running is not None else None,
    }
    _finite("prediction on the training set", p_train)
    _finite("prediction on the validation set", p_val)
    point["train_loss"] = metrics.loss(spec.loss, y_train, p_train)
    point["val_loss"] = metrics.loss(spec.loss, y_val, p_val)
    # Finite but huge predictions can still overflow the loss.
    _finite("training loss computed from the predictions", point["train_loss"])
    _finite("validation loss computed from the predictions", point["val_loss"])
    for name, value in metrics.evaluate(task.kind, y_val, p_val).items():
        point[f"val_{name}"] = value
    point["eval_s"] = time.perf_counter() - t_eval  # what the (untimed) evaluation cost, for the harness figures
    return point


def unevaluated_point(
    task: Task, epoch: int, took: float | None, elapsed: float | None, running: float | None
) -> dict[str, Any]:
    """A curve point of an epoch the runner did not evaluate: its times and running loss, no losses or metrics."""
    return {
        "epoch": epoch,
        "epoch_time_s": took,
        "elapsed_s": elapsed,
        "running_loss": float(running) if running is not None else None,
        "train_loss": None,
        "val_loss": None,
        **{f"val_{m}": None for m in task.metrics},
    }


def _whole_call_curve(
    backend: Backend,
    task: Task,
    spec: ModelSpec,
    data: EvalData,
    fit: NativeFit,
    epoch_times: list[float],
    record: dict[str, Any],
) -> NativeFit:
    """The curve of a whole-call native fit: its running losses per epoch, the final model evaluated at the last.

    Per-epoch validation values, epoch times and elapsed times are None (the framework has no
    per-epoch hook); the last point has the core's losses and metrics and the call's time.
    """
    if epoch_times:
        raise RuntimeError("fit_native called epoch_end but returned whole_call timing")
    n, took = fit.epochs_run, fit.train_time_s
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise RuntimeError(f"fit_native returned whole_call timing with epochs_run={n!r}: a positive integer")
    if took is None or not (np.isfinite(took) and took >= 0):
        raise RuntimeError(f"fit_native returned whole_call timing with train_time_s={took!r}")
    n, took = int(n), float(took)
    losses = list(fit.running_losses or [])
    if losses and len(losses) != n:
        raise RuntimeError(f"fit_native returned {len(losses)} running losses for {n} epochs")
    running = [float(v) for v in losses] if losses else [None] * n
    for epoch in range(1, n):
        record["curve"].append(unevaluated_point(task, epoch, None, None, running[epoch - 1]))
    record["curve"].append(evaluate_epoch(backend, task, spec, data, n, None, took, running[-1]))
    return NativeFit(timing="whole_call", train_time_s=took, epochs_run=n)


def _epoch_point(
    backend: Backend,
    task: Task,
    spec: ModelSpec,
    data: EvalData,
    epoch: int,
    took: float,
    elapsed: float,
    running: float | None,
    record: dict[str, Any],
) -> dict[str, Any]:
    """The curve point of a timed epoch, added to `record`: evaluated (untimed) on the epochs the spec
    evaluates, and the time to target read there, so its resolution is the evaluation interval."""
    if not spec.evaluates(epoch):
        point = unevaluated_point(task, epoch, took, elapsed, running)
    else:
        point = evaluate_epoch(backend, task, spec, data, epoch, took, elapsed, running)
        if record.get("time_to_target_s") is None and metrics.reached(
            task.target_metric, point[f"val_{task.target_metric}"], task.target
        ):
            record["time_to_target_s"] = elapsed
            record["epochs_to_target"] = epoch
    record["curve"].append(point)
    return point


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
    mode = job.get("mode") or "controlled"
    if mode not in ("controlled", "native"):
        return {**record, "status": "error", "error": f"unknown mode {mode!r}: expected controlled or native"}
    reason = backend.skip(spec) or backend.skip_mode(spec, mode)
    if reason:
        return {**record, "status": "skipped", "error": reason}

    dt = np.dtype(spec.dtype)
    X_train, X_val, X_test = (np.ascontiguousarray(a, dtype=dt) for a in (split.X_train, split.X_val, split.X_test))
    y_train, y_val, y_test = split.y_train, split.y_val, split.y_test
    if task.kind == "regression":
        y_train, y_val, y_test = (np.ascontiguousarray(a, dtype=dt) for a in (y_train, y_val, y_test))
    eval_data = EvalData.of(spec, X_train, y_train, X_val, y_val)
    record.update(
        n_train=len(X_train),
        n_val=len(X_val),
        n_test=len(X_test),
        n_parameters=spec.n_parameters(),
        target_metric=task.target_metric,
        target=task.target,
        eval_every_epochs=spec.evaluation_interval,  # the curves' and the time to target's resolution
    )

    epoch_times: list[float] = []
    elapsed = cpu = 0.0
    whole_call: NativeFit | None = None  # native mode without per-epoch times: the call's time and epochs
    stage = "build"
    cpu0 = time.process_time()
    with PeakRSS() as rss:
        try:
            if mode == "native":
                record["native_loop"] = backend.native_loop
                record["build_s"] = None  # inside fit_native
                stage = "fit_native"
                own = backend.native_early_stopping if spec.patience else None
                record["early_stopping"] = own
                # The runner's rule only where the framework's own does not stop the run.
                stopping = EarlyStopping(spec.patience if own == "runner" else 0, spec.min_delta)
                best_weights, best_p_test = None, None
                rebuild = backend.accepts_weights and spec.batch_norm == "none"
                asked_to_stop = False
                eval_cpu = eval_wall = 0.0

                def epoch_end(epoch: int, took: float, running: float | None) -> bool:
                    """The runner's part after a native epoch: record its time, evaluate (untimed), early stopping."""
                    nonlocal stage, elapsed, eval_cpu, eval_wall, best_weights, best_p_test, asked_to_stop
                    c0, w0 = time.process_time(), time.perf_counter()
                    if asked_to_stop:
                        raise RuntimeError(f"fit_native trained epoch {epoch} after epoch_end asked it to stop")
                    if epoch != len(epoch_times) + 1:
                        raise RuntimeError(
                            f"fit_native reported epoch {epoch} after {len(epoch_times)} epoch(s): "
                            "call epoch_end once per epoch, in order"
                        )
                    took = float(took)
                    if not (np.isfinite(took) and took >= 0):
                        raise RuntimeError(f"fit_native reported an epoch time of {took!r} s")
                    epoch_times.append(took)
                    elapsed += took
                    if running is not None:
                        _finite("training loss", running)
                    stage = "predict"
                    point = _epoch_point(backend, task, spec, eval_data, epoch, took, elapsed, running, record)
                    emit(
                        {
                            "type": "epoch",
                            "id": job["id"],
                            "epoch": epoch,
                            "epochs": spec.epochs,
                            "train_loss": point["train_loss"],
                            "val_loss": point["val_loss"],
                        }
                    )
                    if stopping.active:
                        if stopping.update(epoch, point["val_loss"]) and spec.restore_best:
                            if rebuild:
                                best_weights = [(W.copy(), b.copy()) for W, b in backend.get_weights()]
                            else:
                                best_p_test = backend.predict(X_test)
                        if stopping.should_stop:
                            record["stopped_early"] = asked_to_stop = True
                    stage = "fit_native"
                    eval_cpu += time.process_time() - c0
                    eval_wall += time.perf_counter() - w0
                    return asked_to_stop

                backend.sync()
                c0, w0 = time.process_time(), time.perf_counter()
                fit = backend.fit_native(spec, seed, X_train, y_train, X_val, y_val, epoch_end) or NativeFit()
                backend.sync()
                # The whole call without the runner's evaluation: build and the framework's set-up outside
                # any epoch (a tf.data pipeline, tracing before the first epoch) included.
                record["fit_time_s"] = time.perf_counter() - w0 - eval_wall
                cpu = time.process_time() - c0 - eval_cpu
                record["timing"] = fit.timing
                if fit.timing == "whole_call":
                    if stopping.active:
                        raise RuntimeError(
                            "fit_native returned whole_call timing, but the runner's early stopping "
                            "needs epoch_end: declare the framework's own in native_early_stopping"
                        )
                    stage = "predict"
                    whole_call = _whole_call_curve(backend, task, spec, eval_data, fit, epoch_times, record)
                    elapsed = whole_call.train_time_s
                    emit(
                        {
                            "type": "epoch",
                            "id": job["id"],
                            "epoch": whole_call.epochs_run,
                            "epochs": spec.epochs,
                            "train_loss": record["curve"][-1]["train_loss"],
                            "val_loss": record["curve"][-1]["val_loss"],
                        }
                    )
                elif fit.timing != "per_epoch":
                    raise RuntimeError(f"fit_native returned timing {fit.timing!r}; expected {' or '.join(TIMINGS)}")
                elif not epoch_times:
                    raise RuntimeError("fit_native returned per-epoch timing but called epoch_end for no epoch")
                if stopping.active:
                    record["best_epoch"] = stopping.best_epoch
                    record.setdefault("stopped_early", False)
                    record["restored_best"] = bool(spec.restore_best and stopping.best_epoch != len(epoch_times))
                    if record["restored_best"] and best_weights is not None:
                        stage = "restore best weights"
                        backend.build(spec, best_weights, seed)
                elif own:  # the framework's own early stopping: what it reports
                    record.update(
                        best_epoch=fit.best_epoch, stopped_early=fit.stopped_early, restored_best=fit.restored_best
                    )
            else:
                record["timing"] = "per_epoch"
                record["early_stopping"] = "runner" if spec.patience else None
                weights = initial_weights(spec, seed) if backend.accepts_weights else None
                t0 = time.perf_counter()
                backend.build(spec, weights, seed)
                record["build_s"] = time.perf_counter() - t0
                stopping = EarlyStopping(spec.patience, spec.min_delta)
                best_weights, best_p_test = None, None
                # Restoring by rebuilding from the best (W, b) works for every backend that takes weights;
                # the others (and state beyond W, b) are scored on the test set at the best epoch instead.
                rebuild = backend.accepts_weights and spec.batch_norm == "none"
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
                    point = _epoch_point(backend, task, spec, eval_data, epoch + 1, took, elapsed, running, record)
                    emit(
                        {
                            "type": "epoch",
                            "id": job["id"],
                            "epoch": epoch + 1,
                            "epochs": spec.epochs,
                            "train_loss": point["train_loss"],
                            "val_loss": point["val_loss"],
                        }
                    )
                    if stopping.active:
                        if stopping.update(epoch + 1, point["val_loss"]) and spec.restore_best:
                            if rebuild:
                                best_weights = [(W.copy(), b.copy()) for W, b in backend.get_weights()]
                            else:
                                best_p_test = backend.predict(X_test)
                        if stopping.should_stop:
                            record["stopped_early"] = True
                            break
                if stopping.active:
                    record["best_epoch"] = stopping.best_epoch
                    record.setdefault("stopped_early", False)
                    record["restored_best"] = bool(spec.restore_best and stopping.best_epoch != len(epoch_times))
                    if record["restored_best"] and best_weights is not None:
                        stage = "restore best weights"
                        backend.build(spec, best_weights, seed)
            stage = "predict"
            p_test = backend.predict(X_test)  # warm-up and the predictions we score
            if record.get("restored_best") and best_p_test is not None:
                p_test = best_p_test  # the best epoch's predictions (the model itself stays at the last epoch)
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
    record["eval_s"] = sum(p.get("eval_s") or 0.0 for p in record["curve"])
    record["train_time_s"] = elapsed
    record["first_epoch_s"] = epoch_times[0] if epoch_times else None
    steady = epoch_times[1:] or epoch_times
    record["epoch_time_s"] = float(np.median(steady)) if steady else None
    record["epoch_time_iqr_s"] = _iqr(steady)
    if whole_call is not None:  # one time for the whole call: the mean epoch; the first epoch's overhead is inside
        record["epochs_run"] = whole_call.epochs_run
        record["epoch_time_s"] = whole_call.train_time_s / max(whole_call.epochs_run, 1)
    # Work per epoch (matrix-multiply FLOPs, mlpbench/flops.py) and the steady-state throughput.
    record["flops_per_epoch"] = flops.training_flops(spec, len(X_train))
    record["train_gflops"] = flops.gflops(record["flops_per_epoch"], record["epoch_time_s"])
    if record["curve"]:
        last = record["curve"][-1]
        record["final_train_loss"] = last["train_loss"]
        record["final_val_loss"] = last["val_loss"]
    record.setdefault("time_to_target_s", None)
    return record
