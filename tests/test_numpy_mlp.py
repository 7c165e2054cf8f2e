"""The hand-written NumPy backend: gradients against finite differences (batch normalization included),
stability, dtypes, optimizers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _helpers import random_problem

from mlpbench import ModelSpec
from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.controlled import batch_order, initial_weights
from mlpbench.spec import ACTIVATIONS, LOSSES


def _problem(loss: str, n: int = 7, n_in: int = 5, n_out: int = 3, seed: int = 0):
    return random_problem(loss, n=n, n_in=n_in, n_out=n_out, seed=seed)


def _flat(grads):
    return np.concatenate([np.concatenate([gW.ravel(), gb.ravel()]) for gW, gb in grads])


def _finite_difference(model: NumpyMLP, X, y, h: float = 1e-6) -> np.ndarray:
    out = []
    for p in model.params_:
        g = np.zeros_like(p)
        it = np.nditer(p, flags=["multi_index"])
        for _ in it:
            i = it.multi_index
            old = p[i]
            p[i] = old + h
            up, _ = model.loss_and_gradients(X, y)
            p[i] = old - h
            down, _ = model.loss_and_gradients(X, y)
            p[i] = old
            g[i] = (up - down) / (2 * h)
        out.append(g)
    return np.concatenate([g.ravel() for g in out])


@pytest.mark.parametrize(("activation", "loss"), list(itertools.product(ACTIVATIONS, LOSSES)))
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_gradients_match_finite_differences(activation: str, loss: str, l2: float) -> None:
    X, y, n_out = _problem(loss)
    spec = ModelSpec(
        n_inputs=5, n_outputs=n_out, hidden=(6, 4), activation=activation, loss=loss, l2=l2, dtype="float64"
    )
    model = NumpyMLP()
    model.build(spec, initial_weights(spec, seed=3), seed=3)
    # Non-zero biases so every unit sits somewhere generic (no relu exactly at its kink).
    for b in model.params_[1::2]:
        b[:] = np.random.default_rng(1).uniform(-0.3, 0.3, b.shape)
    _, grads = model.loss_and_gradients(X, y)
    analytic = _flat(grads)
    numeric = _finite_difference(model, X, y)
    rel = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    assert rel <= 1e-6, f"{activation}/{loss}/l2={l2}: relative gradient error {rel:.2e}"


def _flat_finite_difference(model: NumpyMLP, X, y, h: float = 1e-6) -> np.ndarray:
    """d objective / d every entry of the flat parameter buffer: (W, b) pairs, then batch norm's gammas and betas."""
    p = model.flat_params_
    out = np.zeros_like(p)
    for k in range(p.size):
        old = p[k]
        p[k] = old + h
        up, _ = model.loss_and_gradients(X, y)
        p[k] = old - h
        down, _ = model.loss_and_gradients(X, y)
        p[k] = old
        out[k] = (up - down) / (2 * h)
    return out


def _batch_norm_model(activation: str, loss: str, batch_norm: str, dtype: str, l2: float = 0.1):
    X, y, n_out = _problem(loss)
    spec = ModelSpec(
        n_inputs=5,
        n_outputs=n_out,
        hidden=(6, 4),
        activation=activation,
        loss=loss,
        l2=l2,
        batch_norm=batch_norm,
        dtype=dtype,
    )
    model = NumpyMLP()
    model.build(spec, initial_weights(spec, seed=3), seed=3)
    rng = np.random.default_rng(1)
    for b in model.params_[1::2]:
        b[:] = rng.uniform(-0.3, 0.3, b.shape)
    for p in model.bn_params_:  # gamma near 1, beta near 0, but not exactly: every term of the backward pass counts
        p += rng.uniform(-0.3, 0.3, p.shape).astype(dtype)
    return model, X.astype(dtype), y if spec.is_classifier else y.astype(dtype)


