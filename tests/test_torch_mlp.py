"""The PyTorch backend: the runner's weights go in and come out unchanged, a float64 epoch matches
the NumPy backend to rounding, it learns XOR, and what it cannot run is a reason, not a crash."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _helpers import random_problem, weights_rel_diff

from mlpbench import ModelSpec
from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.backends.torch_mlp import TorchMLP
from mlpbench.controlled import batch_order, initial_weights
from mlpbench.spec import ACTIVATIONS, LOSSES, OPTIMIZERS
from mlpbench.worker import execute

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def backend_factory():
    def make(**options) -> TorchMLP:
        b = TorchMLP(**options)
        b.prepare(1)
        return b

    return make


_data = random_problem
_rel = weights_rel_diff


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_get_weights_returns_the_given_weights(backend_factory, dtype: str) -> None:
    spec = ModelSpec(n_inputs=5, n_outputs=3, hidden=(7, 4), dtype=dtype)
    weights = initial_weights(spec, seed=1)
    b = backend_factory()
    b.build(spec, weights, seed=1)
    for (W, bias), (W2, b2) in zip(weights, b.get_weights(), strict=True):
        assert W2.shape == W.shape and W2.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(W2, W)
        np.testing.assert_array_equal(b2, bias)


@pytest.mark.parametrize(("loss", "optimizer"), list(itertools.product(LOSSES, OPTIMIZERS)))
def test_float64_epochs_match_numpy(backend_factory, loss: str, optimizer: str) -> None:
    """Same weights, same batches (the last one smaller), l2 on: the same model to rounding."""
    X, y, n_out = _data(loss)
    spec = ModelSpec(
        n_inputs=5,
        n_outputs=n_out,
        hidden=(8, 6),
        activation="elu",
        loss=loss,
        optimizer=optimizer,
        lr=0.05,
        l2=0.01,
        batch_size=16,
        dtype="float64",
    )
    # mae's gradient is a sum of signs that can cancel to rounding noise, which Adam and RMSprop then divide
    # by a tiny second moment: rounding grows to ~1e-11 there, still below the parity target of 1e-9.
    tol = 1e-9 if loss == "mae" and optimizer in ("adam", "rmsprop") else 1e-12
    weights = initial_weights(spec, seed=2)
    ref, b = NumpyMLP(), backend_factory()
    ref.build(spec, weights, seed=2)
    b.build(spec, weights, seed=2)
    for epoch in range(2):
        batches = batch_order(len(X), spec.batch_size, seed=2, epoch=epoch)
        loss_ref, loss_b = ref.train_epoch(X, y, batches), b.train_epoch(X, y, batches)
        assert loss_b == pytest.approx(loss_ref, rel=tol)
    assert _rel(b.get_weights(), ref.get_weights()) <= tol
    assert _rel([(b.predict(X),)], [(ref.predict(X),)]) <= tol


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations_match_numpy(backend_factory, activation: str) -> None:
    X, y, _ = _data("cross_entropy")
    spec = ModelSpec(
        n_inputs=5,
        n_outputs=3,
        hidden=(8,),
        activation=activation,
        optimizer="sgd",
        lr=0.1,
        batch_size=10,
        dtype="float64",
    )
    weights = initial_weights(spec, seed=0)
    ref, b = NumpyMLP(), backend_factory()
    ref.build(spec, weights, 0)
    b.build(spec, weights, 0)
    batches = batch_order(len(X), 10, 0, 0)
    ref.train_epoch(X, y, batches)
    b.train_epoch(X, y, batches)
    assert _rel(b.get_weights(), ref.get_weights()) <= 1e-12


def test_predict_returns_probabilities_in_the_spec_dtype(backend_factory) -> None:
    X, y, _ = _data("binary_cross_entropy")
    spec = ModelSpec(n_inputs=5, n_outputs=1, loss="binary_cross_entropy", dtype="float32")
    b = backend_factory()
    b.build(spec, None, seed=0)
    p = b.predict(X.astype(np.float32))
    assert p.shape == (len(X), 2) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


def test_dropout_is_reproducible_from_the_seed(backend_factory) -> None:
    X, y, _ = _data("cross_entropy")
    spec = ModelSpec(n_inputs=5, n_outputs=3, hidden=(16,), dropout=0.5, dtype="float64")
    results = []
    for _ in range(2):
        b = backend_factory()
        b.build(spec, initial_weights(spec, 4), seed=4)
        b.train_epoch(X, y, batch_order(len(X), 32, 4, 0))
        results.append(b.get_weights())
    assert _rel(results[0], results[1]) == 0.0
    # ... and dropout really was on: without it the weights differ.
    spec0 = spec.replace(dropout=0.0)
    b = backend_factory()
    b.build(spec0, initial_weights(spec0, 4), seed=4)
    b.train_epoch(X, y, batch_order(len(X), 32, 4, 0))
    assert _rel(b.get_weights(), results[0]) > 1e-6


def test_learns_xor(backend_factory, registry) -> None:
    task = registry.task("xor")()
    spec = task.spec()
    record = execute(backend_factory(), task, task.load(0), {"id": "t", "seed": 0, "spec": spec.to_dict()})
    assert record["status"] == "ok", record.get("error")
    assert record["test_accuracy"] == 1.0


def test_unavailable_device_is_a_skip_reason(backend_factory) -> None:
    spec = ModelSpec(n_inputs=2, n_outputs=1, loss="binary_cross_entropy")
    unplanned = TorchMLP(device="cuda")  # in the parent process torch is not imported: it cannot tell yet
    assert unplanned.skip(spec) is None
    b = backend_factory(device="cuda")
    if torch.cuda.is_available():
        assert b.skip(spec) is None
    else:
        assert "cuda" in b.skip(spec) and "unavailable" in b.skip(spec)
    assert "device 'tpu'" in TorchMLP(device="tpu").skip(spec)
    with pytest.raises(ValueError, match="no option"):
        TorchMLP(gpu=True)
