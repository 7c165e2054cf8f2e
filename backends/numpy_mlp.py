"""The from-scratch backend: forward pass, backpropagation and optimizers written by hand in NumPy.

Layout: activations ``a_l = f(a_{l-1} @ W_l + b_l)`` with W shaped ``(fan_in, fan_out)``,
the same convention as the runner's initial weights, so no transposes are needed at
the boundary.

Why it is fast on small networks: a digits step (batch 32, 64-64-10) does only a few
microseconds of arithmetic, so the cost is the number of NumPy calls and what each
allocates. Hence:

* every parameter lives in ONE flat buffer (``W0, b0, W1, b1, ...``) and the gradients
  and optimizer state in buffers of the same layout, so an optimizer step is a dozen
  vectorised operations over all parameters at once, not a loop over layers;
* the epoch's samples are gathered once, in batch order, into a buffer kept between
  epochs, so a batch is a contiguous slice; every other per-batch array lives in a
  workspace allocated once per batch size, and every update is in place, so a
  training step allocates almost nothing;
* targets are prepared once per training set as a float matrix (one-hot for
  cross-entropy), so the loss gradient is one subtraction instead of fancy indexing;
* scalars on the hot path are 0-d arrays of the model's dtype (`_Hyper`): ``g *= 0.9``
  with a Python float costs more than the arithmetic on a small network;
* products are ``np.dot`` (straight to BLAS, about 1 µs less per call than ``np.matmul``
  on these sizes), and the row and column sums on the hot path (bias gradients, softmax
  totals) are dot products with a vector of ones, faster than ``np.sum``.

docs/sections/performance.md has the measurements behind these choices.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from mlpbench import Backend, ModelSpec
from mlpbench.controlled import initial_weights
from mlpbench.spec import ELU_ALPHA, LEAKY_RELU_SLOPE


# ---------------------------------------------------------------- activations
# Each forward function overwrites z with f(z). Each derivative multiplies the incoming
# gradient `d` in place by f'(z), written in terms of the output a = f(z) so the
# pre-activation never has to be kept; `s` is a scratch array of the same shape.
def _sigmoid(z: np.ndarray) -> None:
    # 0.5 * (1 + tanh(z / 2)) never overflows, unlike 1 / (1 + exp(-z)).
    z *= 0.5
    np.tanh(z, out=z)
    z *= 0.5
    z += 0.5


def _sigmoid_grad(d: np.ndarray, a: np.ndarray, s: np.ndarray) -> None:
    np.subtract(1.0, a, out=s)
    s *= a
    d *= s


def _tanh(z: np.ndarray) -> None:
    np.tanh(z, out=z)


def _tanh_grad(d: np.ndarray, a: np.ndarray, s: np.ndarray) -> None:
    np.multiply(a, a, out=s)
    np.subtract(1.0, s, out=s)
    d *= s


def _relu(z: np.ndarray) -> None:
    np.maximum(z, 0.0, out=z)


def _relu_grad(d: np.ndarray, a: np.ndarray, s: np.ndarray) -> None:
    np.sign(a, out=s)  # a >= 0, so sign(a) is the 0/1 mask, float to float: no boolean temporary
    d *= s


def _leaky_relu(z: np.ndarray) -> None:
    # For a slope below 1, max(z, slope * z) is z for z > 0 and slope * z otherwise.
    np.maximum(z, z * LEAKY_RELU_SLOPE, out=z)


def _leaky_relu_grad(d: np.ndarray, a: np.ndarray, s: np.ndarray) -> None:
    np.greater(a, 0, out=s)
    s *= 1.0 - LEAKY_RELU_SLOPE  # 1 where a > 0, slope elsewhere
    s += LEAKY_RELU_SLOPE
    d *= s


def _elu(z: np.ndarray) -> None:
    neg = np.minimum(z, 0)  # expm1 only of the non-positive part: no overflow for large z
    np.expm1(neg, out=neg)
    neg *= ELU_ALPHA
    np.maximum(z, 0, out=z)
    z += neg


def _elu_grad(d: np.ndarray, a: np.ndarray, s: np.ndarray) -> None:
    # f'(z) is alpha * exp(z) = a + alpha for z <= 0 and 1 above. With alpha <= 1,
    # a + alpha <= 1 exactly where z <= 0, so f'(z) = min(a + alpha, 1): no mask needed.
    np.add(a, ELU_ALPHA, out=s)
    np.minimum(s, 1.0, out=s)
    d *= s


assert ELU_ALPHA <= 1.0, "_elu_grad relies on alpha <= 1"

ACTIVATIONS = {
    "sigmoid": (_sigmoid, _sigmoid_grad),
    "tanh": (_tanh, _tanh_grad),
    "relu": (_relu, _relu_grad),
    "leaky_relu": (_leaky_relu, _leaky_relu_grad),
    "elu": (_elu, _elu_grad),
}


# --------------------------------------------------------------------- losses
# Each takes the output-layer pre-activations z (m, k), the batch targets t as a float
# matrix (one-hot for cross_entropy, a column for binary_cross_entropy) and the
# workspace; returns the mean per-sample loss and overwrites z with dLoss/dz.
def _cross_entropy(z: np.ndarray, t: np.ndarray, ws: _Workspace) -> float:
    m = len(z)
    col = ws.col
    np.maximum.reduce(z, axis=1, keepdims=True, out=col)
    z -= col  # log-sum-exp shift: exp never overflows
    # sum over the batch of the (shifted) true-class logit, taken before exp: exp(z[y])
    # may underflow to 0 for a confident wrong answer.
    z_true = float(np.vdot(z, t))
    np.exp(z, out=z)
    np.dot(z, ws.ones_k, out=col)  # row totals
    z /= col  # z is now softmax(z)
    np.log(col, out=col)
    # -log softmax(z)[y] = log(sum exp z) - z[y], with the shifted z.
    loss = (float(np.vdot(col, ws.ones_m)) - z_true) / m
    z -= t
    z *= ws.inv_m
    return loss


def _binary_cross_entropy(z: np.ndarray, t: np.ndarray, ws: _Workspace) -> float:
    # softplus(z) - t*z, written so that exp never overflows.
    loss = float(np.mean(np.maximum(z, 0) - t * z + np.log1p(np.exp(-np.abs(z)))))
    _sigmoid(z)
    z -= t
    z *= ws.inv_m
    return loss


def _mse(z: np.ndarray, t: np.ndarray, ws: _Workspace) -> float:
    z -= t
    loss = float(np.vdot(z, z)) / z.size
    np.multiply(z, 2.0 / z.size, out=z)  # a ufunc call converts a Python float faster than `z *=` does
    return loss


def _mae(z: np.ndarray, t: np.ndarray, ws: _Workspace) -> float:
    z -= t
    loss = float(np.mean(np.abs(z)))
    np.sign(z, out=z)
    np.multiply(z, 1.0 / z.size, out=z)
    return loss


LOSSES = {
    "cross_entropy": _cross_entropy,
    "binary_cross_entropy": _binary_cross_entropy,
    "mse": _mse,
    "mae": _mae,
}


# ----------------------------------------------------------------- optimizers
class _Hyper:
    """The optimizer's numbers as 0-d arrays of the model's dtype.

    An in-place operator with a Python float (``g *= 0.9``) makes NumPy convert the float on
    every call, about 1.5 µs here: more than the arithmetic on a small network's parameters.
    A 0-d array of the model's dtype skips that conversion and gives the same numbers
    (NumPy casts the Python float to that dtype either way).
    """

    def __init__(self, spec: ModelSpec, dtype: np.dtype) -> None:
        def c(x: float) -> np.ndarray:
            return np.array(x, dtype=dtype)

        self.spec = spec
        self.lr, self.momentum, self.beta2, self.eps = c(spec.lr), c(spec.momentum), c(spec.beta2), c(spec.eps)
        self.one_minus_beta1, self.one_minus_beta2 = c(1.0 - spec.beta1), c(1.0 - spec.beta2)
        self.step_size, self.bias_correction2_sqrt = c(spec.lr), c(1.0)  # adam's, set by `start_step`

    def start_step(self, t: int) -> None:
        """Adam's bias corrections for the 1-based step `t`, as PyTorch computes them."""
        self.step_size[()] = self.spec.lr / (1.0 - self.spec.beta1**t)
        self.bias_correction2_sqrt[()] = (1.0 - self.spec.beta2**t) ** 0.5


