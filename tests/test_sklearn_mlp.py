"""The scikit-learn backend: the runner's weights go in unchanged, float64 epochs match the NumPy
backend exactly where the mapping is exact (both loops), Adam differs only by scikit-learn's epsilon
placement, it learns XOR, and what scikit-learn cannot do is a skip reason."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import random_problem, weights_rel_diff

from mlpbench import ModelSpec
from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.backends.sklearn_mlp import SklearnMLP
from mlpbench.controlled import batch_order, initial_weights
from mlpbench.worker import execute

pytest.importorskip("sklearn")

LOOPS = ("batch", "partial_fit")
# (loss, n_outputs): the binary unit, softmax, and mse with one and with several outputs
# (scikit-learn's mse gradient scale depends on the number of outputs).
PROBLEMS = [("binary_cross_entropy", 1), ("cross_entropy", 3), ("mse", 1), ("mse", 3)]


def _data(loss: str, n_out: int, n: int = 50, n_in: int = 5, seed: int = 0):
    X, y, _ = random_problem(loss, n=n, n_in=n_in, n_out=n_out, seed=seed)
    return X, y


_rel = weights_rel_diff


def _pair(spec: ModelSpec, loop: str, seed: int = 2) -> tuple[NumpyMLP, SklearnMLP]:
    weights = initial_weights(spec, seed)
    ref, b = NumpyMLP(), SklearnMLP(loop=loop)
    ref.build(spec, weights, seed)
    b.build(spec, weights, seed)
    return ref, b


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_get_weights_returns_the_given_weights(loop: str, dtype: str) -> None:
    """The initialising partial_fit call leaves no trace in the weights."""
    spec = ModelSpec(n_inputs=5, n_outputs=3, hidden=(7, 4), dtype=dtype)
    weights = initial_weights(spec, seed=1)
    b = SklearnMLP(loop=loop)
    b.build(spec, weights, seed=1)
    for (W, bias), (W2, b2) in zip(weights, b.get_weights(), strict=True):
        assert W2.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(W2, W)
        np.testing.assert_array_equal(b2, bias)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(("loss", "n_out"), PROBLEMS)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_float64_epochs_match_numpy(loop: str, loss: str, n_out: int, optimizer: str) -> None:
    """l2 > 0 and a smaller last batch (50 = 3·16 + 2): alpha and the mse scale are mapped exactly."""
    X, y = _data(loss, n_out)
    spec = ModelSpec(
        n_inputs=5,
        n_outputs=n_out,
        hidden=(8, 6),
        activation="tanh",
        loss=loss,
        optimizer=optimizer,
        lr=0.05,
        l2=0.01,
        batch_size=16,
        dtype="float64",
    )
    ref, b = _pair(spec, loop)
    for epoch in range(3):
        batches = batch_order(len(X), spec.batch_size, seed=2, epoch=epoch)
        loss_ref, loss_b = ref.train_epoch(X, y, batches), b.train_epoch(X, y, batches)
        if loop == "batch":  # partial_fit's loss keeps scikit-learn's L2 penalty in (documented)
            assert loss_b == pytest.approx(loss_ref, rel=1e-12)
    assert _rel(b.get_weights(), ref.get_weights()) <= 1e-12
    assert _rel([(b.predict(X),)], [(ref.predict(X),)]) <= 1e-12


@pytest.mark.parametrize(("loss", "n_out"), PROBLEMS)
def test_partial_fit_loss_without_l2_matches_numpy(loss: str, n_out: int) -> None:
    X, y = _data(loss, n_out)
    spec = ModelSpec(
        n_inputs=5, n_outputs=n_out, hidden=(8,), loss=loss, optimizer="sgd", lr=0.05, batch_size=16, dtype="float64"
    )
    ref, b = _pair(spec, "partial_fit")
    batches = batch_order(len(X), spec.batch_size, seed=0, epoch=0)
    assert b.train_epoch(X, y, batches) == pytest.approx(ref.train_epoch(X, y, batches), rel=1e-12)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(("loss", "n_out"), PROBLEMS)
def test_adam_differs_only_by_epsilon_placement(loop: str, loss: str, n_out: int) -> None:
    """scikit-learn adds eps to sqrt(v) before the bias correction: with eps -> 0 the rules coincide."""
    X, y = _data(loss, n_out)
    results = {}
    for eps in (1e-8, 1e-30):
        spec = ModelSpec(
            n_inputs=5,
            n_outputs=n_out,
            hidden=(8,),
            activation="relu",
            loss=loss,
            optimizer="adam",
            lr=0.01,
            eps=eps,
            l2=0.01,
            batch_size=16,
            dtype="float64",
        )
        ref, b = _pair(spec, loop)
        for epoch in range(3):
            batches = batch_order(len(X), spec.batch_size, seed=2, epoch=epoch)
            ref.train_epoch(X, y, batches)
            b.train_epoch(X, y, batches)
        results[eps] = _rel(b.get_weights(), ref.get_weights())
    assert results[1e-30] <= 1e-12
    assert results[1e-8] > 1e-12  # the difference is real, and is what the parity check reports


def test_learns_xor(registry) -> None:
    task = registry.task("xor")()
    record = execute(SklearnMLP(), task, task.load(0), {"id": "t", "seed": 0, "spec": task.spec().to_dict()})
    assert record["status"] == "ok", record.get("error")
    assert record["test_accuracy"] == 1.0


def test_predict_shapes() -> None:
    X, _ = _data("mse", 1)
    spec = ModelSpec(n_inputs=5, n_outputs=1, loss="binary_cross_entropy")
    b = SklearnMLP()
    b.build(spec, None, seed=0)
    p = b.predict(X.astype(np.float32))
    assert p.shape == (len(X), 2) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    spec = ModelSpec(n_inputs=5, n_outputs=1, loss="mse", dtype="float64")
    b.build(spec, None, seed=0)
    assert b.predict(X).shape == (len(X), 1)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"activation": "elu"}, "activation 'elu'"),
        ({"activation": "leaky_relu"}, "activation 'leaky_relu'"),
        ({"loss": "mae", "n_outputs": 1}, "loss 'mae'"),
        ({"dropout": 0.2}, "dropout"),
        ({"n_outputs": 2}, "one logistic output unit"),
        ({"optimizer": "rmsprop"}, "optimizer 'rmsprop' (supported: sgd, momentum, nesterov, adam)"),
        ({"batch_norm": "after"}, "sklearn does not support batch_norm"),
        ({"batch_norm": "before"}, "sklearn does not support batch_norm"),
    ],
)
def test_what_sklearn_cannot_run_is_a_skip_reason(changes: dict, reason: str) -> None:
    spec = ModelSpec(n_inputs=4, n_outputs=3, loss="cross_entropy").replace(**changes)
    assert reason in SklearnMLP().skip(spec)


def test_unknown_loop_is_refused() -> None:
    with pytest.raises(ValueError, match="loop"):
        SklearnMLP(loop="fit")


# ------------------------------------------------ the private internals of loop=batch
#: The parameters of every private function loop=batch calls, as scikit-learn 1.4 to 1.9 have them
#: (``sample_weight`` joined _backprop in 1.7). A scikit-learn that changes one fails here first.
PRIVATE_SIGNATURES = {
    "BaseMultilayerPerceptron._backprop": (
        ["self", "X", "y", "activations", "deltas", "coef_grads", "intercept_grads"],
        ["self", "X", "y", "sample_weight", "activations", "deltas", "coef_grads", "intercept_grads"],
    ),
    "AdamOptimizer.__init__": (["self", "params", "learning_rate_init", "beta_1", "beta_2", "epsilon"],),
    "SGDOptimizer.__init__": (
        ["self", "params", "learning_rate_init", "lr_schedule", "momentum", "nesterov", "power_t"],
    ),
    "BaseOptimizer.update_params": (["self", "params", "grads"],),
}


def test_private_signatures_used_by_loop_batch_are_unchanged() -> None:
    import inspect

    from sklearn.neural_network import _multilayer_perceptron, _stochastic_optimizers

    modules = {
        "BaseMultilayerPerceptron": _multilayer_perceptron,
        "AdamOptimizer": _stochastic_optimizers,
        "SGDOptimizer": _stochastic_optimizers,
        "BaseOptimizer": _stochastic_optimizers,
    }
    for name, expected in PRIVATE_SIGNATURES.items():
        cls_name, fn = name.split(".")
        params = list(inspect.signature(getattr(getattr(modules[cls_name], cls_name), fn)).parameters)
        assert params in [list(e) for e in expected], f"scikit-learn changed {name}: {params}"
    # The private state build() touches after its initialising partial_fit.
    b = SklearnMLP()
    b.build(ModelSpec(n_inputs=3, n_outputs=3), None, seed=0)
    assert hasattr(b.model_, "_label_binarizer") and hasattr(b.model_, "_optimizer")


def test_the_supported_range_is_the_bound_in_pyproject() -> None:
    import re
    import tomllib
    from pathlib import Path

    from mlpbench.backends.sklearn_mlp import BATCH_LOOP_VERSIONS

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    (bound,) = [d for d in project["project"]["dependencies"] if d.startswith("scikit-learn")]
    numbers = [int(n) for n in re.fullmatch(r"scikit-learn>=(\d+)\.(\d+),<(\d+)\.(\d+)", bound).groups()]
    assert BATCH_LOOP_VERSIONS == (tuple(numbers[:2]), tuple(numbers[2:]))


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("1.3.2", False),
        ("1.4.0", True),
        ("1.9.1", True),
        ("1.10.0", False),
        ("1.10.dev0", False),
        ("2.0.0", False),
    ],
)
def test_loop_batch_outside_the_supported_versions_is_a_skip_reason(version, supported) -> None:
    spec = ModelSpec(n_inputs=4, n_outputs=3)
    b = SklearnMLP()
    b.sklearn_version_ = version  # as prepare() finds it
    reason = b.skip_mode(spec, "controlled")
    if supported:
        assert reason is None
    else:
        assert "outside the versions" in reason and "use sklearn[loop=partial_fit]" in reason
    assert b.skip_mode(spec, "native") is None  # the public fit only
    partial = SklearnMLP(loop="partial_fit")
    partial.sklearn_version_ = version
    assert partial.skip_mode(spec, "controlled") is None  # public API only


def test_prepare_reads_the_installed_version() -> None:
    import sklearn

    from mlpbench.backends.sklearn_mlp import batch_loop_unsupported

    assert "(version unknown)" in batch_loop_unsupported(None)

    b = SklearnMLP()
    b.prepare(threads=1)
    assert b.sklearn_version_ == sklearn.__version__
    assert b.skip_mode(ModelSpec(n_inputs=4, n_outputs=3), "controlled") is None


def test_an_unsupported_version_skips_the_controlled_job_not_the_native_one(registry) -> None:
    task = registry.task("xor")()
    b = SklearnMLP()
    b.prepare(threads=1)
    b.sklearn_version_ = "1.10.0"  # as prepare() would find a newer scikit-learn
    job = {"id": "t", "seed": 0, "spec": task.spec().to_dict()}
    record = execute(b, task, task.load(0), {**job, "mode": "controlled"})
    assert record["status"] == "skipped" and "sklearn[loop=partial_fit]" in record["error"]
    record = execute(b, task, task.load(0), {**job, "mode": "native"})
    assert record["status"] == "ok" and record["timing"] == "whole_call"
