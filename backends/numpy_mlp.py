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

Why it uses threads on large networks: left alone, BLAS spreads the matrix products over
the thread budget, but every other pass (bias, activation and its derivative, the
optimizer's dozen passes over all parameters) runs on one core, and with two cores that
single-core share of a step is what keeps the backend below the machine's matmul peak.
So with more than one thread and a step big enough to pay for the hand-offs
(`step_parts`), the whole step, products included, is cut into one part per thread and run
on a small pool (`_Team`), with BLAS held to one thread meanwhile: our threads each asking
BLAS for all the cores would oversubscribe them. Only the weight gradients sum over the
batch; the forward pass, the loss and the chain of gradients passed down are row by row. So
a step is two hand-offs, not one per layer and pass: one part's rows forward through every
layer, the loss and back down; then one part's rows of every weight gradient, each followed
at once by the optimizer's update of those parameters while their gradient is still in
cache. Each hand-off costs a wake-up of the other core (0.1-0.2 ms here), which is why
there are no more of them. NumPy releases the GIL inside ufunc loops and BLAS calls, so the
parts really run at the same time. Products are cut along their output's rows or columns,
never along the summed dimension, and element-wise work does not depend on how it is cut,
so the threaded step computes the same expressions as the one-thread step; the last bits of
the gradients differ only because BLAS rounds a product of fewer rows differently (and the
reported loss because it is summed per part). With one thread, or on small networks, the
step is the one-thread code, untouched.

Batch normalization (``spec.batch_norm``) adds its steps to the one-thread step: its statistics
sum over the batch between the layers, so such a step is never cut into parts (`step_parts`);
its gamma and beta follow the (W, b) pairs in the flat buffers, so the optimizer trains them with
everything else, and L2 does not touch them.

docs/performance/2026-11-performance-first-release.md has the measurements behind these choices, and
docs/performance/2026-12-01-numpy-threads.md those behind the threads.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

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


_ZERO_ROWS: dict[tuple[int, str], np.ndarray] = {}


def _zero_row(z: np.ndarray) -> np.ndarray:
    """A read-only row of zeros as wide as `z` (one per width and dtype, shared by every thread)."""
    key = (z.shape[-1], z.dtype.str)
    row = _ZERO_ROWS.get(key)
    if row is None:
        row = np.zeros((1, z.shape[-1]), dtype=z.dtype)
        row.flags.writeable = False
        row = _ZERO_ROWS.setdefault(key, row)
    return row


# From this many elements relu and its derivative take the forms below, which NumPy runs on its
# vectorised loops (2.5-3x faster on 128 x 1024 float32); on smaller arrays their extra call cost
# (a lookup, a cast) outweighs that (32 x 64: 1.5 us slower). Both forms give the same bits.
VECTOR_MIN_ELEMENTS = 1 << 13


def _relu(z: np.ndarray) -> None:
    if z.size >= VECTOR_MIN_ELEMENTS:  # against a row of zeros, not the scalar 0: max(-0.0, 0) is +0.0 either way
        np.maximum(z, _zero_row(z), out=z)
    else:
        np.maximum(z, 0.0, out=z)


def _relu_grad(d: np.ndarray, a: np.ndarray, s: np.ndarray) -> None:
    # a >= 0 (and never -0.0, see _relu), so sign(a) and a > 0 are the same 0/1 mask, written as floats
    # into s: no boolean temporary.
    if a.size >= VECTOR_MIN_ELEMENTS:
        np.greater(a, 0, out=s)
    else:
        np.sign(a, out=s)
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
# Each takes the output-layer pre-activations z (rows of a batch of m samples, k outputs), the
# targets t of those rows as a float matrix (one-hot for cross_entropy, a column for
# binary_cross_entropy) and their `_LossBuffers`; returns the mean loss of those rows and
# overwrites z with dLoss/dz of the whole batch's mean loss. A step cut into parts calls it on
# each part's rows: every expression is row by row, and only the returned mean is per part.
def _cross_entropy(z: np.ndarray, t: np.ndarray, ws: _LossBuffers) -> float:
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


def _binary_cross_entropy(z: np.ndarray, t: np.ndarray, ws: _LossBuffers) -> float:
    # softplus(z) - t*z, written so that exp never overflows.
    loss = float(np.mean(np.maximum(z, 0) - t * z + np.log1p(np.exp(-np.abs(z)))))
    _sigmoid(z)
    z -= t
    z *= ws.inv_m
    return loss


def _mse(z: np.ndarray, t: np.ndarray, ws: _LossBuffers) -> float:
    z -= t
    loss = float(np.vdot(z, z)) / z.size
    np.multiply(z, 2.0 / ws.size, out=z)  # a ufunc call converts a Python float faster than `z *=` does
    return loss


def _mae(z: np.ndarray, t: np.ndarray, ws: _LossBuffers) -> float:
    z -= t
    loss = float(np.mean(np.abs(z)))
    np.sign(z, out=z)
    np.multiply(z, 1.0 / ws.size, out=z)
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
        self.alpha, self.one_minus_alpha = c(spec.alpha), c(1.0 - spec.alpha)  # rmsprop's
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


def _rmsprop(h: _Hyper, p: np.ndarray, g: np.ndarray, state: list[np.ndarray], tmp: np.ndarray) -> None:
    (v,) = state
    # v.mul_(alpha).addcmul_(g, g, value=1 - alpha)
    v *= h.alpha
    np.multiply(g, g, out=tmp)
    tmp *= h.one_minus_alpha
    v += tmp
    # avg = sqrt(v) + eps;  p.addcdiv_(g, avg, value=-lr)
    np.sqrt(v, out=tmp)
    tmp += h.eps
    g /= tmp
    g *= h.lr
    p -= g


# name -> (update, number of state buffers)
OPTIMIZERS = {
    "sgd": (_sgd, 0),
    "momentum": (_momentum, 1),
    "nesterov": (_nesterov, 1),
    "adam": (_adam, 2),
    "rmsprop": (_rmsprop, 1),
}
#: Parameters per optimizer block (256 KiB per float32 array): big enough that the per-call
#: overhead is negligible, small enough that a block's arrays stay in cache between passes.
UPDATE_BLOCK = 1 << 16


# -------------------------------------------------------------------- threads
#: A training step is cut into one part per thread from this many activation elements (batch size x the
#: sum of the layer widths) on: below it the hand-offs between threads (each a wake-up, and GIL
#: hand-overs between the parts' NumPy calls) cost more than running the element-wise work beside
#: BLAS's own threads saves. Measured in docs/performance/2026-12-01-numpy-threads.md.
SPLIT_MIN_ACTIVATIONS = 1 << 19


def step_parts(spec: ModelSpec, batch_size: int, threads: int) -> int:
    """Into how many parts a training step on `batch_size` samples is cut: one per thread when it pays, else 1.

    Never with batch normalization: its statistics are sums over the whole batch in every layer.
    """
    activations = batch_size * sum(spec.layer_sizes[1:])
    if spec.batch_norm != "none":
        return 1
    if threads > 1 and activations >= SPLIT_MIN_ACTIVATIONS and batch_size >= threads:
        return threads
    return 1


def _parts(n: int, k: int) -> list[slice]:
    """``range(n)`` cut into `k` contiguous slices whose lengths differ by at most one (some empty if n < k)."""
    return [slice(j * n // k, (j + 1) * n // k) for j in range(k)]


class _Team:
    """The calling thread and ``size - 1`` pool threads, running one function over the parts of a piece of work.

    The caller runs the first part itself: it would otherwise only wait, and it saves a hand-off.
    """

    def __init__(self, size: int) -> None:
        from threadpoolctl import ThreadpoolController  # only multi-threaded models need it

        self.size = size
        self._pool = ThreadPoolExecutor(max_workers=size - 1, thread_name_prefix="numpy-mlp")
        self._blas = ThreadpoolController()

    def run(self, fn: Callable[..., Any], parts: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``fn(*args)`` for every args in `parts`, at the same time; their results, once all have finished."""
        futures = [self._pool.submit(fn, *args) for args in parts[1:]]
        try:
            first = fn(*parts[0])
        finally:
            wait(futures)  # no part may still be writing the step's arrays when this returns, even after an error
        return [first] + [future.result() for future in futures]  # a pool thread's exception is raised here

    def one_blas_thread(self) -> AbstractContextManager[Any]:
        """BLAS held to one thread: while each of our threads runs a product, BLAS threads of its own would
        oversubscribe the cores."""
        return self._blas.limit(limits=1, user_api="blas")


# ------------------------------------------------------------------ workspace
@dataclass(frozen=True)
class _LossBuffers:
    """What a loss needs besides z and t: per-sample scratch `col`, ones to sum with, and the scale of
    the gradient, which is always that of the whole batch's mean (`inv_m`, `size`), also for a part's rows."""

    col: np.ndarray  # (rows, 1): per-sample scalars (softmax shift and totals)
    ones_m: np.ndarray  # (rows,): ones @ col = sum over the rows
    ones_k: np.ndarray  # (k, 1): z @ ones = row totals
    inv_m: np.ndarray  # 0-d 1/m of the whole batch: see _Hyper
    size: int  # elements of the whole batch's output

    @classmethod
    def of_batch(cls, m: int, k: int, dtype: np.dtype) -> _LossBuffers:
        return cls(
            np.empty((m, 1), dtype=dtype),
            np.ones(m, dtype=dtype),
            np.ones((k, 1), dtype=dtype),
            np.array(1.0 / m, dtype=dtype),
            m * k,
        )

    def rows(self, rows: slice) -> _LossBuffers:
        """The same buffers for the batch rows `rows`: views of col and ones, the whole batch's scale."""
        return replace(self, col=self.col[rows], ones_m=self.ones_m[rows])


class _Workspace:
    """Every array one training step of batch size `m` needs, allocated once and reused.

    `rows` is how a step is cut between threads, one slice of the batch per part, or None when it is not.
    """

    def __init__(self, spec: ModelSpec, m: int, dtype: np.dtype, parts: int = 1) -> None:
        widths = spec.layer_sizes[1:]
        hidden = widths[:-1]
        self.acts = [np.empty((m, w), dtype=dtype) for w in widths]  # layer outputs; the last: logits, then dL/dz
        self.deltas = [np.empty((m, w), dtype=dtype) for w in hidden]  # dL/da of the hidden layers
        self.scratch = [np.empty((m, w), dtype=dtype) for w in hidden]  # activation derivatives
        self.masks = [np.empty((m, w), dtype=dtype) for w in hidden] if spec.dropout else []
        self.pre = [np.empty((m, w), dtype=dtype) for w in hidden] if spec.dropout else []  # before dropout
        self.rows = _parts(m, parts) if parts > 1 else None
        self.loss = _LossBuffers.of_batch(m, spec.n_outputs, dtype)
        self.ones_m, self.inv_m = self.loss.ones_m, self.loss.inv_m  # ones @ dz = bias gradient; 1/m
        self.loss_parts = [self.loss.rows(r) for r in self.rows] if self.rows else []
        # batch normalization, per hidden layer: the normalized values, f's output (what f' is computed
        # from), and per unit the batch mean, biased variance, 1/sqrt(var + eps) and gamma/sqrt(var + eps)
        bn = spec.batch_norm != "none"
        self.xhat = [np.empty((m, w), dtype=dtype) for w in hidden] if bn else []
        self.f_out = [np.empty((m, w), dtype=dtype) for w in hidden] if bn else []
        self.bn_mean, self.bn_var, self.inv_std, self.bn_scale = (
            [[np.empty(w, dtype=dtype) for w in hidden] for _ in range(4)] if bn else ([], [], [], [])
        )


class NumpyMLP(Backend):
    """A multilayer perceptron written by hand in NumPy (float32 or float64, CPU)."""

    name = "numpy"
    requires = ("numpy",)
    optimizers = tuple(OPTIMIZERS)  # every one of the spec's, declared: a new spec optimizer is not claimed unseen
    supports_batch_norm = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._team: _Team | None = None  # the thread pool, made by the first build with more than one thread
        self.split_steps_ = 0  # training steps run in parts on the team (tests read it)

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
        # With batch normalization, every hidden layer's gamma and beta follow the (W, b) pairs in the
        # same buffers (gamma0, beta0, gamma1, ...): the optimizer trains them with the rest.
        bn_shapes = [(w,) for w in spec.hidden for _ in range(2)] if spec.batch_norm != "none" else []
        n_wb, n = n, n + 2 * sum(spec.hidden) * bool(bn_shapes)
        # One flat buffer each for parameters, gradients and optimizer state, all with the
        # layout W0, b0, W1, b1, ...; params_ and grads_ are views into them, per array.
        self.flat_params_ = np.empty(n, dtype=dt)
        self.flat_grads_ = np.zeros(n, dtype=dt)
        self.params_ = _views(self.flat_params_, shapes)
        self.grads_ = _views(self.flat_grads_, shapes)
        for i, (W, b) in enumerate(weights):
            self.params_[2 * i][...] = W
            self.params_[2 * i + 1][...] = np.reshape(b, -1)
        # Batch normalization: gamma 1, beta 0 (views into the tail of the buffers), running mean 0, variance 1.
        self.bn_params_ = _views(self.flat_params_[n_wb:], bn_shapes)
        self.bn_grads_ = _views(self.flat_grads_[n_wb:], bn_shapes)
        for j, p in enumerate(self.bn_params_):
            p[...] = 1.0 if j % 2 == 0 else 0.0
        self.running_mean_ = [np.zeros(w, dtype=dt) for w in spec.hidden] if bn_shapes else []
        self.running_var_ = [np.ones(w, dtype=dt) for w in spec.hidden] if bn_shapes else []
        self._bn_eps = np.array(spec.bn_eps, dtype=dt)
        self._bn_keep = np.array(1.0 - spec.bn_momentum, dtype=dt)  # running = keep * running + momentum * batch
        self._bn_momentum = np.array(spec.bn_momentum, dtype=dt)
        self._update, n_state = OPTIMIZERS[spec.optimizer]
        self._hyper = _Hyper(spec, dt)
        self.state_ = [np.zeros(n, dtype=dt) for _ in range(n_state)]
        self._tmp = np.empty(n, dtype=dt)
        # The optimizer's dozen passes run block by block: on a large network a block's parameters,
        # gradients and state then stay in the CPU cache from one pass to the next instead of
        # streaming from memory a dozen times. A small network is one block.
        B = UPDATE_BLOCK
        self._blocks = [
            (
                self.flat_params_[i : i + B],
                self.flat_grads_[i : i + B],
                [s[i : i + B] for s in self.state_],
                self._tmp[i : i + B],
            )
            for i in range(0, n, B)
        ]
        # l2 * W for weight matrices, 0 for biases: the L2 gradient of all layers in two operations.
        self._decay = None
        if spec.l2:
            self._decay = np.zeros(n, dtype=dt)
            for W in _views(self._decay, shapes)[::2]:
                W[...] = spec.l2
        self._threads = threads = self.threads or 1  # used directly, without a runner's prepare: one thread
        if threads > 1 and (self._team is None or self._team.size != threads):
            self._team = _Team(threads)
        # How a step cut into parts shares the weight gradients and their update: part j takes, in every
        # layer, rows fan_in[j] of W and columns fan_out[j] of b, with the blocks of the flat buffers they
        # occupy (W's rows are contiguous there, so are b's columns).
        self._weight_parts: list[list[tuple[slice, slice, list[tuple[Any, ...]]]]] = []
        if threads > 1:
            offsets = np.cumsum([0] + [int(np.prod(s)) for s in shapes])
            for j in range(threads):
                per_layer = []
                for i, (fan_in, fan_out) in enumerate(pairwise(sizes)):
                    rows, cols = _parts(fan_in, threads)[j], _parts(fan_out, threads)[j]
                    w0, b0 = offsets[2 * i] + rows.start * fan_out, offsets[2 * i] + rows.stop * fan_out
                    blocks = [self._block(k, min(k + B, b0)) for k in range(w0, b0, B)]
                    if cols.stop > cols.start:
                        blocks.append(self._block(offsets[2 * i + 1] + cols.start, offsets[2 * i + 1] + cols.stop))
                    per_layer.append((rows, cols, blocks))
                self._weight_parts.append(per_layer)
        self.step_ = 0
        self.rng_ = np.random.default_rng(seed)
        self._act, self._act_grad = ACTIVATIONS[spec.activation]
        self._loss = LOSSES[spec.loss]
        self._workspaces: dict[int, _Workspace] = {}
        self._targets: tuple[np.ndarray, np.ndarray] | None = None
        self._gathered: tuple[np.ndarray, np.ndarray] | None = None  # the epoch's samples and targets, in batch order

    def _block(self, start: int, stop: int) -> tuple[Any, ...]:
        """Parameters, gradients, optimizer state, scratch and L2 decay (or None) of one block of the flat buffers."""
        s = slice(start, stop)
        decay = self._decay[s] if self._decay is not None else None
        return self.flat_params_[s], self.flat_grads_[s], [x[s] for x in self.state_], self._tmp[s], decay

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
        with self._blas_for({len(idx) for idx in batches} if self._team is not None else ()):
            for idx in batches:
                stop = start + len(idx)
                total += self._forward_backward(Xe[start:stop], Te[start:stop], train=True, update=True) * len(idx)
                start = stop
        return total / len(order)

    def loss_and_gradients(self, X: np.ndarray, y: np.ndarray) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        """The objective (mean loss + l2/2·ΣW²) on one batch and its gradient, without updating.

        Dropout is applied when the spec has it, so gradient checks use dropout 0.
        """
        X = np.ascontiguousarray(X, dtype=self.dtype_)
        with self._blas_for((len(X),)):
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
            ws = self._workspaces[m] = _Workspace(self.spec_, m, self.dtype_, step_parts(self.spec_, m, self._threads))
        return ws

    def _blas_for(self, batch_sizes: Collection[int]) -> AbstractContextManager[Any]:
        """BLAS held to one thread if a step on any of these batch sizes runs in parts on the team."""
        if self._team is not None and any(self._workspace(m).rows is not None for m in batch_sizes):
            return self._team.one_blas_thread()
        return nullcontext()

    def _forward_backward(self, xb: np.ndarray, tb: np.ndarray, train: bool, update: bool = False) -> float:
        """Loss of the batch (samples `xb`, targets `tb`) and the gradient of its data term in `grads_` (no L2).

        With `update`, the optimizer's step follows (a step cut into parts does it inside its last part).

        With batch normalization (one thread), a hidden layer is ``z = a_prev @ W + b``, then BN before
        or after the activation f, then dropout: ``BN -> f -> dropout`` or ``f -> BN -> dropout``. BN
        normalizes with the batch's mean and biased variance, ``gamma * (x - mean) / sqrt(var + eps) +
        beta``; its backward pass is the standard one, ``dx = gamma / sqrt(var + eps) * (dy - (sum dy +
        xhat * sum(dy * xhat)) / m)``. With `update` (a training step) the running statistics then move by
        bn_momentum, the variance unbiased (PyTorch's rule), and the optimizer steps.
        """
        ws = self._workspace(len(xb))
        if ws.rows is not None:
            return self._forward_backward_in_parts(xb, tb, train, update, ws)
        m = len(xb)
        bn = self.spec_.batch_norm if self.bn_params_ else "none"
        if bn != "none" and m < 2:
            raise ValueError(
                f"batch_norm={bn!r} needs at least 2 samples per training batch "
                "(a batch's variance of one sample is 0): choose a batch_size that leaves no batch "
                "of 1 sample"
            )
        params, grads = self.params_, self.grads_
        n_layers = len(params) // 2
        acts, deltas = ws.acts, ws.deltas
        dropout = bool(self.spec_.dropout) and train
        before, after = bn == "before", bn == "after"
        # f' is computed from f's output; where BN or dropout overwrite it, from a copy kept here.
        save_f = bn != "none" or dropout
        kept = ws.f_out if bn != "none" else ws.pre

        # forward
        prev = xb
        for i in range(n_layers):
            z = acts[i]
            np.dot(prev, params[2 * i], out=z)
            z += params[2 * i + 1]
            if i < n_layers - 1:
                if before:
                    self._bn_train(z, i, ws)
                self._act(z)
                if save_f:
                    np.copyto(kept[i], z)
                if after:
                    self._bn_train(z, i, ws)
                if dropout:  # inverted dropout: survivors are scaled by 1/keep so predict needs no change
                    self._draw_mask(ws.masks[i])
                    z *= ws.masks[i]
            prev = z

        loss = self._loss(acts[-1], tb, ws.loss)  # acts[-1] now holds dL/dz of the output layer

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
                if after:
                    self._bn_backward(d, i - 1, ws)
                self._act_grad(d, kept[i - 1] if save_f else below, ws.scratch[i - 1])
                if before:
                    self._bn_backward(d, i - 1, ws)
        if update:
            if bn != "none":
                self._update_running_stats(ws, m)
            self._apply_update()
        return loss

    def _forward_backward_in_parts(
        self, xb: np.ndarray, tb: np.ndarray, train: bool, update: bool, ws: _Workspace
    ) -> float:
        """`_forward_backward` cut into one part per thread of the team, in two hand-offs.

        Only the weight gradients sum over the batch; everything else is row by row. So a part
        takes its rows through the forward pass of every layer, the loss and the backward chain
        (`_rows_pass`); only then, once every row's gradient exists, a part takes its share of
        every dW and db, and with `update` the optimizer's step on exactly those parameters: no
        other part reads them any more. Dropout's masks are drawn on this thread for the whole
        batch before the forward pass, in the one-thread order, so the random stream is the same
        whatever the thread count.
        """
        run, parts = self._team.run, range(len(ws.rows))
        dropout = bool(self.spec_.dropout) and train
        if dropout:
            for mask in ws.masks:
                self._draw_mask(mask)
        sums = run(self._rows_pass, [(j, xb, tb, ws, dropout) for j in parts])
        loss = sum(sums) / len(xb)  # the parts' loss sums: the batch's mean, to rounding
        if update:
            self.step_ += 1
            self._hyper.start_step(self.step_)
        run(self._weight_gradients, [(j, xb, ws, update) for j in parts])
        self.split_steps_ += 1
        return loss

    def _bn_train(self, z: np.ndarray, i: int, ws: _Workspace) -> None:
        """Hidden layer `i`'s batch normalization in training, in place: z becomes gamma * xhat + beta."""
        mean, var, inv_std, s = ws.bn_mean[i], ws.bn_var[i], ws.inv_std[i], ws.scratch[i]
        np.dot(ws.ones_m, z, out=mean)
        mean *= ws.inv_m
        z -= mean
        np.multiply(z, z, out=s)
        np.dot(ws.ones_m, s, out=var)
        var *= ws.inv_m  # the biased variance normalizes, as in every framework
        np.add(var, self._bn_eps, out=inv_std)
        np.sqrt(inv_std, out=inv_std)
        np.divide(1, inv_std, out=inv_std)
        z *= inv_std
        np.copyto(ws.xhat[i], z)
        z *= self.bn_params_[2 * i]
        z += self.bn_params_[2 * i + 1]

    def _bn_backward(self, d: np.ndarray, i: int, ws: _Workspace) -> None:
        """dL/dy -> dL/dx through hidden layer `i`'s batch normalization, in place; dgamma and dbeta into bn_grads_."""
        dgamma, dbeta, xhat, s = self.bn_grads_[2 * i], self.bn_grads_[2 * i + 1], ws.xhat[i], ws.scratch[i]
        np.dot(ws.ones_m, d, out=dbeta)
        np.multiply(d, xhat, out=s)
        np.dot(ws.ones_m, s, out=dgamma)
        np.multiply(xhat, dgamma, out=s)
        s += dbeta
        s *= ws.inv_m
        d -= s
        np.multiply(self.bn_params_[2 * i], ws.inv_std[i], out=ws.bn_scale[i])
        d *= ws.bn_scale[i]

    def _update_running_stats(self, ws: _Workspace, m: int) -> None:
        """running = (1 - momentum) * running + momentum * batch, with the batch's unbiased variance."""
        unbiased = np.array(self.spec_.bn_momentum * m / (m - 1), dtype=self.dtype_)
        for i, (mean, var) in enumerate(zip(ws.bn_mean, ws.bn_var, strict=True)):
            rm, rv, s = self.running_mean_[i], self.running_var_[i], ws.bn_scale[i]
            rm *= self._bn_keep
            np.multiply(mean, self._bn_momentum, out=s)
            rm += s
            rv *= self._bn_keep
            np.multiply(var, unbiased, out=s)
            rv += s

    def _bn_eval(self, a: np.ndarray, i: int) -> None:
        """Hidden layer `i`'s batch normalization at prediction time, in place, with the running statistics."""
        a -= self.running_mean_[i]
        a *= self.bn_params_[2 * i] / np.sqrt(self.running_var_[i] + self._bn_eps)
        a += self.bn_params_[2 * i + 1]

    def _rows_pass(self, j: int, xb: np.ndarray, tb: np.ndarray, ws: _Workspace, dropout: bool) -> float:
        """The batch rows `ws.rows[j]` forward through every layer, through the loss and back down to the first
        layer's dL/dz; returns the loss summed over those rows.

        One hand-off for all three: the loss and the chain of gradients passed down are row by row.
        """
        rows = ws.rows[j]
        self._forward_rows(j, xb, ws, dropout)
        loss = self._loss(ws.acts[-1][rows], tb[rows], ws.loss_parts[j])  # acts[-1] now holds dL/dz there
        self._backward_rows(j, ws, dropout)
        return loss * (rows.stop - rows.start)

    def _forward_rows(self, j: int, xb: np.ndarray, ws: _Workspace, dropout: bool) -> None:
        """The forward pass of the batch rows `ws.rows[j]` through every layer."""
        params, rows = self.params_, ws.rows[j]
        n_layers = len(params) // 2
        prev = xb[rows]
        for i in range(n_layers):
            z = ws.acts[i][rows]
            np.dot(prev, params[2 * i], out=z)
            z += params[2 * i + 1]
            if i < n_layers - 1:
                self._act(z)
                if dropout:
                    np.copyto(ws.pre[i][rows], z)
                    z *= ws.masks[i][rows]
            prev = z

    def _backward_rows(self, j: int, ws: _Workspace, dropout: bool) -> None:
        """dL/dz of every hidden layer on the batch rows `ws.rows[j]`, passed down from the output layer."""
        params, rows = self.params_, ws.rows[j]
        for i in range(len(params) // 2 - 1, 0, -1):
            dz = ws.acts[i] if i == len(ws.acts) - 1 else ws.deltas[i]
            d = ws.deltas[i - 1][rows]
            np.dot(dz[rows], params[2 * i].T, out=d)
            if dropout:
                d *= ws.masks[i - 1][rows]
            self._act_grad(d, (ws.pre[i - 1] if dropout else ws.acts[i - 1])[rows], ws.scratch[i - 1][rows])

    def _weight_gradients(self, j: int, xb: np.ndarray, ws: _Workspace, update: bool) -> None:
        """Part `j`'s rows of every dW and columns of every db, summed over the whole batch, then (with `update`)
        the optimizer's step on those parameters, layer by layer while the gradient just written is in cache."""
        grads = self.grads_
        for i, (w_rows, b_cols, blocks) in enumerate(self._weight_parts[j]):
            dz = ws.acts[i] if i == len(ws.acts) - 1 else ws.deltas[i]
            below = ws.acts[i - 1] if i > 0 else xb
            # np.matmul, not np.dot: dot copies an operand that is neither C- nor F-contiguous (these column
            # slices), matmul hands BLAS its strides.
            np.matmul(below[:, w_rows].T, dz, out=grads[2 * i][w_rows])
            np.matmul(ws.ones_m, dz[:, b_cols], out=grads[2 * i + 1][b_cols])  # column sums of dz
            if update:
                self._update_range(blocks)

    def _draw_mask(self, mask: np.ndarray) -> None:
        """A fresh dropout mask: 1/keep with probability keep, else 0."""
        keep = 1.0 - self.spec_.dropout
        self.rng_.random(out=mask, dtype=self.dtype_)
        np.less(mask, keep, out=mask)
        mask *= 1.0 / keep

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

    def _update_range(self, blocks: list[tuple[Any, ...]]) -> None:
        """The optimizer's update, L2 first, on one part's share of the flat buffers, block by block."""
        for p, g, state, tmp, decay in blocks:
            if decay is not None:
                np.multiply(decay, p, out=tmp)  # as _add_l2, on this block
                g += tmp
            self._update(self._hyper, p, g, state, tmp)

    # ----------------------------------------------------------- inference
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (classification) or outputs (regression) of the rows of `X`.

        A model whose training steps run in parts predicts in parts too, on the same team with BLAS held
        to one thread: a product on BLAS's own threads leaves them spinning for about 0.1 s afterwards
        (OpenBLAS's wait before its threads sleep), and a training epoch started meanwhile, as the
        runner's is right after its evaluation, shares both cores with them: an epoch of ~0.1 s ran
        1.5x slower.
        """
        a = np.asarray(X, dtype=self.dtype_)
        team = self._team
        if team is None or step_parts(self.spec_, self.spec_.batch_size, team.size) == 1:
            return self._predict(a)
        with team.one_blas_thread():
            if len(a) < 2 * team.size:
                return self._predict(a)
            parts = [a[rows] for rows in _parts(len(a), team.size)]
            return np.concatenate(team.run(self._predict, [(part,) for part in parts]))

    def _predict(self, a: np.ndarray) -> np.ndarray:
        n_layers = len(self.params_) // 2
        bn = self.spec_.batch_norm if self.bn_params_ else "none"
        for i in range(n_layers):
            a = a @ self.params_[2 * i]
            a += self.params_[2 * i + 1]
            if i < n_layers - 1:
                if bn == "before":
                    self._bn_eval(a, i)
                self._act(a)
                if bn == "after":
                    self._bn_eval(a, i)
        if self.spec_.loss == "cross_entropy":
            a -= a.max(axis=1, keepdims=True)
            np.exp(a, out=a)
            a /= a.sum(axis=1, keepdims=True)
        elif self.spec_.loss == "binary_cross_entropy":
            _sigmoid(a)
            a = np.hstack([1.0 - a, a])
        return a

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (W, b) pairs; batch normalization's state is not part of them (see `batch_norm_state`)."""
        return [(W.copy(), b.copy()) for W, b in zip(self.params_[::2], self.params_[1::2], strict=True)]

    def batch_norm_state(self) -> list[dict[str, np.ndarray]]:
        """Per hidden layer, copies of gamma, beta, running_mean and running_var ([] without batch_norm)."""
        return [
            {"gamma": g.copy(), "beta": b.copy(), "running_mean": rm.copy(), "running_var": rv.copy()}
            for g, b, rm, rv in zip(
                self.bn_params_[::2], self.bn_params_[1::2], self.running_mean_, self.running_var_, strict=True
            )
        ]

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
