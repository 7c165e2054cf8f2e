"""The from-scratch backend: forward pass, backpropagation and optimizers written by hand in NumPy.

Layout: activations ``a_l = f(a_{l-1} @ W_l + b_l)`` with W shaped ``(fan_in, fan_out)``,
the same convention as the runner's initial weights, so no transposes are needed at
the boundary. Every per-batch array lives in a workspace allocated once per batch
size and reused, and every update is in place, so a training step allocates almost
nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlpbench import Backend, ModelSpec
from mlpbench.controlled import initial_weights
from mlpbench.spec import ELU_ALPHA, LEAKY_RELU_SLOPE


# ---------------------------------------------------------------- activations
# Each forward function overwrites z with f(z); each derivative multiplies the
# incoming gradient `d` in place by f'(z), written in terms of the output a = f(z)
# so the pre-activation never has to be kept.
def _sigmoid(z: np.ndarray) -> None:
    # 0.5 * (1 + tanh(z / 2)) never overflows, unlike 1 / (1 + exp(-z)).
    z *= 0.5
    np.tanh(z, out=z)
    z *= 0.5
    z += 0.5


def _sigmoid_grad(d: np.ndarray, a: np.ndarray) -> None:
    d *= a * (1.0 - a)


def _tanh(z: np.ndarray) -> None:
    np.tanh(z, out=z)


def _tanh_grad(d: np.ndarray, a: np.ndarray) -> None:
    d *= 1.0 - a * a


def _relu(z: np.ndarray) -> None:
    np.maximum(z, 0, out=z)


def _relu_grad(d: np.ndarray, a: np.ndarray) -> None:
    np.multiply(d, a > 0, out=d)


def _leaky_relu(z: np.ndarray) -> None:
    # For a slope below 1, max(z, slope * z) is z for z > 0 and slope * z otherwise.
    np.maximum(z, z * LEAKY_RELU_SLOPE, out=z)


def _leaky_relu_grad(d: np.ndarray, a: np.ndarray) -> None:
    d *= np.where(a > 0, 1.0, LEAKY_RELU_SLOPE).astype(d.dtype, copy=False)


def _elu(z: np.ndarray) -> None:
    neg = np.minimum(z, 0)  # expm1 only of the non-positive part: no overflow for large z
    np.expm1(neg, out=neg)
    neg *= ELU_ALPHA
    np.maximum(z, 0, out=z)
    z += neg


def _elu_grad(d: np.ndarray, a: np.ndarray) -> None:
    # For z <= 0, f'(z) = alpha * exp(z) = a + alpha.
    d *= np.where(a > 0, 1.0, a + ELU_ALPHA).astype(d.dtype, copy=False)


ACTIVATIONS = {
    "sigmoid": (_sigmoid, _sigmoid_grad),
    "tanh": (_tanh, _tanh_grad),
    "relu": (_relu, _relu_grad),
    "leaky_relu": (_leaky_relu, _leaky_relu_grad),
    "elu": (_elu, _elu_grad),
}


# --------------------------------------------------------------------- losses
# Each takes the output-layer pre-activations z (m, k) and the batch targets,
# returns the mean per-sample loss, and overwrites z with dLoss/dz.
def _cross_entropy(z: np.ndarray, y: np.ndarray) -> float:
    m = len(z)
    rows = np.arange(m)
    z -= z.max(axis=1, keepdims=True)  # log-sum-exp shift: exp never overflows
    z_true = z[rows, y]  # taken before exp: exp(z[y]) may underflow to 0 for a confident wrong answer
    np.exp(z, out=z)
    total = z.sum(axis=1, keepdims=True)
    # -log softmax(z)[y] = log(sum exp z) - z[y], with the shifted z.
    loss = float(np.mean(np.log(total[:, 0]) - z_true))
    z /= total  # z is now softmax(z)
    z[rows, y] -= 1.0
    z /= m
    return loss


def _binary_cross_entropy(z: np.ndarray, y: np.ndarray) -> float:
    m = len(z)
    t = y.reshape(-1, 1)
    # softplus(z) - t*z, written so that exp never overflows.
    loss = float(np.mean(np.maximum(z, 0) - t * z + np.log1p(np.exp(-np.abs(z)))))
    _sigmoid(z)
    z -= t
    z /= m
    return loss


def _mse(z: np.ndarray, y: np.ndarray) -> float:
    z -= y
    loss = float(np.mean(z * z))
    z *= 2.0 / z.size
    return loss


def _mae(z: np.ndarray, y: np.ndarray) -> float:
    z -= y
    loss = float(np.mean(np.abs(z)))
    np.sign(z, out=z)
    z /= z.size
    return loss


LOSSES = {
    "cross_entropy": _cross_entropy,
    "binary_cross_entropy": _binary_cross_entropy,
    "mse": _mse,
    "mae": _mae,
}


# ----------------------------------------------------------------- optimizers
# PyTorch's update rules, in place. `p` parameter, `g` gradient (free to overwrite),
# `s` the parameter's state arrays, `t` the 1-based step count.
def _sgd(spec: ModelSpec, p: np.ndarray, g: np.ndarray, s: list[np.ndarray], t: int) -> None:
    g *= spec.lr
    p -= g


def _momentum(spec: ModelSpec, p: np.ndarray, g: np.ndarray, s: list[np.ndarray], t: int) -> None:
    (v,) = s
    v *= spec.momentum
    v += g
    np.multiply(v, spec.lr, out=g)
    p -= g


def _nesterov(spec: ModelSpec, p: np.ndarray, g: np.ndarray, s: list[np.ndarray], t: int) -> None:
    v, scratch = s
    v *= spec.momentum
    v += g
    np.multiply(v, spec.momentum, out=scratch)
    g += scratch  # g + mu * v: PyTorch's nesterov step direction
    g *= spec.lr
    p -= g


def _adam(spec: ModelSpec, p: np.ndarray, g: np.ndarray, s: list[np.ndarray], t: int) -> None:
    m, v, scratch = s
    # m.lerp_(g, 1 - beta1), as PyTorch computes it: m + (1 - beta1) * (g - m)
    np.subtract(g, m, out=scratch)
    scratch *= 1.0 - spec.beta1
    m += scratch
    v *= spec.beta2
    g *= g
    g *= 1.0 - spec.beta2
    v += g
    step_size = spec.lr / (1.0 - spec.beta1**t)
    bias_correction2_sqrt = (1.0 - spec.beta2**t) ** 0.5
    np.sqrt(v, out=g)  # g is free now: reuse it for the denominator
    g /= bias_correction2_sqrt
    g += spec.eps
    np.divide(m, g, out=g)
    g *= step_size
    p -= g


OPTIMIZERS = {
    "sgd": (_sgd, 0),
    "momentum": (_momentum, 1),
    "nesterov": (_nesterov, 2),
    "adam": (_adam, 3),
}


class NumpyMLP(Backend):
    """A multilayer perceptron written by hand in NumPy (float32 or float64, CPU)."""

    name = "numpy"
    requires = ("numpy",)

    def build(self, spec: ModelSpec, weights: list[tuple[np.ndarray, np.ndarray]] | None, seed: int) -> None:
        self.spec_ = spec
        self.dtype_ = np.dtype(spec.dtype)
        if weights is None:
            weights = initial_weights(spec, seed)
        # Parameters in one flat list W0, b0, W1, b1, ...: the optimizer treats them alike.
        self.params_ = []
        for W, b in weights:
            self.params_.append(np.array(W, dtype=self.dtype_, order="C"))
            self.params_.append(np.array(b, dtype=self.dtype_).reshape(-1))
        self.grads_ = [np.empty_like(p) for p in self.params_]
        self._update, n_state = OPTIMIZERS[spec.optimizer]
        self.state_ = [[np.zeros_like(p) for _ in range(n_state)] for p in self.params_]
        self.step_ = 0
        self.rng_ = np.random.default_rng(seed)
        self._act, self._act_grad = ACTIVATIONS[spec.activation]
        self._loss = LOSSES[spec.loss]
        self._workspaces: dict[int, dict[str, Any]] = {}
        self._targets: tuple[int, np.ndarray] | None = None

    # ------------------------------------------------------------ training
    def train_epoch(self, X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> float:
        X = np.asarray(X, dtype=self.dtype_)
        y = self._prepare_targets(y)
        total, count = 0.0, 0
        for idx in batches:
            loss = self._forward_backward(X[idx], y[idx], train=True)
            self._apply_update()
            total += loss * len(idx)
            count += len(idx)
        return total / max(count, 1)

    def loss_and_gradients(self, X: np.ndarray, y: np.ndarray) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        """The objective (mean loss + l2/2·ΣW²) on one batch and its gradient, without updating.

        Dropout is applied when the spec has it, so gradient checks use dropout 0.
        """
        X = np.asarray(X, dtype=self.dtype_)
        loss = self._forward_backward(X, self._prepare_targets(y), train=True)
        if self.spec_.l2:
            loss += 0.5 * self.spec_.l2 * sum(float(np.sum(W * W)) for W in self.params_[::2])
        g = [x.copy() for x in self.grads_]
        return loss, list(zip(g[::2], g[1::2]))

    def _prepare_targets(self, y: np.ndarray) -> np.ndarray:
        # Converted once per array, not once per epoch: the runner passes the same y every epoch.
        if self._targets is not None and self._targets[0] is y:
            return self._targets[1]
        if self.spec_.loss == "cross_entropy":
            t = np.asarray(y, dtype=np.intp)
        elif self.spec_.loss == "binary_cross_entropy":
            t = np.asarray(y, dtype=self.dtype_).reshape(-1)
        else:
            t = np.asarray(y, dtype=self.dtype_).reshape(len(y), -1)
        self._targets = (y, t)
        return t

    def _workspace(self, m: int) -> dict[str, Any]:
        ws = self._workspaces.get(m)
        if ws is None:
            widths = self.spec_.layer_sizes[1:]
            ws = {
                "a": [np.empty((m, w), dtype=self.dtype_) for w in widths],  # layer outputs; last: logits, then dL/dz
                "d": [np.empty((m, w), dtype=self.dtype_) for w in widths[:-1]],  # dL/da of hidden layers
                "mask": [np.empty((m, w), dtype=self.dtype_) for w in widths[:-1]],
                "pre": [np.empty((m, w), dtype=self.dtype_) for w in widths[:-1]],  # before dropout
            }
            self._workspaces[m] = ws
        return ws

    def _forward_backward(self, xb: np.ndarray, yb: np.ndarray, train: bool) -> float:
        spec = self.spec_
        params, grads = self.params_, self.grads_
        n_layers = len(params) // 2
        ws = self._workspace(len(xb))
        acts, deltas, masks, pre = ws["a"], ws["d"], ws["mask"], ws["pre"]
        dropout = bool(spec.dropout) and train
        keep = 1.0 - spec.dropout

        # forward
        prev = xb
        for i in range(n_layers):
            z = acts[i]
            np.matmul(prev, params[2 * i], out=z)
            z += params[2 * i + 1]
            if i < n_layers - 1:
                self._act(z)
                if dropout:
                    # Inverted dropout: surviving units are scaled by 1/keep so predict needs no change.
                    mask = masks[i]
                    self.rng_.random(out=mask, dtype=self.dtype_)
                    np.less(mask, keep, out=mask)
                    mask *= 1.0 / keep
                    np.copyto(pre[i], z)  # f' is computed from the output before dropout
                    z *= mask
            prev = z

        loss = self._loss(acts[-1], yb)  # acts[-1] now holds dL/dz of the output layer

        # backward
        for i in range(n_layers - 1, -1, -1):
            dz = acts[i] if i == n_layers - 1 else deltas[i]
            below = acts[i - 1] if i > 0 else xb
            np.matmul(below.T, dz, out=grads[2 * i])
            np.sum(dz, axis=0, out=grads[2 * i + 1])
            if spec.l2:
                grads[2 * i] += spec.l2 * params[2 * i]
            if i > 0:
                d = deltas[i - 1]
                np.matmul(dz, params[2 * i].T, out=d)
                if dropout:
                    d *= masks[i - 1]
                self._act_grad(d, pre[i - 1] if dropout else below)
        return loss

    def _apply_update(self) -> None:
        self.step_ += 1
        for p, g, s in zip(self.params_, self.grads_, self.state_):
            self._update(self.spec_, p, g, s, self.step_)

    # ----------------------------------------------------------- inference
    def predict(self, X: np.ndarray) -> np.ndarray:
        a = np.asarray(X, dtype=self.dtype_)
        n_layers = len(self.params_) // 2
        for i in range(n_layers):
            a = a @ self.params_[2 * i]
            a += self.params_[2 * i + 1]
            if i < n_layers - 1:
                self._act(a)
        if self.spec_.loss == "cross_entropy":
            a -= a.max(axis=1, keepdims=True)
            np.exp(a, out=a)
            a /= a.sum(axis=1, keepdims=True)
        elif self.spec_.loss == "binary_cross_entropy":
            _sigmoid(a)
            a = np.hstack([1.0 - a, a])
        return a

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(W.copy(), b.copy()) for W, b in zip(self.params_[::2], self.params_[1::2])]

    def __repr__(self) -> str:
        spec = getattr(self, "spec_", None)
        return f"NumpyMLP({spec!r})" if spec else "NumpyMLP(unbuilt)"
