"""The NumPy backend's `predict` on a whole large set at once against the same predictions in chunks.

    OPENBLAS_NUM_THREADS=2 python docs/performance/scripts/chunked_predict.py CHUNK   # 0: all at once

The scaling task at 100,000 samples x width 1024, 2 threads: three epochs, each followed by a
`predict` of the training and validation sets as the runner's evaluation does, either in one call
or in calls of CHUNK rows. Prints the epoch times, the last evaluation's time and the process's
peak resident memory. Run both ways in turn, several times: the machine drifts.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.controlled import batch_order, initial_weights
from mlpbench.tasks.scaling import Scaling

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("chunk", type=int, help="rows per predict call (0: the whole set in one call)")
args = parser.parse_args()

task = Scaling(n_samples=100000, width=1024)
split, spec = task.load(0), task.spec()
X = np.ascontiguousarray(split.X_train, dtype=spec.dtype)
X_val = np.ascontiguousarray(split.X_val, dtype=spec.dtype)
model = NumpyMLP()
model.prepare(2)
model.build(spec, initial_weights(spec, 0), 0)


def predict(A: np.ndarray) -> np.ndarray:
    if args.chunk == 0:
        return model.predict(A)
    return np.concatenate([model.predict(A[i : i + args.chunk]) for i in range(0, len(A), args.chunk)])


epochs = []
for e in range(3):
    t0 = time.perf_counter()
    model.train_epoch(X, split.y_train, batch_order(len(X), spec.batch_size, 0, e))
    epochs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    predict(X)
    predict(X_val)
    evaluation = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(
    f"chunk={args.chunk}: epochs {' '.join(f'{x:.2f}' for x in epochs)} s; "
    f"evaluation {evaluation:.2f} s; peak RSS {peak:.0f} MB"
)
