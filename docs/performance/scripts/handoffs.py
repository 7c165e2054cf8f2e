"""How long the hand-offs between the NumPy backend's threads take, and how long each part runs.

    OPENBLAS_NUM_THREADS=2 python docs/performance/scripts/handoffs.py [--samples 10240] [--epochs 3]

64-1024-1024-10 (the scaling task's network, relu, Adam, batch 512), 2 threads. The team's `run` is
wrapped so that every hand-off records when it was made, when each part started and ended, and when
the caller went on. Prints, per phase of a step (0: the rows' forward, loss and backward pass; 1:
the weight gradients and Adam), the median and 90th percentile of: the helper's start after the
hand-off, the caller's return after the last part ended, and each part's duration (ms).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.controlled import batch_order, initial_weights
from mlpbench.tasks.scaling import Scaling

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--samples", type=int, default=10240)
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()

task = Scaling(n_samples=args.samples, width=1024)
split, spec = task.load(0), task.spec()
X = np.ascontiguousarray(split.X_train, dtype=spec.dtype)
model = NumpyMLP()
model.prepare(2)
model.build(spec, initial_weights(spec, 0), 0)
model.train_epoch(X, split.y_train, batch_order(len(X), spec.batch_size, 0, 0))  # warm-up
team, run = model._team, model._team.run
marks: list[tuple[float, ...]] = []  # (handed off, start 0, start 1, end 0, end 1, caller went on)


def timed_run(fn, parts):
    seen: dict[str, float] = {}

    def part(j, *rest):
        seen[f"s{j}"] = time.perf_counter()
        out = fn(j, *rest)
        seen[f"e{j}"] = time.perf_counter()
        return out

    t0 = time.perf_counter()
    out = run(part, parts)
    marks.append((t0, seen["s0"], seen["s1"], seen["e0"], seen["e1"], time.perf_counter()))
    return out


team.run = timed_run
for e in range(args.epochs):
    t = time.perf_counter()
    model.train_epoch(X, split.y_train, batch_order(len(X), spec.batch_size, 0, e + 1))
    print(f"epoch {e + 1}: {(time.perf_counter() - t) * 1e3:.1f} ms")


def q(values: list[float]) -> str:
    return f"{np.median(values):.3f} / {np.percentile(values, 90):.3f}"


print("ms, median / p90")
for phase in (0, 1):
    m = marks[phase::2]
    start = [(r[2] - r[0]) * 1e3 for r in m]
    resume = [(r[5] - max(r[3], r[4])) * 1e3 for r in m]
    print(
        f"phase {phase}: helper starts {q(start)} after the hand-off; caller goes on {q(resume)} after the last part; "
        f"part 0 runs {q([(r[3] - r[1]) * 1e3 for r in m])}, part 1 {q([(r[4] - r[2]) * 1e3 for r in m])}"
    )