@pytest.mark.parametrize(("activation", "loss"), list(itertools.product(ACTIVATIONS, LOSSES)))
@pytest.mark.parametrize("batch_norm", ["before", "after"])
def test_batch_norm_gradients_match_finite_differences(activation: str, loss: str, batch_norm: str) -> None:
    """The hand-written batch-norm backward pass, gamma and beta included, with L2 on (never on gamma, beta)."""
    model, X, y = _batch_norm_model(activation, loss, batch_norm, "float64")
    model.loss_and_gradients(X, y)
    analytic = model.flat_grads_.copy()
    numeric = _flat_finite_difference(model, X, y)
    rel = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    assert rel <= 1e-6, f"{activation}/{loss}/batch_norm={batch_norm}: relative gradient error {rel:.2e}"
    n_bn = 2 * sum(model.spec_.hidden)
    assert np.linalg.norm(analytic[-n_bn:]) > 0  # the gammas and betas really have gradients
    assert not model._decay[-n_bn:].any()  # and no L2 on them


@pytest.mark.parametrize(
    ("activation", "loss"),
    [("relu", "cross_entropy"), ("tanh", "mse"), ("sigmoid", "binary_cross_entropy"), ("elu", "mae")],
)
@pytest.mark.parametrize("batch_norm", ["before", "after"])
def test_batch_norm_runs_in_float32_with_the_same_code(activation: str, loss: str, batch_norm: str) -> None:
    """float32: every array stays float32, and the gradient is the float64 one to float32 rounding."""
    m32, X32, y32 = _batch_norm_model(activation, loss, batch_norm, "float32")
    m64, _, _ = _batch_norm_model(activation, loss, batch_norm, "float64")
    m64.flat_params_[:] = m32.flat_params_  # the very same (float32-representable) parameters
    m32.loss_and_gradients(X32, y32)
    m64.loss_and_gradients(X32.astype(np.float64), y32)
    g32, g64 = m32.flat_grads_, m64.flat_grads_
    assert g32.dtype == np.float32
    assert np.linalg.norm(g32 - g64) / np.linalg.norm(g64) <= 1e-4
    batches = batch_order(len(X32), 3, 0, 0)[:2]  # 7 samples: batches of 3, 3 (and 1, which batch norm refuses)
    m32.train_epoch(X32, y32, batches)
    states = m32.batch_norm_state()
    assert all(v.dtype == np.float32 for state in states for v in state.values())
    assert m32.predict(X32).dtype == np.float32 and m32.flat_params_.dtype == np.float32


def test_saturated_inputs_stay_finite() -> None:
    """Huge pre-activations must not produce NaN or inf in loss, gradients or predictions."""
    for activation, loss in itertools.product(ACTIVATIONS, LOSSES):
        X, y, n_out = _problem(loss)
        X = X * 1e4
        spec = ModelSpec(n_inputs=5, n_outputs=n_out, hidden=(6,), activation=activation, loss=loss, dtype="float32")
        model = NumpyMLP()
        weights = [(W * 100, b) for W, b in initial_weights(spec, 0)]
        model.build(spec, weights, seed=0)
        with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is harmless
            value, grads = model.loss_and_gradients(X, y)
            proba = model.predict(X)
        assert np.isfinite(value), (activation, loss)
        assert np.all(np.isfinite(_flat(grads))), (activation, loss)
        assert np.all(np.isfinite(proba)), (activation, loss)
        if spec.is_classifier:
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept_end_to_end(dtype: str) -> None:
    X, y, n_out = _problem("cross_entropy", n=32)
    spec = ModelSpec(n_inputs=5, n_outputs=n_out, hidden=(8,), dtype=dtype, dropout=0.2, optimizer="adam")
    model = NumpyMLP()
    model.build(spec, initial_weights(spec, 0), 0)
    model.train_epoch(X.astype(dtype), y, batch_order(32, 8, 0, 0))
    assert model.predict(X.astype(dtype)).dtype == np.dtype(dtype)
    assert all(W.dtype == np.dtype(dtype) and b.dtype == np.dtype(dtype) for W, b in model.get_weights())


def _one_step(optimizer: str, steps: int = 3, **kw):
    """Apply `steps` updates with a constant gradient and return the parameter trajectory."""
    spec = ModelSpec(n_inputs=1, n_outputs=1, hidden=(), loss="mse", optimizer=optimizer, lr=0.1, dtype="float64", **kw)
    model = NumpyMLP()
    model.build(spec, [(np.array([[1.0]]), np.array([0.0]))], 0)
    traj = []
    for _ in range(steps):
        model.grads_[0][:] = 2.0
        model.grads_[1][:] = 0.0
        model._apply_update()
        traj.append(float(model.params_[0][0, 0]))
    return traj