# PyTorch's update rules, in place, on flat buffers holding many parameters at once.
# `h` the numbers (`_Hyper`), `p` parameters, `g` gradients (free to overwrite),
# `state` the optimizer's buffers, `tmp` a scratch buffer.
def _sgd(h: _Hyper, p: np.ndarray, g: np.ndarray, state: list[np.ndarray], tmp: np.ndarray) -> None:
    g *= h.lr
    p -= g


def _momentum(h: _Hyper, p: np.ndarray, g: np.ndarray, state: list[np.ndarray], tmp: np.ndarray) -> None:
    (v,) = state
    v *= h.momentum
    v += g
    np.multiply(v, h.lr, out=g)
    p -= g


def _nesterov(h: _Hyper, p: np.ndarray, g: np.ndarray, state: list[np.ndarray], tmp: np.ndarray) -> None:
    (v,) = state
    v *= h.momentum
    v += g
    np.multiply(v, h.momentum, out=tmp)
    g += tmp  # g + mu * v: PyTorch's nesterov step direction
    g *= h.lr
    p -= g


def _adam(h: _Hyper, p: np.ndarray, g: np.ndarray, state: list[np.ndarray], tmp: np.ndarray) -> None:
    m, v = state
    # m.lerp_(g, 1 - beta1), as PyTorch computes it: m + (1 - beta1) * (g - m)
    np.subtract(g, m, out=tmp)
    tmp *= h.one_minus_beta1
    m += tmp
    # v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    v *= h.beta2
    g *= g
    g *= h.one_minus_beta2
    v += g
    # denom = sqrt(v) / sqrt(1 - beta2^t) + eps;  p.addcdiv_(m, denom, value=-lr / (1 - beta1^t))
    np.sqrt(v, out=g)  # g is free now: reuse it for the denominator
    g /= h.bias_correction2_sqrt
    g += h.eps
    np.divide(m, g, out=g)
    g *= h.step_size
    p -= g


