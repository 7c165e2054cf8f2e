"""cProfile of two 2-thread epochs of a version of the NumPy backend, each followed by a predict.

    OPENBLAS_NUM_THREADS=2 python docs/performance/scripts/profile_epochs.py FILE [THREADS]

FILE is a copy of ``backends/numpy_mlp.py`` (``backends/numpy_mlp.py`` itself for the current one).
64-1024-1024-10, relu, Adam, batch 512, 20,000 samples; one warm-up epoch first. cProfile sees the
calling thread only: in a step cut into parts, ``acquire`` is its wait for the pool thread's part.
"""

from __future__ import annotations

import cProfile
import importlib.util
import pstats
import sys

import numpy as np

from mlpbench.controlled import batch_order, initial_weights
from mlpbench.tasks.scaling import Scaling

loader = importlib.util.spec_from_file_location("numpy_mlp_profiled", sys.argv[1])
module = importlib.util.module_from_spec(loader)
loader.loader.exec_module(module)
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
task = Scaling(n_samples=20000, width=1024)
split, spec = task.load(0), task.spec()
X = np.ascontiguousarray(split.X_train, dtype=spec.dtype)
model = module.NumpyMLP()
model.prepare(threads)
model.build(spec, initial_weights(spec, 0), 0)
model.train_epoch(X, split.y_train, batch_order(len(X), spec.batch_size, 0, 0))  # warm-up
profiler = cProfile.Profile()
profiler.enable()
for epoch in (1, 2):
    model.train_epoch(X, split.y_train, batch_order(len(X), spec.batch_size, 0, epoch))
    model.predict(split.X_val)  # the runner's evaluation between epochs
profiler.disable()
pstats.Stats(profiler).sort_stats("tottime").print_stats(10)
