"""Small data and comparison helpers shared by the backend tests."""

from __future__ import annotations

import numpy as np

from mlpbench.parity import relative_difference


def random_problem(loss: str, n: int = 50, n_in: int = 5, n_out: int = 3, seed: int = 0):
    """Gaussian inputs and targets of the kind `loss` trains on; returns (X, y, n_outputs)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in))
    if loss == "cross_entropy":
        return X, rng.integers(0, n_out, n), n_out
    if loss == "binary_cross_entropy":
        return X, rng.integers(0, 2, n), 1
    return X, rng.standard_normal((n, n_out)), n_out


def weights_rel_diff(a, b) -> float:
    """max|a - b| / max|b| over lists of (W, b) pairs: the parity check's measure."""
    flat = [np.concatenate([np.ravel(x) for pair in w for x in pair]) for w in (a, b)]
    return relative_difference(*flat)
