"""The 2-thread step's products, cut the ways the backend could cut them, against the 1024³ peak.

    OPENBLAS_THREAD_TIMEOUT=4 python docs/performance/scripts/product_shapes.py

Without ``OPENBLAS_THREAD_TIMEOUT=4`` every 1-thread pair measured right after a 2-thread case reads
up to 30% slow (``blas_spin.py``). The shapes are the 1024 x 1024 layer's at batch 512: forward
``a @ W``, input gradient ``dz @ W.T``, weight gradient ``a.T @ dz``; "rows"/"cols" are two 1-thread
products at once on halves of the output, "2-thread BLAS" one product on BLAS's threads. Prints the
median over 12 rounds of each case's ratio to that round's 1024³ 2-thread product.
"""

from __future__ import annotations

import os
import statistics as st
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # before NumPy loads OpenBLAS

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

rng = np.random.default_rng(0)


def array(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


pool = ThreadPoolExecutor(1)


def pair(first, second):
    def run() -> None:
        other = pool.submit(second)
        first()
        other.result()

    return run


A, B, C = array(1024, 1024), array(1024, 1024), np.empty((1024, 1024), np.float32)
a, W, dz = array(512, 1024), array(1024, 1024), array(512, 1024)
z, g = np.empty((512, 1024), np.float32), np.empty((1024, 1024), np.float32)
F = 2 * 512 * 1024 * 1024
cases = {  # name: (work, BLAS threads, flops)
    "peak: 1024^3, 2-thread BLAS": (lambda: np.matmul(A, B, out=C), 2, 2 * 1024**3),
    "forward, rows": (pair(lambda: np.dot(a[:256], W, out=z[:256]), lambda: np.dot(a[256:], W, out=z[256:])), 1, F),
    "forward, cols": (
        pair(lambda: np.matmul(a, W[:, :512], out=z[:, :512]), lambda: np.matmul(a, W[:, 512:], out=z[:, 512:])),
        1,
        F,
    ),
    "forward, 2-thread BLAS": (lambda: np.dot(a, W, out=z), 2, F),
    "weight gradient, rows": (
        pair(lambda: np.matmul(a[:, :512].T, dz, out=g[:512]), lambda: np.matmul(a[:, 512:].T, dz, out=g[512:])),
        1,
        F,
    ),
    "weight gradient, cols": (
        pair(lambda: np.matmul(a.T, dz[:, :512], out=g[:, :512]), lambda: np.matmul(a.T, dz[:, 512:], out=g[:, 512:])),
        1,
        F,
    ),
    "weight gradient, 2-thread BLAS": (lambda: np.dot(a.T, dz, out=g), 2, F),
    "input gradient, rows": (
        pair(lambda: np.dot(dz[:256], W.T, out=z[:256]), lambda: np.dot(dz[256:], W.T, out=z[256:])),
        1,
        F,
    ),
}
rates: dict[str, list[float]] = {name: [] for name in cases}
for _ in range(12):
    for name, (work, threads, flops) in cases.items():
        with threadpool_limits(threads, user_api="blas"):
            work()
            t0 = time.perf_counter()
            for _ in range(20):
                work()
            rates[name].append(flops * 20 / (time.perf_counter() - t0) / 1e9)
peak = rates["peak: 1024^3, 2-thread BLAS"]
for name, values in rates.items():
    ratio = st.median(v / p for v, p in zip(values, peak, strict=True))
    print(f"{name:32s} median {st.median(values):6.1f} GFLOP/s   median ratio to the round's peak {ratio:.3f}")
