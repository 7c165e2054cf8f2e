"""How long OpenBLAS's idle threads keep spinning after a 2-thread product, seen by two threads of our own.

    python docs/performance/scripts/blas_spin.py
    OPENBLAS_THREAD_TIMEOUT=4 python docs/performance/scripts/blas_spin.py   # threads sleep at once

Three times: three 2-thread 1024³ products, then for 0.6 s two 1-thread (256 x 1024) @ (1024 x 1024)
products at once, on the calling thread and one pool thread, as the NumPy backend's parts run.
Prints ``ms since the 2-thread products:GFLOP/s`` for every 4th pair.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # before NumPy loads OpenBLAS

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

rng = np.random.default_rng(0)
W = rng.standard_normal((1024, 1024)).astype(np.float32)
big = np.empty_like(W)
a, b = (rng.standard_normal((256, 1024)).astype(np.float32) for _ in range(2))
za, zb = np.empty_like(a), np.empty_like(b)
pool = ThreadPoolExecutor(1)
flops = 2 * 2 * 256 * 1024 * 1024
for _ in range(3):
    for _ in range(3):
        np.matmul(W, W, out=big)  # BLAS on 2 threads
    start, seen = time.perf_counter(), []
    with threadpool_limits(1, user_api="blas"):
        while time.perf_counter() - start < 0.6:
            t0 = time.perf_counter()
            other = pool.submit(np.dot, b, W, zb)
            np.dot(a, W, out=za)
            other.result()
            seen.append((t0 - start, flops / (time.perf_counter() - t0) / 1e9))
    print(" ".join(f"{t * 1e3:.0f}:{rate:.0f}" for t, rate in seen[::4]))
