"""The Keras backend: the runner's weights go in and come out unchanged, float64 epochs match the NumPy
backend to rounding (L2 and the SGD momentum rules included), Adam and RMSprop differ only where Keras adds
epsilon, batch normalization trains exactly and keeps a biased moving variance, the engine is chosen through
KERAS_BACKEND, and the torch engine runs in a real worker."""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import random_problem, weights_rel_diff

from mlpbench import ModelSpec
from mlpbench.backends.keras_mlp import KerasMLP
from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.controlled import batch_order, initial_weights
from mlpbench.testing import parametrize_backend_checks

pytest.importorskip("keras")
pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def backend_factory():
    """Prepared TensorFlow-engine backends; TensorFlow is imported by the first one only."""

    def make(**options) -> KerasMLP:
        b = KerasMLP(**options)
        b.prepare(1)
        return b

    return make


_data = random_problem
_rel = weights_rel_diff


def _train_both(b: KerasMLP, spec: ModelSpec, X, y, epochs: int = 2, seed: int = 2):
    """Train the Keras backend and the NumPy reference from the same weights on the same batches."""
    weights = initial_weights(spec, seed)
    ref = NumpyMLP()
    ref.build(spec, weights, seed)
    b.build(spec, weights, seed)
    losses = []
    for epoch in range(epochs):
        batches = batch_order(len(X), spec.batch_size, seed, epoch)  # 50 = 3 x 16 + a last batch of 2
        losses.append((b.train_epoch(X, y, batches), ref.train_epoch(X, y, batches)))
    return ref, losses


# The shared conformance kit, run on the default (TensorFlow, graph loop) configuration.
@parametrize_backend_checks(
    KerasMLP,
    known_differences={"parity[optimizer=adam]": "Keras' Adam adds epsilon to sqrt(v), PyTorch's to sqrt(v_hat)"},
)
def test_conformance(check) -> None:
    check()


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


@pytest.mark.parametrize(
    ("loss", "optimizer"),
    list(itertools.product(("cross_entropy", "binary_cross_entropy", "mse", "mae"), ("sgd", "momentum", "nesterov"))),
)
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_float64_epochs_match_numpy(backend_factory, loss: str, optimizer: str, l2: float) -> None:
    """Same weights and batches: the same model to rounding. With l2 > 0 this pins the mapping
    L2(l2 / 2), and the returned loss is the data loss without the penalty, as NumPy's."""
    X, y, n_out = _data(loss)
    spec = ModelSpec(
        n_inputs=5,
        n_outputs=n_out,
        hidden=(8, 6),
        activation="elu",
        loss=loss,
        optimizer=optimizer,
        lr=0.05,
        l2=l2,
        batch_size=16,
        dtype="float64",
    )
    b = backend_factory()
    ref, losses = _train_both(b, spec, X, y)
    for got, want in losses:
        assert got == pytest.approx(want, rel=1e-12)
    assert _rel(b.get_weights(), ref.get_weights()) <= 1e-12
    assert _rel([(b.predict(X),)], [(ref.predict(X),)]) <= 1e-12


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "elu"])
def test_activations_match_numpy(backend_factory, activation: str) -> None:
    X, y, _ = _data("cross_entropy")
    spec = ModelSpec(
        n_inputs=5,
        n_outputs=3,
        hidden=(8,),
        activation=activation,
        optimizer="sgd",
        lr=0.1,
        batch_size=16,
        dtype="float64",
    )
    b = backend_factory()
    ref, _ = _train_both(b, spec, X, y, epochs=1)
    # TensorFlow's LeakyRelu op holds its slope in a float32 attribute (see the next test): 0.01 is
    # 0.01 * (1 - 2.2e-8) there, which moves the weights by ~3e-11 relative after this epoch.
    tol = 1e-9 if activation == "leaky_relu" else 1e-12
    assert _rel(b.get_weights(), ref.get_weights()) <= tol


def test_leaky_relu_slope_is_the_spec_slope_not_keras_default(backend_factory) -> None:
    b = backend_factory()
    spec = ModelSpec(n_inputs=1, n_outputs=1, hidden=(1,), activation="leaky_relu", loss="mse", dtype="float64")
    b.build(spec, [(np.ones((1, 1)), np.zeros(1)), (np.ones((1, 1)), np.zeros(1))], seed=0)
    slope = -float(b.predict(np.array([[-1.0]]))[0, 0])
    assert slope == float(np.float32(0.01))  # 0.01 rounded to float32 by TensorFlow's op; Keras' default is 0.2


