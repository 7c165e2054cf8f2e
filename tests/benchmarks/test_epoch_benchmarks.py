"""Time one training epoch per backend and default task (pytest-benchmark).

``make benchmarks`` times them and prints one comparison table per task; in ``make test``
pyproject's ``--benchmark-disable`` makes each run once, as a smoke test. Every
benchmark uses one thread (threadpoolctl for BLAS, the backend's own `prepare(1)` for
its framework) and trains one untimed epoch first, so graph building and first-call
costs stay out of the numbers, as in the runner's steady-state epoch time.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mlpbench.controlled import batch_order, initial_weights
from mlpbench.registry import discover

TASKS = ("xor", "digits", "diabetes")
BACKENDS = sorted(discover().backends)  # every registered backend, installed or not


@pytest.fixture(scope="module")
def prepared(registry):
    """Backend instances prepared once for this module: each framework is imported (and set up) only once."""
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            try:
                cls = registry.backend(name)
            except Exception as exc:  # a plugin that fails to import
                cache[name] = f"{name} cannot be loaded: {exc}"
                return cache[name]
            missing = cls.missing_requirements()
            if missing:
                cache[name] = f"{name} not installed: cannot import {', '.join(missing)}"
            else:
                backend = cls()
                backend.prepare(1)
                cache[name] = backend
        return cache[name]

    return get


@pytest.mark.parametrize("task_name", TASKS)
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_epoch(benchmark, prepared, registry, backend_name: str, task_name: str) -> None:
    backend = prepared(backend_name)
    if isinstance(backend, str):
        pytest.skip(backend)
    task = registry.task(task_name)()
    spec = task.spec()
    reason = backend.skip(spec)
    if reason:
        pytest.skip(reason)
    split = task.load(0)
    X = np.ascontiguousarray(split.X_train, dtype=spec.dtype)
    y = split.y_train if spec.is_classifier else np.ascontiguousarray(split.y_train, dtype=spec.dtype)
    batches = batch_order(len(X), spec.batch_size, 0, 0)
    benchmark.group = f"{task_name}: one epoch, {len(X)} samples, batch {spec.batch_size}, 1 thread"
    benchmark.extra_info.update(backend=backend_name, task=task_name, samples=len(X))

    def epoch() -> float:
        loss = backend.train_epoch(X, y, batches)
        backend.sync()
        return loss

    with threadpool_limits(limits=1):
        backend.build(spec, initial_weights(spec, 0) if backend.accepts_weights else None, seed=0)
        epoch()  # warm-up, untimed
        loss = benchmark(epoch)
    assert loss is None or np.isfinite(loss)
    assert np.all(np.isfinite(backend.predict(X)))
