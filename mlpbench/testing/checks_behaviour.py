"""Checks of behaviour over whole runs: the same seed gives the same result, and the backend learns XOR."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np

from ..controlled import batch_order
from ..spec import ModelSpec
from .core import known, relative_error
from .data import make_data
from .run import KitRun

#: Learning rates the XOR check uses when a backend cannot run the task's default optimizer (adam).
XOR_LR = MappingProxyType({"sgd": 0.5, "momentum": 0.1, "nesterov": 0.1, "adam": 0.05, "rmsprop": 0.01})


def check_deterministic(run: KitRun) -> str | None:
    """Two builds with the same seed and the same training give identical predictions (dropout included)."""
    c = "deterministic"
    spec, _ = run.base_spec(dtype=known(run.cls, "dtypes")[0])
    note = None
    if run.cls.supports_dropout:
        spec = spec.replace(dropout=0.2)
        note = "with dropout 0.2"
    backend = run.runnable(spec)
    X, y = make_data(spec)
    runs = []
    for _ in range(2):
        run.build(backend, spec, seed=5)
        for e in range(3):
            backend.train_epoch(X, y, batch_order(len(X), spec.batch_size, 5, e))
        backend.sync()
        runs.append(backend.predict(X))
    if not np.array_equal(runs[0], runs[1]):
        err, _ = relative_error(runs[1], runs[0])
        raise run.fail(
            c,
            f"two runs with seed 5 of {spec!r} (build, 3 epochs, predict) differ by up to "
            f"{err:.3g}; seed every random choice (dropout masks too) from build()'s seed",
        )
    return note


def check_batch_norm_predict(run: KitRun) -> str | None:
    """With batch normalization, predict() uses the running statistics: a sample's prediction does not depend on
    the other samples of the call (batch statistics would make it), and two calls agree."""
    c = "batch_norm_predict"
    spec, _ = run.base_spec(dtype=known(run.cls, "dtypes")[0])
    spec = spec.replace(batch_norm="after", bn_momentum=0.5)  # the running statistics move far in 2 epochs
    backend = run.runnable(spec)
    X, y = make_data(spec)
    run.build(backend, spec)
    for e in range(2):
        backend.train_epoch(X, y, batch_order(len(X), spec.batch_size, 0, e))
    backend.sync()
    whole = backend.predict(X)
    rtol = run.tol.for_dtype(spec.dtype)
    for rows in (slice(0, 1), slice(1, 4)):
        part = backend.predict(X[rows])
        err, scale = relative_error(part, whole[rows])
        if err > rtol * max(scale, 1.0):
            raise run.fail(
                c,
                f"predict() of rows {rows.start}:{rows.stop} alone differs from the same rows of a predict() of all "
                f"{len(X)} by up to {err:.3g} ({spec!r}); at prediction time batch normalization must use the "
                "running statistics, not the statistics of the samples passed to predict()",
            )
    if not np.array_equal(whole, backend.predict(X)):
        raise run.fail(c, f"two predict() calls on the same X differ ({spec!r})")
    return None


def check_learns_xor(run: KitRun) -> str | None:
    """The xor task's default network reaches 4/4 correct (optimizer or dtype adapted when not declared)."""
    c = "learns_xor"
    task, spec, notes = xor_spec(run)
    backend = run.runnable(spec)
    split = task.load(0)
    X = np.ascontiguousarray(split.X_train, dtype=spec.dtype)
    y = split.y_train
    run.build(backend, spec)
    epoch, correct, p = 0, 0, None
    while epoch < max(run.tol.xor_epochs, spec.epochs):
        for _ in range(spec.epochs):
            backend.train_epoch(X, y, batch_order(len(X), spec.batch_size, 0, epoch))
            epoch += 1
        backend.sync()
        p = backend.predict(X)
        correct = int(np.sum(np.argmax(p, axis=1) == y))
        if correct == len(y):
            break
    if correct != len(y):
        raise run.fail(
            c,
            f"{correct}/4 XOR points correct after {epoch} epochs of {spec!r}; "
            f"predicted probabilities {np.round(p, 3).tolist()}",
        )
    notes.append(f"4/4 after {epoch} epochs")
    return "; ".join(notes)


def xor_spec(run: KitRun) -> tuple[Any, ModelSpec, list[str]]:
    """The xor task, its default spec adapted to the declared capabilities where needed, and notes saying how."""
    cls = run.cls
    task = run.registry.task("xor")()
    spec = task.spec()
    backend = run.backend()
    notes = []
    if backend.skip(spec) is not None:
        changes: dict[str, Any] = {}
        if spec.optimizer not in cls.optimizers:
            opt = next(o for o in ("adam", "sgd", "momentum", "nesterov", "rmsprop") if o in cls.optimizers)
            changes.update(optimizer=opt, lr=XOR_LR[opt])
        if spec.activation not in cls.activations:
            changes["activation"] = cls.activations[0]
        if spec.dtype not in cls.dtypes:
            changes["dtype"] = cls.dtypes[0]
        if spec.loss not in cls.losses and "cross_entropy" in cls.losses:
            changes.update(loss="cross_entropy", n_outputs=2)
        spec = spec.replace(**changes)
        adapted = ", ".join(f"{k}={v}" for k, v in changes.items())
        notes.append(f"the default spec adapted to the declared capabilities: {adapted}")
    return task, spec, notes
