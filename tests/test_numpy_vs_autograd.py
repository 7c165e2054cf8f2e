"""The NumPy backend's hand-written gradients against PyTorch autograd, in float64.

The oracle is independent of our code: autograd differentiates the objective
(mean loss + l2/2·ΣW²) built from torch's own functional losses and activations.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _helpers import random_problem

from mlpbench import ModelSpec
from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.controlled import initial_weights
from mlpbench.parity import relative_difference
from mlpbench.spec import ACTIVATIONS, ELU_ALPHA, LEAKY_RELU_SLOPE, LOSSES

torch = pytest.importorskip("torch")
F = torch.nn.functional

# Hand-written float64 backprop and autograd agree to a few ulps of the gradient's scale;
# measured worst case here: 1.1e-15 (a wrong gradient shows up at 1e-3 and above).
TOLERANCE = 1e-12


def _problem(loss: str, n: int = 9, n_in: int = 5, n_out: int = 3, seed: int = 0):
    return random_problem(loss, n=n, n_in=n_in, n_out=n_out, seed=seed)


def _autograd(spec: ModelSpec, weights, X: np.ndarray, y: np.ndarray):
    act = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": F.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, LEAKY_RELU_SLOPE),
        "elu": lambda z: F.elu(z, ELU_ALPHA),
    }[spec.activation]
    params = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in weights]
    a = torch.tensor(X)
    for i, (W, b) in enumerate(params):
        a = a @ W + b
        if i < len(params) - 1:
            a = act(a)
    if spec.loss == "cross_entropy":
        value = F.cross_entropy(a, torch.tensor(y))
    elif spec.loss == "binary_cross_entropy":
        value = F.binary_cross_entropy_with_logits(a[:, 0], torch.tensor(y, dtype=torch.float64))
    elif spec.loss == "mse":
        value = F.mse_loss(a, torch.tensor(y))
    else:
        value = F.l1_loss(a, torch.tensor(y))
    value = value + 0.5 * spec.l2 * sum((W * W).sum() for W, _ in params)
    value.backward()
    return value.item(), [(W.grad.numpy(), b.grad.numpy()) for W, b in params]


_rel = relative_difference  # max|a - b| / max|b|: the parity check's measure


@pytest.mark.parametrize(("activation", "loss"), list(itertools.product(ACTIVATIONS, LOSSES)))
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_gradients_match_autograd(activation: str, loss: str, l2: float) -> None:
    X, y, n_out = _problem(loss)
    spec = ModelSpec(
        n_inputs=5, n_outputs=n_out, hidden=(6, 4), activation=activation, loss=loss, l2=l2, dtype="float64"
    )
    rng = np.random.default_rng(1)
    # Non-zero biases so no unit sits exactly at a kink (relu, leaky_relu, elu at 0).
    weights = [(W, rng.uniform(-0.3, 0.3, b.shape)) for W, b in initial_weights(spec, seed=3)]
    model = NumpyMLP()
    model.build(spec, weights, seed=3)
    value, grads = model.loss_and_gradients(X, y)
    ref_value, ref_grads = _autograd(spec, weights, X, y)
    assert abs(value - ref_value) <= TOLERANCE * abs(ref_value), f"objective {value!r} vs autograd {ref_value!r}"
    for layer, ((gW, gb), (rW, rb)) in enumerate(zip(grads, ref_grads, strict=True)):
        assert _rel(gW, rW) <= TOLERANCE, f"layer {layer} weight gradient: rel error {_rel(gW, rW):.1e}"
        assert _rel(gb, rb) <= TOLERANCE, f"layer {layer} bias gradient: rel error {_rel(gb, rb):.1e}"
