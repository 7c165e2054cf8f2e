"""Batch normalization (spec.batch_norm "before" / "after" the hidden activation): the NumPy backend against
an independent forward pass and against PyTorch in float64, the running statistics (PyTorch's momentum
convention and unbiased variance), prediction with them, the order with dropout, and the backends
without it. The gradient checks are in tests/test_numpy_mlp.py; Keras in tests/test_keras_mlp.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _helpers import random_problem, weights_rel_diff

from mlpbench import ModelSpec
from mlpbench.backends import numpy_mlp
from mlpbench.backends.numpy_mlp import NumpyMLP, step_parts
from mlpbench.controlled import batch_order, initial_weights
from mlpbench.spec import ELU_ALPHA, LEAKY_RELU_SLOPE
from mlpbench.worker import execute

#: numpy against torch, float64, controlled (same weights, same batches), by the size of the epoch's last
#: batch. Training uses the same formulas (batch mean, biased batch variance) and both keep PyTorch's running
#: statistics (unbiased variance), so only rounding differs: measured over the cases below, at most 3e-15 with
#: full batches of 16 (losses 4e-16, weights 8e-16, gamma / beta / running statistics 3e-15, predictions
#: 1e-15). A last batch of 2 is ill-conditioned: each unit is normalized to about +-(x1 - x2) / |x1 - x2|, so a
#: rounding difference in x1 - x2 is amplified by up to 1 / sqrt(var + bn_eps) (316 at bn_eps = 1e-5) per
#: layer; measured 5e-13 on the parameters and running statistics, 1.4e-11 on the predictions. The bounds
#: leave two orders of magnitude for other BLAS libraries and CPUs.
TORCH_RTOL = {"full batches": 1e-13, "last batch of 2": 1e-9}

_F = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, LEAKY_RELU_SLOPE * z),
    "elu": lambda z: np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0))),
}


def _spec(**changes) -> ModelSpec:
    base = dict(
        n_inputs=5,
        n_outputs=3,
        hidden=(8, 6),
        activation="relu",
        optimizer="sgd",
        lr=0.05,
        batch_size=16,
        batch_norm="after",
        dtype="float64",
    )
    return ModelSpec(**{**base, **changes})


def _forward(model: NumpyMLP, X: np.ndarray, running: bool, masks: list | None = None) -> np.ndarray:
    """Output-layer pre-activations, written independently of the backend: Linear -> [BN] -> f -> [BN] -> dropout.

    `running`: normalize with the running statistics (prediction), else with the batch's mean and biased variance.
    """
    spec, a = model.spec_, X
    states = model.batch_norm_state()
    n_layers = len(model.params_) // 2
    for i in range(n_layers):
        z = a @ model.params_[2 * i] + model.params_[2 * i + 1]
        if i == n_layers - 1:
            return z

        def bn(x: np.ndarray, s: dict = states[i]) -> np.ndarray:
            mean, var = (s["running_mean"], s["running_var"]) if running else (x.mean(0), x.var(0))
            return s["gamma"] * (x - mean) / np.sqrt(var + spec.bn_eps) + s["beta"]

        a = _F[spec.activation](bn(z) if spec.batch_norm == "before" else z)
        if spec.batch_norm == "after":
            a = bn(a)
        if masks is not None:
            a = a * masks[i]
    raise AssertionError("unreachable")


def _softmax_ce(z: np.ndarray, y: np.ndarray) -> float:
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


# ------------------------------------------------------------------ NumPy on its own
@pytest.mark.parametrize("batch_norm", ["before", "after"])
def test_training_uses_batch_statistics_and_predict_the_running_ones(batch_norm: str) -> None:
    X, y, _ = random_problem("cross_entropy", n=64)
    spec = _spec(batch_norm=batch_norm)
    model = NumpyMLP()
    model.build(spec, initial_weights(spec, 0), 0)
    for e in range(3):
        model.train_epoch(X, y, batch_order(len(X), spec.batch_size, 0, e))
    # The training objective is the batch-statistics forward pass ...
    loss, _ = model.loss_and_gradients(X, y)
    assert loss == pytest.approx(_softmax_ce(_forward(model, X, running=False), y), rel=1e-12)
    # ... predict is the running-statistics one ...
    z = _forward(model, X, running=True)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(model.predict(X), p / p.sum(axis=1, keepdims=True), rtol=1e-12)
    # ... which really is another function: not the batch statistics of the samples predicted.
    assert np.max(np.abs(_forward(model, X, running=False) - z)) > 1e-3
    np.testing.assert_allclose(model.predict(X[:1]), model.predict(X)[:1], rtol=1e-12)  # one sample alone


@pytest.mark.parametrize("batch_norm", ["before", "after"])
def test_running_statistics_follow_pytorchs_rule(batch_norm: str) -> None:
    """Start at mean 0, variance 1, gamma 1, beta 0; after a step: (1 - m) * old + m * batch, variance unbiased."""
    X, y, _ = random_problem("cross_entropy", n=10)
    spec = _spec(batch_norm=batch_norm, bn_momentum=0.3, lr=0.0001)
    model = NumpyMLP()
    model.build(spec, initial_weights(spec, 0), 0)
    for s, w in zip(model.batch_norm_state(), spec.hidden, strict=True):
        for key, value in (("gamma", 1.0), ("beta", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            np.testing.assert_array_equal(s[key], np.full(w, value))
    W, b = model.params_[0].copy(), model.params_[1].copy()
    model.train_epoch(X, y, [np.arange(10)])
    x = X @ W + b
    if batch_norm == "after":
        x = _F["relu"](x)
    state = model.batch_norm_state()[0]
    np.testing.assert_allclose(state["running_mean"], 0.3 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(state["running_var"], 0.7 + 0.3 * x.var(0, ddof=1), rtol=1e-12)


def test_dropout_comes_after_batch_norm_and_activation() -> None:
    """Linear -> f -> BN -> dropout ("after") and Linear -> BN -> f -> dropout ("before"): the training loss is
    the independent forward pass with the very masks the backend draws."""
    X, y, _ = random_problem("cross_entropy", n=16)
    for batch_norm in ("after", "before"):
        spec = _spec(batch_norm=batch_norm, dropout=0.3)
        model = NumpyMLP()
        model.build(spec, initial_weights(spec, 4), 4)
        twin = np.random.default_rng()
        twin.bit_generator.state = model.rng_.bit_generator.state  # the masks' stream, one layer after the other
        masks = [(twin.random((len(X), w)) < 0.7) / 0.7 for w in spec.hidden]
        loss, _ = model.loss_and_gradients(X, y)
        assert loss == pytest.approx(_softmax_ce(_forward(model, X, running=False, masks=masks), y), rel=1e-12)


def test_get_weights_keeps_the_pairs_and_gamma_beta_are_extra_parameters() -> None:
    spec = _spec()
    model = NumpyMLP()
    model.build(spec, initial_weights(spec, 0), 0)
    assert [(W.shape, b.shape) for W, b in model.get_weights()] == [((5, 8), (8,)), ((8, 6), (6,)), ((6, 3), (3,))]
    assert spec.n_parameters() == spec.replace(batch_norm="none").n_parameters() + 2 * (8 + 6)
    assert model.flat_params_.size == spec.n_parameters()  # gamma and beta in the flat buffer, trained with it


def test_the_bias_before_batch_norm_has_no_gradient() -> None:
    """batch_norm="before" subtracts the batch mean, so the hidden layers' b drops out: its gradient is 0 up to
    rounding. (Adam and RMSprop scale that rounding noise up to steps of ~lr: there the frameworks' b differ.)"""
    X, y, _ = random_problem("cross_entropy", n=32)
    spec = _spec(batch_norm="before")
    model = NumpyMLP()
    model.build(spec, initial_weights(spec, 0), 0)
    _, grads = model.loss_and_gradients(X, y)
    for gW, gb in grads[:-1]:
        assert np.max(np.abs(gb)) <= 1e-14 * np.max(np.abs(gW))
    assert np.max(np.abs(grads[-1][1])) > 1e-3  # the output layer's bias is a real parameter


def test_a_training_batch_needs_two_samples() -> None:
    spec = _spec()
    model = NumpyMLP()
    model.build(spec, initial_weights(spec, 0), 0)
    X, y, _ = random_problem("cross_entropy", n=5)
    with pytest.raises(ValueError, match="at least 2 samples per training batch"):
        model.train_epoch(X, y, [np.arange(4), np.array([4])])
    assert model.predict(X[:1]).shape == (1, 3)  # prediction of one sample is fine
    with pytest.raises(ValueError, match="ModelSpec.batch_size = 1: batch_norm='after'"):
        spec.replace(batch_size=1)


def test_batch_norm_steps_are_never_cut_between_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch statistics sum over the whole batch between layers: a step runs on one thread, even where the
    same network without batch norm is cut, and a two-thread model gives the one-thread numbers."""
    monkeypatch.setattr(numpy_mlp, "SPLIT_MIN_ACTIVATIONS", 0)
    spec = _spec(optimizer="adam", lr=0.01, l2=1e-3, batch_size=50, hidden=(13, 9))
    assert step_parts(spec, 512, threads=2) == 1 and step_parts(spec.replace(batch_norm="none"), 512, 2) == 2
    X, y, _ = random_problem("cross_entropy", n=230, n_in=5)
    models = []
    for threads in (1, 2):
        m = NumpyMLP()
        m.prepare(threads)
        m.build(spec, initial_weights(spec, 0), 0)
        for e in range(2):
            m.train_epoch(X, y, batch_order(len(X), spec.batch_size, 0, e))
        models.append(m)
    one, two = models
    assert two.split_steps_ == 0
    assert weights_rel_diff(two.get_weights(), one.get_weights()) <= 1e-14
    for a, b in zip(two.batch_norm_state(), one.batch_norm_state(), strict=True):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-13)


# ---------------------------------------------------------------------------- PyTorch
@pytest.fixture(scope="module")
def torch_backend():
    pytest.importorskip("torch")
    from mlpbench.backends.torch_mlp import TorchMLP

    b = TorchMLP()
    b.prepare(1)
    return b


CASES = [
    *itertools.product(["after"], ["relu", "tanh", "elu"], ["sgd", "momentum", "adam", "rmsprop"]),
    # "before": the hidden biases drop out (see above), so with adam / rmsprop they follow rounding noise.
    *itertools.product(["before"], ["relu", "sigmoid", "leaky_relu"], ["sgd", "momentum", "nesterov"]),
]


@pytest.mark.parametrize(("batch_norm", "activation", "optimizer"), CASES)
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize(("n", "batches"), [(48, "full batches"), (50, "last batch of 2")])
def test_numpy_matches_torch_in_float64(torch_backend, batch_norm, activation, optimizer, loss, n, batches) -> None:
    """Controlled mode (the runner's weights and batches): losses, weights, gamma, beta, the running statistics
    and the predictions made with them agree to TORCH_RTOL."""
    tol = TORCH_RTOL[batches]
    X, y, n_out = random_problem(loss, n=n)
    spec = _spec(
        batch_norm=batch_norm,
        activation=activation,
        optimizer=optimizer,
        loss=loss,
        n_outputs=n_out,
        lr=0.01 if optimizer in ("adam", "rmsprop") else 0.05,
        l2=0.01,
    )
    weights = initial_weights(spec, 2)
    ref = NumpyMLP()
    ref.build(spec, weights, 2)
    torch_backend.build(spec, weights, 2)
    for epoch in range(3):
        order = batch_order(len(X), spec.batch_size, 2, epoch)
        got, want = torch_backend.train_epoch(X, y, order), ref.train_epoch(X, y, order)
        assert got == pytest.approx(want, rel=tol)
    assert weights_rel_diff(torch_backend.get_weights(), ref.get_weights()) <= tol
    for a, b in zip(torch_backend.batch_norm_state(), ref.batch_norm_state(), strict=True):
        for key in ("gamma", "beta", "running_mean", "running_var"):
            assert weights_rel_diff([(a[key],)], [(b[key],)]) <= tol, key
    assert weights_rel_diff([(torch_backend.predict(X),)], [(ref.predict(X),)]) <= tol


def test_torch_layers_are_in_the_specs_order(torch_backend) -> None:
    spec = _spec(dropout=0.2, hidden=(4,))
    names = {}
    for batch_norm in ("after", "before"):
        torch_backend.build(spec.replace(batch_norm=batch_norm), None, 0)
        names[batch_norm] = [type(m).__name__ for m in torch_backend.model_]
        bn = torch_backend.norms_[0]
        assert (bn.momentum, bn.eps) == (spec.bn_momentum, spec.bn_eps)
    assert names["after"] == ["Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    assert names["before"] == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    # gamma and beta are trained without weight decay: l2 is for the weight matrices only
    torch_backend.build(spec.replace(l2=0.1), None, 0)
    decayed = {id(p) for g in torch_backend.optimizer_.param_groups if g["weight_decay"] for p in g["params"]}
    assert id(torch_backend.norms_[0].weight) not in decayed and id(torch_backend.linears_[0].weight) in decayed


def test_torch_predict_is_eval_mode_and_differs_from_the_batch_forward(torch_backend) -> None:
    torch = pytest.importorskip("torch")
    X, y, _ = random_problem("cross_entropy", n=64)
    spec = _spec()
    torch_backend.build(spec, initial_weights(spec, 0), 0)
    for e in range(2):
        torch_backend.train_epoch(X, y, batch_order(len(X), spec.batch_size, 0, e))
    p = torch_backend.predict(X)
    np.testing.assert_allclose(torch_backend.predict(X[:1]), p[:1], rtol=1e-12)
    torch_backend.model_.train()  # (a training-mode forward pass moves the running statistics too: last)
    with torch.no_grad():
        batch = torch.softmax(torch_backend.model_(torch.from_numpy(X)), dim=1).numpy()
    assert np.max(np.abs(p - batch)) > 1e-3


@pytest.mark.parametrize("name", ["numpy", "torch"])
@pytest.mark.parametrize("mode", ["controlled", "native"])
def test_runs_with_batch_norm_and_early_stopping_end_to_end(registry, name: str, mode: str) -> None:
    """Through the worker in both modes; early stopping restores by scoring the best epoch's predictions."""
    if name == "torch":
        pytest.importorskip("torch")
    backend = registry.backend(name)()
    backend.prepare(1)
    task = registry.task("digits")()
    spec = task.spec().replace(batch_norm="after", epochs=6, patience=1, min_delta=10.0)  # stops after epoch 2
    job = {"id": f"{name}/bn/{mode}", "seed": 0, "mode": mode, "spec": spec.to_dict()}
    record = execute(backend, task, task.load(0), job)
    assert record["status"] == "ok", (record.get("error"), record.get("traceback"))
    assert record["epochs_run"] == 2 and record["best_epoch"] == 1 and record["restored_best"] is True
    assert record["test_accuracy"] > 0.3  # one epoch of adam on digits (chance: 0.1)


# ------------------------------------------------------------------- without it
def test_backends_without_batch_norm_skip_it_with_a_reason(registry) -> None:
    spec = _spec(hidden=(4,))
    sklearn = registry.backends["sklearn"].cls
    assert sklearn.supports_batch_norm is False
    assert "does not support batch_norm" in sklearn().skip(spec)
    assert sklearn().skip(spec.replace(batch_norm="none")) is None
    entry = registry.backends.get("jax")
    if entry is not None and entry.cls is not None:
        assert "does not support batch_norm" in entry.cls(pin=False).skip(spec)
    for name in ("numpy", "torch", "keras"):
        assert registry.backends[name].cls.supports_batch_norm is True