# name -> (update, number of state buffers)
OPTIMIZERS = {
    "sgd": (_sgd, 0),
    "momentum": (_momentum, 1),
    "nesterov": (_nesterov, 1),
    "adam": (_adam, 2),
}
#: Parameters per optimizer block (256 KiB per float32 array): big enough that the per-call
#: overhead is negligible, small enough that a block's arrays stay in cache between passes.
UPDATE_BLOCK = 1 << 16


# ------------------------------------------------------------------ workspace
class _Workspace:
    """Every array one training step of batch size `m` needs, allocated once and reused."""

    def __init__(self, spec: ModelSpec, m: int, dtype: np.dtype) -> None:
        widths = spec.layer_sizes[1:]
        hidden = widths[:-1]
        self.acts = [np.empty((m, w), dtype=dtype) for w in widths]  # layer outputs; the last: logits, then dL/dz
        self.deltas = [np.empty((m, w), dtype=dtype) for w in hidden]  # dL/da of the hidden layers
        self.scratch = [np.empty((m, w), dtype=dtype) for w in hidden]  # activation derivatives
        self.masks = [np.empty((m, w), dtype=dtype) for w in hidden] if spec.dropout else []
        self.pre = [np.empty((m, w), dtype=dtype) for w in hidden] if spec.dropout else []  # before dropout
        self.col = np.empty((m, 1), dtype=dtype)  # per-sample scalars (softmax shift and totals)
        self.ones_m = np.ones(m, dtype=dtype)  # ones @ dz = bias gradient
        self.inv_m = np.array(1.0 / m, dtype=dtype)  # 0-d: see _Hyper
        self.ones_k = np.ones((spec.n_outputs, 1), dtype=dtype)  # z @ ones = row totals


