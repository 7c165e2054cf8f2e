"""The NumPy backend's speed-motivated structure gives the same numbers as the plain one.

(tests/test_numpy_mlp.py checks the mathematics; these check the fast paths: one flat
parameter buffer, the block-wise optimizer, the once-per-epoch gather.)
"""

from __future__ import annotations

import numpy as np
import pytest

from mlpbench import ModelSpec
from mlpbench.backends.numpy_mlp import OPTIMIZERS, UPDATE_BLOCK, NumpyMLP
from mlpbench.controlled import batch_order, initial_weights


def _model(spec: ModelSpec, seed: int = 0) -> NumpyMLP:
    model = NumpyMLP()
    model.build(spec, initial_weights(spec, seed), seed)
    return model


def test_parameters_and_gradients_are_views_of_one_flat_buffer() -> None:
    spec = ModelSpec(n_inputs=3, n_outputs=2, hidden=(4,), dtype="float64")
    model = _model(spec)
    assert model.flat_params_.size == spec.n_parameters()
    model.params_[2][0, 1] = 42.0  # W1[0, 1]: after W0 (3x4) and b0 (4)
    assert model.flat_params_[3 * 4 + 4 + 1] == 42.0
    model.flat_grads_[:] = 7.0
    assert all(np.all(g == 7.0) for g in model.grads_)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_blockwise_update_equals_one_pass_over_all_parameters(optimizer: str) -> None:
    spec = ModelSpec(n_inputs=400, n_outputs=3, hidden=(400,), optimizer=optimizer, lr=0.01, l2=0.1, dtype="float64")
    assert spec.n_parameters() > 2 * UPDATE_BLOCK  # several blocks, the last one partial
    blocked, reference = _model(spec), _model(spec)
    update, _ = OPTIMIZERS[optimizer]
    rng = np.random.default_rng(0)
    for step in range(1, 4):
        g = rng.standard_normal(spec.n_parameters())
        blocked.flat_grads_[:] = g
        blocked._apply_update()
        reference.flat_grads_[:] = g
        reference._add_l2()
        reference._hyper.start_step(step)
        update(reference._hyper, reference.flat_params_, reference.flat_grads_, reference.state_, reference._tmp)
    np.testing.assert_array_equal(blocked.flat_params_, reference.flat_params_)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_train_epoch_equals_stepping_batch_by_batch(loss: str) -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((23, 5))
    y = rng.integers(0, 3, 23) if loss == "cross_entropy" else rng.standard_normal((23, 3))
    spec = ModelSpec(n_inputs=5, n_outputs=3, hidden=(6,), loss=loss, batch_size=4, dtype="float64")
    batches = batch_order(23, 4, seed=0, epoch=0)  # the last batch has 3 samples
    epoch, steps = _model(spec), _model(spec)
    mean = epoch.train_epoch(X, y, batches)
    losses = []
    for idx in batches:
        value, _ = steps.loss_and_gradients(X[idx], y[idx])
        steps._apply_update()
        losses.append(value * len(idx))
    np.testing.assert_allclose(epoch.flat_params_, steps.flat_params_, rtol=0, atol=1e-14)
    assert mean == pytest.approx(sum(losses) / 23, rel=1e-12)


def test_out_of_range_batch_index_is_an_error_not_a_silent_clip() -> None:
    spec = ModelSpec(n_inputs=2, n_outputs=2, hidden=(3,))
    model = _model(spec)
    X, y = np.zeros((5, 2), dtype=np.float32), np.zeros(5, dtype=np.int64)
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        model.train_epoch(X, y, [np.array([0, 1]), np.array([4, 5])])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(32, 64), (128, 1024)])  # below and above VECTOR_MIN_ELEMENTS
def test_relu_and_its_derivative_give_the_bits_of_the_plain_expressions(shape: tuple[int, int], dtype: str) -> None:
    from mlpbench.backends import numpy_mlp

    assert shape[0] * shape[1] != numpy_mlp.VECTOR_MIN_ELEMENTS
    rng = np.random.default_rng(0)
    z = rng.standard_normal(shape).astype(dtype)
    z[0, :4] = [-0.0, 0.0, -1e-30, 1e-30]  # signed zeros and tiny values
    a = z.copy()
    numpy_mlp._relu(a)
    expected = np.maximum(z, 0.0)
    assert a.tobytes() == expected.tobytes() and not np.signbit(a).any()
    d = rng.standard_normal(shape).astype(dtype)
    g, scratch = d.copy(), np.empty_like(d)
    numpy_mlp._relu_grad(g, a, scratch)
    assert g.tobytes() == (d * np.sign(expected)).tobytes()
