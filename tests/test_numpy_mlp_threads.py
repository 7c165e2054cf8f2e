"""The NumPy backend on more than one thread: cut only where it pays, the same numbers to rounding.

With one thread the backend must run exactly the code it ran before threads existed (bit for
bit); with two it may differ from one thread only by float rounding: BLAS rounds a product of
half the rows differently, nothing else changes (docs/performance/2026-12-01-numpy-threads.md
has the measured differences). Nothing here looks at a clock: whether a step was cut is read
from the plan functions and the model's counters.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

from mlpbench import ModelSpec
from mlpbench.backends import numpy_mlp
from mlpbench.backends.numpy_mlp import NumpyMLP, step_parts
from mlpbench.controlled import batch_order, initial_weights

#: Largest relative difference (max |a - b| / max |b|) between 2 and 1 threads allowed for one step's
#: gradient or a few epochs of a small network, per dtype: ten times the largest measured.
ROUNDING = {"float64": 1e-14, "float32": 3e-6}

DIGITS = ModelSpec(n_inputs=64, n_outputs=10, hidden=(64,), batch_size=32)  # the default digits network
SCALING = ModelSpec(n_inputs=64, n_outputs=10, hidden=(1024, 1024), optimizer="adam", batch_size=512)
#: The smallest network here whose batch-512 step is cut at two threads: one step costs milliseconds.
WIDE = ModelSpec(n_inputs=64, n_outputs=10, hidden=(1024,), optimizer="adam", batch_size=512)


def _problem(spec: ModelSpec, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, spec.n_inputs)).astype(spec.dtype)
    if spec.loss == "cross_entropy":
        return X, rng.integers(0, spec.n_outputs, n)
    if spec.loss == "binary_cross_entropy":
        return X, rng.integers(0, 2, n)
    return X, rng.standard_normal((n, spec.n_outputs)).astype(spec.dtype)


def _model(spec: ModelSpec, threads: int | None) -> NumpyMLP:
    model = NumpyMLP()
    if threads is not None:
        model.prepare(threads)
    model.build(spec, initial_weights(spec, 0), 0)
    return model


def _train(model: NumpyMLP, X: np.ndarray, y: np.ndarray, epochs: int, blas_threads: int) -> list[float]:
    with threadpool_limits(blas_threads):  # as the runner: BLAS gets the thread budget
        return [model.train_epoch(X, y, batch_order(len(X), model.spec_.batch_size, 0, e)) for e in range(epochs)]


def _gradient(model: NumpyMLP, X: np.ndarray, y: np.ndarray, blas_threads: int) -> tuple[float, np.ndarray]:
    with threadpool_limits(blas_threads):
        loss, grads = model.loss_and_gradients(X, y)
    return loss, np.concatenate([np.concatenate([gW.ravel(), gb.ravel()]) for gW, gb in grads])


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture
def cut_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """The threshold at zero: every step is cut, so small (fast) networks exercise the threaded code."""
    monkeypatch.setattr(numpy_mlp, "SPLIT_MIN_ACTIVATIONS", 0)


# --------------------------------------------------------------- the plan
def test_plan_cuts_a_large_step_and_leaves_a_small_one() -> None:
    assert step_parts(SCALING, 512, threads=2) == 2
    assert step_parts(WIDE, 512, threads=2) == 2
    assert step_parts(WIDE, 256, threads=2) == 1  # half the batch: below the threshold
    assert step_parts(DIGITS, 32, threads=2) == 1  # 32 x 74 activations: hand-offs would cost more than they save
    for spec, m in ((SCALING, 512), (DIGITS, 32)):
        assert step_parts(spec, m, threads=1) == 1
    assert step_parts(SCALING, 1, threads=2) == 1  # fewer rows than threads


def test_large_step_runs_in_parts_and_small_one_does_not() -> None:
    X, y = _problem(WIDE, 1024)
    wide = _model(WIDE, threads=2)
    _train(wide, X, y, epochs=1, blas_threads=2)
    assert wide.split_steps_ == 2  # both batches of 512

    X, y = _problem(DIGITS, 96)
    small = _model(DIGITS, threads=2)
    _train(small, X, y, epochs=1, blas_threads=2)
    assert small.split_steps_ == 0


# ------------------------------------------------------- one thread: untouched
def test_one_thread_runs_the_unthreaded_code_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """prepare(1), no prepare at all, and two threads with cutting disabled run the same code: equal bits.

    WIDE is cut at two threads, so the first two show that one thread never takes the threaded code.
    """
    X, y = _problem(WIDE, 1024)
    runs = {}
    for name, threads in (("unprepared", None), ("one thread", 1), ("two threads, never cut", 2)):
        if name == "two threads, never cut":
            monkeypatch.setattr(numpy_mlp, "SPLIT_MIN_ACTIVATIONS", 1 << 62)
        model = _model(WIDE, threads)
        losses = _train(model, X, y, epochs=2, blas_threads=1)
        assert model.split_steps_ == 0, name
        runs[name] = (losses, model.flat_params_.copy(), model.state_[0].copy())
    assert _model(WIDE, 1)._team is None  # no pool at one thread
    reference = runs.pop("unprepared")
    for name, (losses, params, state) in runs.items():
        assert losses == reference[0], name
        np.testing.assert_array_equal(params, reference[1], err_msg=name)
        np.testing.assert_array_equal(state, reference[2], err_msg=name)


# --------------------------------------------- two threads: the same to rounding
def test_two_threads_match_one_thread_on_a_step_that_is_really_cut() -> None:
    X, y = _problem(WIDE, 512)
    one, two = _model(WIDE, 1), _model(WIDE, 2)
    loss1, g1 = _gradient(one, X, y, blas_threads=1)
    loss2, g2 = _gradient(two, X, y, blas_threads=2)
    assert two.split_steps_ == 1
    assert _rel(g2, g1) <= ROUNDING["float32"]
    assert loss2 == pytest.approx(loss1, rel=ROUNDING["float32"])


CASES = [
    *itertools.product(["float64"], ["relu", "tanh", "sigmoid", "leaky_relu", "elu"], ["cross_entropy"], ["adam"]),
    *itertools.product(["float64"], ["relu"], ["mse", "mae", "binary_cross_entropy"], ["sgd", "momentum"]),
    ("float64", "tanh", "cross_entropy", "nesterov"),
    ("float32", "relu", "cross_entropy", "adam"),
    ("float32", "elu", "mse", "sgd"),
]


@pytest.mark.usefixtures("cut_everything")
@pytest.mark.parametrize(("dtype", "activation", "loss", "optimizer"), CASES)
@pytest.mark.parametrize("regularised", [False, True], ids=["plain", "l2+dropout"])
def test_two_threads_match_one_thread_to_rounding(
    dtype: str, activation: str, loss: str, optimizer: str, regularised: bool
) -> None:
    n_outputs = 1 if loss == "binary_cross_entropy" else 3
    extra = {"l2": 1e-3, "dropout": 0.2} if regularised else {}
    spec = ModelSpec(
        n_inputs=7,
        n_outputs=n_outputs,
        hidden=(13, 9),
        activation=activation,
        loss=loss,
        optimizer=optimizer,
        lr=0.01,
        batch_size=50,
        dtype=dtype,
        **extra,
    )
    X, y = _problem(spec, 230)  # the last batch has 30 rows: cut unevenly
    one, two = _model(spec, 1), _model(spec, 2)
    _, g1 = _gradient(one, X[:50], y[:50], blas_threads=1)
    _, g2 = _gradient(two, X[:50], y[:50], blas_threads=2)
    assert _rel(g2, g1) <= ROUNDING[dtype]
    losses1 = _train(one, X, y, epochs=3, blas_threads=1)
    losses2 = _train(two, X, y, epochs=3, blas_threads=2)
    assert two.split_steps_ == 1 + 3 * 5 and one.split_steps_ == 0
    np.testing.assert_allclose(losses2, losses1, rtol=ROUNDING[dtype])
    assert _rel(two.flat_params_, one.flat_params_) <= ROUNDING[dtype]


@pytest.mark.usefixtures("cut_everything")
def test_more_threads_than_rows_of_a_layer() -> None:
    """Three parts of a 2-input, 1-output network: some parts of dW and db are empty."""
    spec = ModelSpec(
        n_inputs=2,
        n_outputs=1,
        hidden=(5,),
        loss="binary_cross_entropy",
        optimizer="adam",
        batch_size=16,
        dtype="float64",
    )
    X, y = _problem(spec, 64)
    one, three = _model(spec, 1), _model(spec, 3)
    _train(one, X, y, epochs=2, blas_threads=1)
    _train(three, X, y, epochs=2, blas_threads=3)
    assert three.split_steps_ == 8
    assert _rel(three.flat_params_, one.flat_params_) <= ROUNDING["float64"]


# ----------------------------------------------------------------- the team
def test_blas_is_held_to_one_thread_while_a_step_runs_in_parts() -> None:
    blas = ThreadpoolController().select(user_api="blas")
    if not blas.lib_controllers:
        pytest.skip("threadpoolctl finds no BLAS library to control here")
    X, y = _problem(WIDE, 512)
    model = _model(WIDE, 2)
    seen: list[int] = []
    forward = model._forward_rows

    def spy(*args: object) -> None:
        seen.append(max(lib["num_threads"] for lib in ThreadpoolController().select(user_api="blas").info()))
        forward(*args)

    model._forward_rows = spy  # type: ignore[method-assign]
    with threadpool_limits(2, user_api="blas"):
        _train(model, X, y, epochs=1, blas_threads=2)
        after = max(lib["num_threads"] for lib in ThreadpoolController().select(user_api="blas").info())
    assert seen == [1, 1]  # both parts of the one step
    assert after == 2  # restored when the epoch ends


def test_an_exception_in_a_pool_thread_reaches_the_caller_after_every_part_finished() -> None:
    team = numpy_mlp._Team(2)
    finished: list[int] = []

    def part(j: int) -> None:
        if j == 1:
            raise ValueError("part 1 failed")
        finished.append(j)

    with pytest.raises(ValueError, match="part 1 failed"):
        team.run(part, [(0,), (1,)])
    assert finished == [0]


def test_a_model_trained_in_parts_predicts_in_parts_with_blas_on_one_thread() -> None:
    """No product of a split model ever runs on BLAS's own threads, which spin for ~0.1 s after each and would
    share the cores with the next training epoch (the runner evaluates between epochs); the probabilities
    are the one-thread model's to rounding."""
    blas = ThreadpoolController().select(user_api="blas")
    if not blas.lib_controllers:
        pytest.skip("threadpoolctl finds no BLAS library to control here")
    X, y = _problem(WIDE, 1031)  # uneven parts
    one, two = _model(WIDE, 1), _model(WIDE, 2)
    _train(one, X, y, epochs=1, blas_threads=1)
    _train(two, X, y, epochs=1, blas_threads=2)
    seen: list[int] = []
    predict = two._predict

    def spy(a: np.ndarray) -> np.ndarray:
        seen.append(max(lib["num_threads"] for lib in ThreadpoolController().select(user_api="blas").info()))
        return predict(a)

    two._predict = spy  # type: ignore[method-assign]
    with threadpool_limits(2, user_api="blas"):
        p2 = two.predict(X)
        small = two.predict(X[:3])  # fewer rows than two per thread: one part, still on one BLAS thread
    assert seen == [1, 1, 1]
    with threadpool_limits(1):
        p1 = one.predict(X)
    assert p2.shape == p1.shape == (1031, WIDE.n_outputs)
    assert _rel(p2, p1) <= ROUNDING["float32"] and _rel(small, p1[:3]) <= ROUNDING["float32"]
    np.testing.assert_allclose(p2.sum(axis=1), 1.0, rtol=1e-5)
