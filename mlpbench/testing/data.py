"""The kit's data and its reference: small random problems, and the NumPy backend every check compares with."""

from __future__ import annotations

import numpy as np

from ..backend import Backend
from ..registry import Registry, discover
from ..spec import ModelSpec

N_SAMPLES, BATCH = 37, 8  # 37 = four batches of 8 and a smaller last one of 5


def make_data(spec: ModelSpec, n: int = N_SAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs and targets that follow the data conventions for `spec`'s loss."""
    rng = np.random.default_rng([seed, 7])
    X = np.ascontiguousarray(rng.standard_normal((n, spec.n_inputs)), dtype=spec.dtype)
    if spec.loss == "cross_entropy":
        y = rng.permutation(np.arange(n) % spec.n_outputs).astype(np.int64)  # every class present
    elif spec.loss == "binary_cross_entropy":
        y = rng.permutation(np.arange(n) % 2).astype(np.int64)
    else:
        y = np.ascontiguousarray(rng.standard_normal((n, spec.n_outputs)), dtype=spec.dtype)
    return X, y


def reference_backend(registry: Registry | None = None) -> Backend:
    """A fresh, prepared NumPy reference backend: the ``numpy`` entry of `registry` (default: a new `discover()`)."""
    ref = (registry or discover()).backend("numpy")()
    ref.prepare(threads=1)
    return ref
