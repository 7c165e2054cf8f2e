"""Where a 2-thread step of the NumPy backend goes: every product and pass of each part, timed.

    OPENBLAS_NUM_THREADS=2 python docs/performance/scripts/step_phases.py

64-1024-1024-10, relu, Adam, batch 512, 20,000 samples, 2 threads. The part functions of
``backends/numpy_mlp.py`` (as of 2026-12-01) are replaced by copies with a clock around each
call, so the step does the same work in the same order; prints, per part, the median ms per step
of each product (``Z`` forward, ``dA`` input gradient, ``dW`` weight gradient, by layer), bias,
activation and its derivative, bias gradient and Adam update.
"""

from __future__ import annotations

import statistics as st
import time

import numpy as np

from mlpbench.backends import numpy_mlp as nm
from mlpbench.controlled import batch_order, initial_weights
from mlpbench.tasks.scaling import Scaling

clock: dict[tuple[int, str], list[float]] = {}


def timed(j: int, name: str, fn, *args) -> None:
    t0 = time.perf_counter()
    fn(*args)
    clock.setdefault((j, name), []).append(time.perf_counter() - t0)


def forward_rows(self, j, xb, ws, dropout) -> None:
    params, rows = self.params_, ws.rows[j]
    n_layers = len(params) // 2
    prev = xb[rows]
    for i in range(n_layers):
        z = ws.acts[i][rows]
        timed(j, f"Z{i}", np.dot, prev, params[2 * i], z)
        timed(j, f"+b{i}", np.add, z, params[2 * i + 1], z)
        if i < n_layers - 1:
            timed(j, f"relu{i}", self._act, z)
        prev = z


def backward_rows(self, j, ws, dropout) -> None:
    params, rows = self.params_, ws.rows[j]
    for i in range(len(params) // 2 - 1, 0, -1):
        dz = ws.acts[i] if i == len(ws.acts) - 1 else ws.deltas[i]
        d = ws.deltas[i - 1][rows]
        timed(j, f"dA{i}", np.dot, dz[rows], params[2 * i].T, d)
        timed(j, f"relu'{i}", self._act_grad, d, ws.acts[i - 1][rows], ws.scratch[i - 1][rows])


def weight_gradients(self, j, xb, ws, update) -> None:
    grads = self.grads_
    for i, (w_rows, b_cols, blocks) in enumerate(self._weight_parts[j]):
        dz = ws.acts[i] if i == len(ws.acts) - 1 else ws.deltas[i]
        below = ws.acts[i - 1] if i > 0 else xb
        timed(j, f"dW{i}", np.matmul, below[:, w_rows].T, dz, grads[2 * i][w_rows])
        timed(j, f"db{i}", np.matmul, ws.ones_m, dz[:, b_cols], grads[2 * i + 1][b_cols])
        if update:
            timed(j, f"adam{i}", self._update_range, blocks)


nm.NumpyMLP._forward_rows = forward_rows
nm.NumpyMLP._backward_rows = backward_rows
nm.NumpyMLP._weight_gradients = weight_gradients
task = Scaling(n_samples=20000, width=1024)
split, spec = task.load(0), task.spec()
X = np.ascontiguousarray(split.X_train, dtype=spec.dtype)
model = nm.NumpyMLP()
model.prepare(2)
model.build(spec, initial_weights(spec, 0), 0)
model.train_epoch(X, split.y_train, batch_order(len(X), spec.batch_size, 0, 0))  # warm-up
for epoch in (1, 2):
    clock.clear()
    t0 = time.perf_counter()
    model.train_epoch(X, split.y_train, batch_order(len(X), spec.batch_size, 0, epoch))
    steps = -(-len(X) // spec.batch_size)
    print(f"epoch {epoch}: {(time.perf_counter() - t0) / steps * 1e3:.2f} ms a step")
    for j in (0, 1):
        parts = {name: st.median(v) * 1e3 for (k, name), v in clock.items() if k == j}
        shown = "  ".join(f"{name} {ms:.3f}" for name, ms in parts.items())
        print(f"  part {j}: {shown}  sum {sum(parts.values()):.2f}")
