"""Time one large training step of the NumPy backend at 1 and 2 threads (pytest-benchmark).

The network and batch are the largest point of the scaling sweep (64-1024-1024-10, batch 512,
adam, relu), where a step is cut into one part per thread (docs/performance/2026-12-01-numpy-threads.md).
``make benchmarks`` times it; in ``make test`` pyproject's ``--benchmark-disable`` makes each run
once, as a smoke test: one step is some tens of milliseconds. BLAS gets the same thread budget as
the backend (threadpoolctl), as the runner's environment variables give it, and one untimed step
comes first so workspaces and the thread pool exist before the clock runs.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mlpbench import ModelSpec
from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.controlled import initial_weights
from mlpbench.flops import training_flops

SPEC = ModelSpec(
    n_inputs=64,
    n_outputs=10,
    hidden=(1024, 1024),
    activation="relu",
    loss="cross_entropy",
    optimizer="adam",
    lr=1e-3,
    batch_size=512,
)


@pytest.mark.parametrize("threads", [1, 2])
def test_numpy_step(benchmark, threads: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((SPEC.batch_size, SPEC.n_inputs)).astype(SPEC.dtype)
    y = rng.integers(0, SPEC.n_outputs, SPEC.batch_size)
    batches = [np.arange(SPEC.batch_size)]
    benchmark.group = f"numpy: one training step, {'-'.join(map(str, SPEC.layer_sizes))}, batch {SPEC.batch_size}"
    benchmark.extra_info.update(threads=threads, flops=training_flops(SPEC, SPEC.batch_size))
    model = NumpyMLP()
    model.prepare(threads)
    model.build(SPEC, initial_weights(SPEC, 0), seed=0)

    def step() -> float:
        return model.train_epoch(X, y, batches)

    with threadpool_limits(limits=threads):
        step()  # warm-up, untimed
        loss = benchmark(step)
    assert np.isfinite(loss)
    assert model.split_steps_ == (0 if threads == 1 else model.step_)  # at 2 threads every step ran in parts
