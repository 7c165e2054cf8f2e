"""Interleaved epochs of two versions of the NumPy backend, with the matmul peak measured every round.

    python docs/performance/scripts/ab_epochs.py OLD_FILE [--threads 2] [--samples 10240] [--rounds 12] [--eval]

OLD_FILE is a copy of ``backends/numpy_mlp.py`` from another commit
(``git show <commit>:backends/numpy_mlp.py > /tmp/numpy_mlp_old.py``); "after" is the installed one.
Network: the scaling task's 64-1024-1024-10 (relu, Adam, batch 512). Each round measures the peak,
then one epoch of each version (the order alternates); ``--eval`` precedes each epoch with that
model's ``predict`` of the validation set, as the runner's evaluation does. Prints GFLOP/s and the
median of the per-round ratios, which cancels the machine's drift between rounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics as st
import sys
import time

import numpy as np

from mlpbench.backends import numpy_mlp as new
from mlpbench.controlled import batch_order, initial_weights
from mlpbench.env import matmul_gflops
from mlpbench.flops import training_flops
from mlpbench.tasks.scaling import Scaling

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("old", help="the other version of backends/numpy_mlp.py")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--samples", type=int, default=10240)
parser.add_argument("--width", type=int, default=1024)
parser.add_argument("--rounds", type=int, default=12)
parser.add_argument("--eval", action="store_true", help="a predict of the validation set before every epoch")
args = parser.parse_args()

loader = importlib.util.spec_from_file_location("numpy_mlp_old", args.old)
old = importlib.util.module_from_spec(loader)
sys.modules[loader.name] = old  # a dataclass looks its module up there
loader.loader.exec_module(old)
task = Scaling(n_samples=args.samples, width=args.width)
split, spec = task.load(0), task.spec()
X = np.ascontiguousarray(split.X_train, dtype=spec.dtype)
models = {}
for name, module in (("before", old), ("after", new)):
    model = module.NumpyMLP()
    model.prepare(args.threads)
    model.build(spec, initial_weights(spec, 0), 0)
    model.train_epoch(X, split.y_train, batch_order(len(X), spec.batch_size, 0, 0))  # warm-up
    models[name] = model
rates: dict[str, list[float]] = {"before": [], "after": [], "peak": []}
for r in range(args.rounds):
    rates["peak"].append(matmul_gflops(args.threads))
    time.sleep(0.3)  # BLAS's threads asleep again after the peak's products
    for name, model in list(models.items())[:: 1 if r % 2 == 0 else -1]:
        if args.eval:
            model.predict(split.X_val)
        t0 = time.perf_counter()
        model.train_epoch(X, split.y_train, batch_order(len(X), spec.batch_size, 0, r + 1))
        rates[name].append(training_flops(spec, len(X)) / (time.perf_counter() - t0) / 1e9)
for name, values in rates.items():
    share = st.median(v / p for v, p in zip(values, rates["peak"], strict=True))
    print(f"{name:7s} best {max(values):6.1f}  median {st.median(values):6.1f} GFLOP/s", end="  ")
    print(f"median share of the round's peak {share:.3f}")
ratio = st.median(a / b for a, b in zip(rates["after"], rates["before"], strict=True))
print(f"after / before, median per round: {ratio:.3f}")
