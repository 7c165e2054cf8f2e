"""What the runner owns in controlled mode: initial weights and mini-batch order, both from the seed."""

from __future__ import annotations

import numpy as np

from .spec import ModelSpec

# Separate random streams so that changing the epoch count never changes the weights.
_WEIGHTS_STREAM = 0
_BATCH_STREAM = 1


def initial_weights(spec: ModelSpec, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` per layer, W shaped ``(fan_in, fan_out)``, in the spec's dtype; biases zero.

    Hidden layers use the spec's scheme (He uniform for the relu family, Glorot
    uniform for sigmoid/tanh); the output layer, which has no such activation,
    always uses Glorot uniform.
    """
    rng = np.random.default_rng([seed, _WEIGHTS_STREAM])
    sizes = spec.layer_sizes
    weights = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        is_output = i == len(sizes) - 2
        if spec.init_scheme == "he" and not is_output:
            limit = np.sqrt(6.0 / fan_in)
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
        W = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(spec.dtype)
        weights.append((W, np.zeros(fan_out, dtype=spec.dtype)))
    return weights


def batch_order(n_samples: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The mini-batches of one epoch: a seeded permutation of ``range(n_samples)`` cut into chunks.

    The last batch holds the remainder when `batch_size` does not divide `n_samples`.
    """
    rng = np.random.default_rng([seed, _BATCH_STREAM, epoch])
    order = rng.permutation(n_samples)
    return [order[i : i + batch_size] for i in range(0, n_samples, batch_size)]
