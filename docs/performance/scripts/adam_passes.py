"""What Adam's update costs in NumPy: each of its 13 passes on a block in cache, and the whole update.

    OPENBLAS_NUM_THREADS=1 python docs/performance/scripts/adam_passes.py

The NumPy backend's own `_adam` (PyTorch's rule, 13 in-place ufunc calls) on float32 buffers of
the scaling network's 1,126,410 parameters (64-1024-1024-10). First each pass alone on one block of
``UPDATE_BLOCK`` parameters that stays in cache (the best case of a pass), then the whole update
block by block as a step runs it, with the buffers hot and after a 64 MB write that evicts them
from cache (as a step's products do). Prints microseconds per pass and ns per element, and
milliseconds per update.
"""

from __future__ import annotations

import timeit

import numpy as np

from mlpbench import ModelSpec
from mlpbench.backends import numpy_mlp as nm

SPEC = ModelSpec(n_inputs=64, n_outputs=10, hidden=(1024, 1024), activation="relu", optimizer="adam", batch_size=512)
N = 64 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
B = nm.UPDATE_BLOCK

rng = np.random.default_rng(0)
p, g0 = rng.standard_normal(N, dtype=np.float32), rng.standard_normal(N, dtype=np.float32)
g, m, v, tmp = (np.zeros(N, np.float32) for _ in range(4))
h = nm._Hyper(SPEC, np.dtype(np.float32))
h.start_step(1)

bp, bg, bm, bv, bt = (x[:B] for x in (p, g, m, v, tmp))
np.copyto(bg, g0[:B])
np.copyto(bm, g0[:B] * 0.1)
np.copyto(bv, np.abs(g0[:B]) + 0.01)
# _adam's 13 calls in its order, each timed as the same operation on the same operand kinds (array and
# array, or array and 0-d constant), reading buffers that stay the same and writing a scratch one, so
# that repeating a pass neither overflows nor decays into subnormal numbers (which are slower).
passes = {
    "subtract(g, m, out=tmp)": lambda: np.subtract(bg, bm, out=bt),
    "tmp *= 1 - beta1": lambda: np.multiply(bg, h.one_minus_beta1, out=bt),
    "m += tmp": lambda: np.add(bm, bg, out=bt),
    "v *= beta2": lambda: np.multiply(bv, h.beta2, out=bt),
    "g *= g": lambda: np.multiply(bg, bg, out=bt),
    "g *= 1 - beta2": lambda: np.multiply(bg, h.one_minus_beta2, out=bt),
    "v += g": lambda: np.add(bv, bg, out=bt),
    "sqrt(v, out=g)": lambda: np.sqrt(bv, out=bt),
    "g /= sqrt(1 - beta2^t)": lambda: np.divide(bv, h.bias_correction2_sqrt, out=bt),
    "g += eps": lambda: np.add(bv, h.eps, out=bt),
    "divide(m, g, out=g)": lambda: np.divide(bm, bv, out=bt),
    "g *= step size": lambda: np.multiply(bg, h.step_size, out=bt),
    "p -= g": lambda: np.subtract(bp, bg, out=bt),
}
total = 0.0
print(f"one block of {B} parameters, in cache:")
for name, call in passes.items():
    t = min(timeit.repeat(call, number=200, repeat=5)) / 200
    total += t
    print(f"  {name:24s} {t * 1e6:7.2f} us  {t / B * 1e9:.3f} ns/element")
print(f"  sum of the passes: {total / B * 1e9:.2f} ns/element -> {total / B * N * 1e3:.2f} ms for {N} parameters")

evict = np.empty(64 << 20, np.uint8)
for hot in (True, False):
    times = []
    for r in range(15):
        np.copyto(g, g0)
        if not hot:
            evict[:] = r
        t0 = timeit.default_timer()
        for i in range(0, N, B):
            s = slice(i, i + B)
            nm._adam(h, p[s], g[s], [m[s], v[s]], tmp[s])
        times.append(timeit.default_timer() - t0)
    print(f"whole update, buffers {'hot' if hot else 'evicted'}: {min(times) * 1e3:.2f} ms (best of 15)")