def test_optimizer_rules_follow_pytorch() -> None:
    """Hand-computed PyTorch updates for a constant gradient g = 2, lr = 0.1, mu = 0.9."""
    np.testing.assert_allclose(_one_step("sgd"), [0.8, 0.6, 0.4])
    # momentum: v1 = 2, v2 = 3.8, v3 = 5.42
    np.testing.assert_allclose(_one_step("momentum"), [0.8, 0.42, -0.122])
    # nesterov: step g + mu*v: 3.8, 5.42, 6.878
    np.testing.assert_allclose(_one_step("nesterov"), [0.62, 0.078, -0.6098])
    # adam with a constant gradient moves by lr every step (m_hat = g, v_hat = g^2)
    np.testing.assert_allclose(_one_step("adam"), [0.9, 0.8, 0.7], rtol=1e-7)
    # rmsprop, alpha = 0.99: v_t = 4 (1 - 0.99^t); step lr * 2 / (sqrt(v_t) + eps)
    v = [4 * (1 - 0.99**t) for t in (1, 2, 3)]
    expected = np.cumsum([-0.1 * 2 / (np.sqrt(vt) + 1e-8) for vt in v]) + 1.0
    np.testing.assert_allclose(_one_step("rmsprop"), expected, rtol=1e-12)
    np.testing.assert_allclose(_one_step("rmsprop", steps=1, alpha=0.5, eps=0.5), [1.0 - 0.2 / (np.sqrt(2) + 0.5)])


def test_l2_applies_to_weights_not_biases() -> None:
    spec = ModelSpec(n_inputs=2, n_outputs=1, hidden=(), loss="mse", optimizer="sgd", lr=1.0, l2=0.5, dtype="float64")
    model = NumpyMLP()
    model.build(spec, [(np.array([[1.0], [2.0]]), np.array([3.0]))], 0)
    X = np.zeros((4, 2))
    y = np.full((4, 1), 3.0)  # prediction = bias = target: the data gradient is zero
    _, grads = model.loss_and_gradients(X, y)
    np.testing.assert_allclose(grads[0][0], [[0.5], [1.0]])  # l2 * W
    np.testing.assert_allclose(grads[0][1], [0.0])  # no decay on the bias


def test_dropout_is_off_in_predict_and_scaled_in_training() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 4))
    y = np.zeros((4000, 1))
    spec = ModelSpec(n_inputs=4, n_outputs=1, hidden=(50,), activation="relu", loss="mse", dropout=0.5, dtype="float64")
    weights = initial_weights(spec, 0)
    weights[1] = (np.full((50, 1), 1 / 50), np.zeros(1))  # output = mean of the hidden units
    model, no_drop = NumpyMLP(), NumpyMLP()
    model.build(spec, weights, 0)
    no_drop.build(spec.replace(dropout=0.0), weights, 0)
    assert np.array_equal(model.predict(X), no_drop.predict(X))  # no dropout at inference
    # With target 0, dLoss/d(output bias) = 2 * mean(output): inverted dropout keeps that mean.
    _, with_dropout = model.loss_and_gradients(X, y)
    _, without = no_drop.loss_and_gradients(X, y)
    np.testing.assert_allclose(with_dropout[1][1], without[1][1], rtol=0.05)
    # ... while the hidden gradients really are masked (about half the units dropped per sample).
    assert not np.allclose(with_dropout[0][0], without[0][0], rtol=0.05)


def test_train_epoch_visits_exactly_the_given_batches() -> None:
    X, y, n_out = _problem("cross_entropy", n=10)
    spec = ModelSpec(n_inputs=5, n_outputs=n_out, hidden=(4,), optimizer="sgd", lr=0.5, dtype="float64")
    a, b = NumpyMLP(), NumpyMLP()
    a.build(spec, initial_weights(spec, 0), 0)
    b.build(spec, initial_weights(spec, 0), 0)
    a.train_epoch(X, y, [np.arange(5)])
    b.train_epoch(X, y, [np.arange(5, 10)])
    assert not np.allclose(a.get_weights()[0][0], b.get_weights()[0][0])
    c = NumpyMLP()
    c.build(spec, initial_weights(spec, 0), 0)
    c.train_epoch(X[:5], y[:5], [np.arange(5)])
    np.testing.assert_array_equal(a.get_weights()[0][0], c.get_weights()[0][0])