def test_adam_differs_from_pytorch_only_where_epsilon_enters(backend_factory) -> None:
    """Keras adds epsilon to sqrt(v), PyTorch to sqrt(v_hat): with a negligible epsilon the two agree to
    rounding; with the default 1e-8 a small difference remains (reported by the parity check)."""
    X, y, _ = _data("cross_entropy")
    base = ModelSpec(n_inputs=5, n_outputs=3, hidden=(8, 6), optimizer="adam", lr=0.01, batch_size=16, dtype="float64")
    b = backend_factory()
    ref, losses = _train_both(b, base.replace(eps=1e-30), X, y)
    assert _rel(b.get_weights(), ref.get_weights()) <= 1e-12
    ref, losses = _train_both(b, base, X, y)
    assert 1e-12 < _rel(b.get_weights(), ref.get_weights()) < 1e-4


def test_rmsprop_differs_from_pytorch_only_where_epsilon_enters(backend_factory) -> None:
    """Keras: p -= lr·g / sqrt(v + epsilon), PyTorch: lr·g / (sqrt(v) + eps); rho = alpha, epsilon = eps².
    With a negligible eps the rules agree to rounding; with the default 1e-8 the difference is measured."""
    X, y, _ = _data("cross_entropy")
    base = ModelSpec(
        n_inputs=5, n_outputs=3, hidden=(8, 6), optimizer="rmsprop", lr=0.01, alpha=0.9, batch_size=16, dtype="float64"
    )
    b = backend_factory()
    ref, losses = _train_both(b, base.replace(eps=1e-20), X, y)
    assert _rel(b.get_weights(), ref.get_weights()) <= 1e-12
    for got, want in losses:
        assert got == pytest.approx(want, rel=1e-12)
    assert float(b.optimizer_.rho) == 0.9 and float(b.optimizer_.epsilon) == 1e-40
    ref, _ = _train_both(b, base, X, y)
    assert 1e-12 < _rel(b.get_weights(), ref.get_weights()) < 1e-2


class _BiasedRunningVariance(NumpyMLP):
    """The NumPy reference with Keras' moving variance: the biased batch variance (no m / (m - 1))."""

    def _update_running_stats(self, ws, m):
        for var in ws.bn_var:
            var *= (m - 1) / m
        super()._update_running_stats(ws, m)


@pytest.mark.parametrize("batch_norm", ["before", "after"])
@pytest.mark.parametrize("options", [{}, {"loop": "fit"}], ids=["graph", "fit"])
def test_batch_norm_trains_exactly_and_keeps_a_biased_moving_variance(backend_factory, batch_norm, options) -> None:
    """momentum = 1 - bn_momentum and epsilon = bn_eps map exactly: training (batch statistics, gamma, beta) is
    NumPy's to rounding. The moving variance is the biased one: exactly the reference with that change, while
    the reference itself (PyTorch's unbiased rule) predicts differently."""
    X, y, _ = _data("cross_entropy", n=48)  # full batches of 16
    spec = ModelSpec(
        n_inputs=5,
        n_outputs=3,
        hidden=(8, 6),
        activation="tanh",
        optimizer="momentum",
        lr=0.05,
        l2=0.01,
        batch_size=16,
        batch_norm=batch_norm,
        bn_momentum=0.2,
        dtype="float64",
    )
    b = backend_factory(**options)
    ref, losses = _train_both(b, spec, X, y)
    for got, want in losses:
        assert got == pytest.approx(want, rel=1e-12)
    assert _rel(b.get_weights(), ref.get_weights()) <= 1e-12
    keras_state, ref_state = b.batch_norm_state(), ref.batch_norm_state()
    for got, want in zip(keras_state, ref_state, strict=True):
        for key in ("gamma", "beta", "running_mean"):
            assert _rel([(got[key],)], [(want[key],)]) <= 1e-12, key
        np.testing.assert_allclose(got["running_var"], want["running_var"], rtol=0.05)  # 16/15: up to 6.7% apart
        assert _rel([(got["running_var"],)], [(want["running_var"],)]) > 1e-3
    assert _rel([(b.predict(X),)], [(ref.predict(X),)]) > 1e-4
    biased = _BiasedRunningVariance()
    biased.build(spec, initial_weights(spec, 2), 2)
    for epoch in range(2):
        biased.train_epoch(X, y, batch_order(len(X), spec.batch_size, 2, epoch))
    for got, want in zip(keras_state, biased.batch_norm_state(), strict=True):
        assert _rel([(got["running_var"],)], [(want["running_var"],)]) <= 1e-12
    assert _rel([(b.predict(X),)], [(biased.predict(X),)]) <= 1e-12


