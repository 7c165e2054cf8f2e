"""Epochs of the NumPy backend on digits, three seeds interleaved in one process, 1 thread.

    OPENBLAS_NUM_THREADS=1 python docs/performance/scripts/digits_epochs.py [--epochs 40]

Builds the digits task's model for seeds 0, 1 and 2 (the runner's splits, weights and batch orders),
then runs epoch 1 of each, epoch 2 of each, and so on, and prints per seed the median, fastest and
slowest epoch (ms). Run it several times, in separate processes, to see how much a process's speed
varies on the same code (pin it with ``taskset -c N``, or turn address randomisation off with
``setarch $(uname -m) -R``, to rule those out).
"""

from __future__ import annotations

import argparse
import statistics as st
import time

import numpy as np

from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.controlled import batch_order, initial_weights
from mlpbench.tasks.sklearn_data import Digits

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--epochs", type=int, default=40)
args = parser.parse_args()

task = Digits()
models = []
for seed in range(3):
    split, spec = task.load(seed), task.spec()
    model = NumpyMLP()
    model.prepare(1)
    model.build(spec, initial_weights(spec, seed), seed)
    models.append((seed, model, np.ascontiguousarray(split.X_train, dtype=spec.dtype), split.y_train, spec))
times: dict[int, list[float]] = {seed: [] for seed, *_ in models}
for epoch in range(args.epochs):
    for seed, model, X, y, spec in models:
        order = batch_order(len(X), spec.batch_size, seed, epoch)
        t0 = time.perf_counter()
        model.train_epoch(X, y, order)
        times[seed].append((time.perf_counter() - t0) * 1e3)
for seed, values in times.items():
    print(f"seed {seed}: median {st.median(values):.2f}  fastest {min(values):.2f}  slowest {max(values):.2f} ms")
