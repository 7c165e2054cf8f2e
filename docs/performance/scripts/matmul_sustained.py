"""The 2-thread matmul peak as a best-of-5 burst (what env.json records) against 6 s of the same product.

    python docs/performance/scripts/matmul_sustained.py

Three times: the burst, then 6 s of back-to-back float32 1024³ products in 0.5-s windows, then the
burst again. A machine whose sustained rate differs from its bursts, or drifts between them, makes
any share of "the peak" uncertain by that much.
"""

from __future__ import annotations

import statistics as st
import time

import numpy as np
from threadpoolctl import threadpool_limits

from mlpbench.env import matmul_gflops

n = 1024
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n)).astype(np.float32)
b, c = a.copy(), np.empty_like(a)
with threadpool_limits(2):
    for _ in range(3):
        burst = matmul_gflops(2)
        end, windows = time.perf_counter() + 6, []
        while time.perf_counter() < end:
            t0, k = time.perf_counter(), 0
            while time.perf_counter() - t0 < 0.5:
                np.matmul(a, b, out=c)
                k += 1
            windows.append(2 * n**3 * k / (time.perf_counter() - t0) / 1e9)
        print(
            f"burst {burst:.1f}; sustained 6 s: mean {st.mean(windows):.1f}, 0.5-s windows "
            f"{min(windows):.1f}-{max(windows):.1f}; burst after {matmul_gflops(2):.1f} GFLOP/s"
        )