def test_batch_norm_layers_are_in_the_specs_order(backend_factory) -> None:
    b = backend_factory()
    spec = ModelSpec(n_inputs=5, n_outputs=3, hidden=(4,), dropout=0.2, dtype="float64")
    names = {}
    for batch_norm in ("after", "before"):
        b.build(spec.replace(batch_norm=batch_norm), None, 0)
        names[batch_norm] = [type(layer).__name__ for layer in b.model_.layers]
        assert b.norms_[0].momentum == pytest.approx(0.9) and b.norms_[0].epsilon == spec.bn_eps
        assert [(W.shape, v.shape) for W, v in b.get_weights()] == [((5, 4), (4,)), ((4, 3), (3,))]
    assert names["after"] == ["Dense", "BatchNormalization", "Dropout", "Dense"]  # Dense applies the activation
    assert names["before"] == ["Dense", "BatchNormalization", "Activation", "Dropout", "Dense"]
    assert b.dense_[0].activation is not None and b.norms_[0].gamma_regularizer is None  # no L2 on gamma


def test_native_mode_adds_the_batch_norm_layers(backend_factory, registry) -> None:
    from mlpbench.worker import execute

    task = registry.task("xor")()
    spec = task.spec().replace(batch_norm="after", epochs=3)
    b = backend_factory()
    record = execute(b, task, task.load(0), {"id": "k/bn", "seed": 0, "mode": "native", "spec": spec.to_dict()})
    assert record["status"] == "ok", record.get("error")
    assert "BatchNormalization" in [type(layer).__name__ for layer in b.model_.layers]


def test_fit_loop_and_xla_match_numpy(backend_factory) -> None:
    """The other ways to run an epoch train the same model: model.fit on the runner's order, and XLA."""
    X, y, _ = _data("cross_entropy")
    spec = ModelSpec(
        n_inputs=5, n_outputs=3, hidden=(8,), optimizer="momentum", lr=0.05, l2=0.01, batch_size=16, dtype="float64"
    )
    for options in ({"loop": "fit"}, {"loop": "fit", "steps_per_execution": 2}, {"jit_compile": True}):
        b = backend_factory(**options)
        ref, losses = _train_both(b, spec, X, y)
        for got, want in losses:
            assert got == pytest.approx(want, rel=1e-12), options
        assert _rel(b.get_weights(), ref.get_weights()) <= 1e-12, options


def test_engine_is_chosen_through_keras_backend() -> None:
    assert KerasMLP.worker_env({}) == {"KERAS_BACKEND": "tensorflow"}
    assert KerasMLP.worker_env({"engine": "torch"}) == {"KERAS_BACKEND": "torch"}
    assert KerasMLP(engine="torch").loop == "fit" and KerasMLP().loop == "graph"
    with pytest.raises(ValueError, match="engine='mxnet'"):
        KerasMLP(engine="mxnet")
    with pytest.raises(ValueError, match="loop=graph needs engine=tensorflow"):
        KerasMLP(engine="torch", loop="graph")


def test_a_missing_engine_is_a_skip_reason() -> None:
    spec = ModelSpec(n_inputs=2, n_outputs=1, loss="binary_cross_entropy")
    reason = KerasMLP(engine="jax").skip(spec)
    if importlib.util.find_spec("jax") is None:
        assert reason is not None and "engine 'jax' is not installed" in reason
    else:
        assert reason is None


def test_torch_engine_runs_in_a_real_worker(tmp_path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "run_bench.py",
            "run",
            "--backends",
            "keras[engine=torch]",
            "--tasks",
            "xor",
            "--seeds",
            "1",
            "--epochs",
            "3",
            "--out",
            str(out),
            "--no-progress",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (record,) = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert record["status"] == "ok", record.get("error")
    assert record["backend_options"] == {"engine": "torch"} and record["epochs_run"] == 3
    assert "torch" in record["versions"] and "tensorflow" not in record["versions"]
