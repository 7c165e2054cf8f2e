"""Controlled mode: initial weights and batch order are functions of the seed alone."""

from __future__ import annotations

import numpy as np

from mlpbench import ModelSpec
from mlpbench.controlled import batch_order, initial_weights


def test_weights_are_reproducible_and_scaled_by_scheme() -> None:
    spec = ModelSpec(n_inputs=400, n_outputs=10, hidden=(300,), activation="relu")
    a, b = initial_weights(spec, 7), initial_weights(spec, 7)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
    assert not np.array_equal(a[0][0], initial_weights(spec, 8)[0][0])
    assert np.abs(a[0][0]).max() <= np.sqrt(6 / 400)  # He uniform for relu
    assert np.abs(a[0][0]).max() > 0.9 * np.sqrt(6 / 400)
    glorot = initial_weights(spec.replace(activation="tanh"), 7)
    assert np.abs(glorot[0][0]).max() <= np.sqrt(6 / 700)
    assert all(not b.any() for _, b in a)  # zero biases
    assert a[0][0].shape == (400, 300) and a[0][0].dtype == np.float32
    # changing the epoch count never changes the weights
    assert np.array_equal(initial_weights(spec.replace(epochs=3), 7)[0][0], a[0][0])


def test_batch_order_covers_every_sample_once_per_epoch() -> None:
    batches = batch_order(103, 10, seed=1, epoch=0)
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert sorted(np.concatenate(batches).tolist()) == list(range(103))
    assert not np.array_equal(np.concatenate(batches), np.concatenate(batch_order(103, 10, seed=1, epoch=1)))
    assert np.array_equal(np.concatenate(batches), np.concatenate(batch_order(103, 10, seed=1, epoch=0)))