class NumpyMLP(Backend):
    """A multilayer perceptron written by hand in NumPy (float32 or float64, CPU)."""

    name = "numpy"
    requires = ("numpy",)

    def build(self, spec: ModelSpec, weights: list[tuple[np.ndarray, np.ndarray]] | None, seed: int) -> None:
        self.spec_ = spec
        self.dtype_ = dt = np.dtype(spec.dtype)
        if weights is None:
            weights = initial_weights(spec, seed)
        sizes = spec.layer_sizes
        shapes = []
        for fan_in, fan_out in pairwise(sizes):
            shapes += [(fan_in, fan_out), (fan_out,)]
        n = sum(int(np.prod(s)) for s in shapes)
        # One flat buffer each for parameters, gradients and optimizer state, all with the
        # layout W0, b0, W1, b1, ...; params_ and grads_ are views into them, per array.
        self.flat_params_ = np.empty(n, dtype=dt)
        self.flat_grads_ = np.zeros(n, dtype=dt)
        self.params_ = _views(self.flat_params_, shapes)
        self.grads_ = _views(self.flat_grads_, shapes)
        for i, (W, b) in enumerate(weights):
            self.params_[2 * i][...] = W
            self.params_[2 * i + 1][...] = np.reshape(b, -1)
        self._update, n_state = OPTIMIZERS[spec.optimizer]
        self._hyper = _Hyper(spec, dt)
        self.state_ = [np.zeros(n, dtype=dt) for _ in range(n_state)]
        self._tmp = np.empty(n, dtype=dt)
        # The optimizer's dozen passes run block by block: on a large network a block's parameters,
        # gradients and state then stay in the CPU cache from one pass to the next instead of
        # streaming from memory a dozen times. A small network is one block.
        B = UPDATE_BLOCK
        self._blocks = [(self.flat_params_[i : i + B], self.flat_grads_[i : i + B], [s[i : i + B] for s in self.state_],
                         self._tmp[i : i + B]) for i in range(0, n, B)]  # fmt: skip
        # l2 * W for weight matrices, 0 for biases: the L2 gradient of all layers in two operations.
        self._decay = None
        if spec.l2:
            self._decay = np.zeros(n, dtype=dt)
            for W in _views(self._decay, shapes)[::2]:
                W[...] = spec.l2
        self.step_ = 0
        self.rng_ = np.random.default_rng(seed)
        self._act, self._act_grad = ACTIVATIONS[spec.activation]
        self._loss = LOSSES[spec.loss]
        self._workspaces: dict[int, _Workspace] = {}
        self._targets: tuple[np.ndarray, np.ndarray] | None = None
        self._gathered: tuple[np.ndarray, np.ndarray] | None = None  # the epoch's samples and targets, in batch order

    # ------------------------------------------------------------ training
    def train_epoch(self, X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> float:
        X = np.ascontiguousarray(X, dtype=self.dtype_)
        T = self._prepare_targets(y)
        if not batches:
            return 0.0
        # One gather per epoch, in batch order, into buffers kept between epochs: each batch
        # is then a contiguous slice (a view), with no per-step copy.
        order = np.concatenate(batches)
        if order.min() < 0 or order.max() >= len(X):  # mode="clip" below would not complain
            raise IndexError(f"batch indices must lie in [0, {len(X)})")
        Xe, Te = self._epoch_buffers(len(order), X.shape[1], T.shape[1])
        np.take(X, order, axis=0, out=Xe, mode="clip")  # "clip": no bounds check, no output buffering
        np.take(T, order, axis=0, out=Te, mode="clip")
        total, start = 0.0, 0
        for idx in batches:
            stop = start + len(idx)
            total += self._forward_backward(Xe[start:stop], Te[start:stop], train=True) * len(idx)
            self._apply_update()
            start = stop
        return total / len(order)

    def loss_and_gradients(self, X: np.ndarray, y: np.ndarray) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        """The objective (mean loss + l2/2·ΣW²) on one batch and its gradient, without updating.

        Dropout is applied when the spec has it, so gradient checks use dropout 0.
        """
        X = np.ascontiguousarray(X, dtype=self.dtype_)
        loss = self._forward_backward(X, self._prepare_targets(y), train=True)
        if self.spec_.l2:
            self._add_l2()
            loss += 0.5 * self.spec_.l2 * sum(float(np.sum(W * W)) for W in self.params_[::2])
        g = [x.copy() for x in self.grads_]
        return loss, list(zip(g[::2], g[1::2], strict=True))

    def _prepare_targets(self, y: np.ndarray) -> np.ndarray:
        """Targets as a float matrix (n, n_outputs): one-hot rows for cross-entropy.

        Converted once per array, not once per epoch: the runner passes the same y every epoch.
        """
        if self._targets is not None and self._targets[0] is y:
            return self._targets[1]
        spec = self.spec_
        if spec.loss == "cross_entropy":
            labels = np.asarray(y, dtype=np.intp).reshape(-1)
            t = np.zeros((len(labels), spec.n_outputs), dtype=self.dtype_)
            t[np.arange(len(labels)), labels] = 1.0
        else:
            t = np.ascontiguousarray(np.asarray(y, dtype=self.dtype_).reshape(len(y), -1))
        self._targets = (y, t)
        return t

    def _epoch_buffers(self, n: int, n_inputs: int, n_targets: int) -> tuple[np.ndarray, np.ndarray]:
        if self._gathered is None or len(self._gathered[0]) != n or self._gathered[0].shape[1] != n_inputs:
            self._gathered = (np.empty((n, n_inputs), dtype=self.dtype_), np.empty((n, n_targets), dtype=self.dtype_))
        return self._gathered

    def _workspace(self, m: int) -> _Workspace:
        ws = self._workspaces.get(m)
        if ws is None:
            ws = self._workspaces[m] = _Workspace(self.spec_, m, self.dtype_)
        return ws

    def _forward_backward(self, xb: np.ndarray, tb: np.ndarray, train: bool) -> float:
        """Loss of the batch (samples `xb`, targets `tb`) and the gradient of its data term in `grads_` (no L2)."""
        params, grads = self.params_, self.grads_
        n_layers = len(params) // 2
        ws = self._workspace(len(xb))
        acts, deltas = ws.acts, ws.deltas
        dropout = bool(self.spec_.dropout) and train

        # forward
        prev = xb
        for i in range(n_layers):
            z = acts[i]
            np.dot(prev, params[2 * i], out=z)
            z += params[2 * i + 1]
            if i < n_layers - 1:
                self._act(z)
                if dropout:
                    self._drop(z, ws.masks[i], ws.pre[i])
            prev = z

        loss = self._loss(acts[-1], tb, ws)  # acts[-1] now holds dL/dz of the output layer

        # backward
        for i in range(n_layers - 1, -1, -1):
            dz = acts[i] if i == n_layers - 1 else deltas[i]
            below = acts[i - 1] if i > 0 else xb
            np.dot(below.T, dz, out=grads[2 * i])
            np.dot(ws.ones_m, dz, out=grads[2 * i + 1])  # column sums of dz
            if i > 0:
                d = deltas[i - 1]
                np.dot(dz, params[2 * i].T, out=d)
                if dropout:
                    d *= ws.masks[i - 1]
                self._act_grad(d, ws.pre[i - 1] if dropout else below, ws.scratch[i - 1])
        return loss

    def _drop(self, a: np.ndarray, mask: np.ndarray, pre: np.ndarray) -> None:
        """Inverted dropout on a hidden layer's output: survivors are scaled by 1/keep so predict needs no change."""
        keep = 1.0 - self.spec_.dropout
        self.rng_.random(out=mask, dtype=self.dtype_)
        np.less(mask, keep, out=mask)
        mask *= 1.0 / keep
        np.copyto(pre, a)  # f' is computed from the output before dropout
        a *= mask

    def _add_l2(self) -> None:
        # grad += l2 * W for every weight matrix (decay is 0 on the biases).
        np.multiply(self._decay, self.flat_params_, out=self._tmp)
        self.flat_grads_ += self._tmp

    def _apply_update(self) -> None:
        self.step_ += 1
        self._hyper.start_step(self.step_)
        if self._decay is not None:
            self._add_l2()
        for p, g, state, tmp in self._blocks:
            self._update(self._hyper, p, g, state, tmp)

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
        return [(W.copy(), b.copy()) for W, b in zip(self.params_[::2], self.params_[1::2], strict=True)]

    def __repr__(self) -> str:
        spec = getattr(self, "spec_", None)
        return f"NumpyMLP({spec!r})" if spec else "NumpyMLP(unbuilt)"


def _views(flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Consecutive views of `flat` with the given shapes (writes go to `flat`)."""
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out
