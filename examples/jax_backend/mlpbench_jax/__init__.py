"""mlpbench-jax: the benchmark's MLP in JAX (jax.numpy, jax.grad, jax.jit), installed as a plugin.

The whole training step (batch gather, forward, backward, L2, optimizer update) is one
jitted function; the spec is a static argument, so jobs that differ only in seed reuse
the compiled code. JAX is imported in `prepare`, never at module level.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from typing import Any

import numpy as np

from mlpbench import Backend, ModelSpec
from mlpbench.spec import ELU_ALPHA, LEAKY_RELU_SLOPE

__version__ = "0.1.0"


def _activation(jax: Any, name: str, z: Any) -> Any:
    nn = jax.nn
    return {
        "sigmoid": nn.sigmoid,
        "tanh": jax.numpy.tanh,
        "relu": nn.relu,
        "leaky_relu": partial(nn.leaky_relu, negative_slope=LEAKY_RELU_SLOPE),
        "elu": partial(nn.elu, alpha=ELU_ALPHA),
    }[name](z)


def _forward(jax: Any, spec: ModelSpec, params: list, X: Any, key: Any = None) -> Any:
    """Output-layer pre-activations; inverted dropout on hidden outputs when `key` is given."""
    a = X
    for i, (W, b) in enumerate(params):
        z = a @ W + b
        if i == len(params) - 1:
            return z
        a = _activation(jax, spec.activation, z)
        if key is not None and spec.dropout:
            keep = 1.0 - spec.dropout
            a = a * jax.random.bernoulli(jax.random.fold_in(key, i), keep, a.shape) / keep


def _loss(jax: Any, spec: ModelSpec, params: list, X: Any, y: Any, key: Any) -> Any:
    """Mean per-sample loss (mse and mae also average over outputs)."""
    jnp = jax.numpy
    z = _forward(jax, spec, params, X, key)
    if spec.loss == "cross_entropy":
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=1))
    if spec.loss == "binary_cross_entropy":
        t = y.astype(z.dtype)[:, None]
        return jnp.mean(jax.nn.softplus(z) - t * z)  # -log sigmoid(z) for t=1, -log(1-sigmoid(z)) for t=0
    return jnp.mean((z - y) ** 2) if spec.loss == "mse" else jnp.mean(jnp.abs(z - y))


def _update(jax: Any, spec: ModelSpec, params: list, grads: list, state: dict, t: Any) -> tuple[list, dict]:
    """PyTorch's sgd / momentum / nesterov / adam rules; `t` is the 1-based step."""
    tm, jnp, lr = jax.tree.map, jax.numpy, spec.lr
    if spec.optimizer == "sgd":
        return tm(lambda p, g: p - lr * g, params, grads), state
    if spec.optimizer in ("momentum", "nesterov"):
        v = tm(lambda v, g: spec.momentum * v + g, state["v"], grads)
        step = v if spec.optimizer == "momentum" else tm(lambda g, v: g + spec.momentum * v, grads, v)
        return tm(lambda p, s: p - lr * s, params, step), {"v": v}
    m = tm(lambda m, g: m + (1 - spec.beta1) * (g - m), state["m"], grads)
    v = tm(lambda v, g: spec.beta2 * v + (1 - spec.beta2) * g * g, state["v"], grads)
    step_size = lr / (1 - spec.beta1**t)
    root = jnp.sqrt(1 - spec.beta2**t)
    return tm(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / root + spec.eps), params, m, v), {"m": m, "v": v}


class JaxMLP(Backend):
    """A multilayer perceptron in JAX on the CPU, float32 or float64."""

    name = "jax"
    requires = ("jax",)
    # What `_update` implements, declared: the spec's newer optimizers (rmsprop) are skipped, not mis-run.
    optimizers = ("sgd", "momentum", "nesterov", "adam")
    supports_batch_norm = False  # `_forward` has no batch normalization
    # pin: restrict the worker's CPU affinity to `threads` cores before JAX starts. JAX sizes its
    # thread pool from the affinity mask and honours no thread-count setting (see README).
    options = {"pin": True}

    @classmethod
    def worker_env(cls, options: dict[str, Any]) -> dict[str, str]:
        return {"JAX_PLATFORMS": "cpu"}

    def skip(self, spec: ModelSpec) -> str | None:
        reason = super().skip(spec)
        if reason is None and getattr(spec, "batch_norm", "none") != "none":
            reason = "jax does not support batch_norm (the example plugin has no batch normalization)"
        return reason

    def prepare(self, threads: int) -> None:
        super().prepare(threads)
        if self.config["pin"] and "jax" not in sys.modules and hasattr(os, "sched_setaffinity"):
            cpus = sorted(os.sched_getaffinity(0))
            if threads < len(cpus):  # start at pid % n so parallel workers spread over the cores
                first = os.getpid() % len(cpus)
                os.sched_setaffinity(0, {cpus[(first + i) % len(cpus)] for i in range(threads)})
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 specs; float32 arrays stay float32
        self.jax = jax
        self._step = jax.jit(self._train_step, static_argnums=0)
        self._predict = jax.jit(self._predict_fn, static_argnums=0)

    def build(self, spec: ModelSpec, weights: list[tuple[np.ndarray, np.ndarray]] | None, seed: int) -> None:
        if getattr(self, "jax", None) is None:
            self.prepare(self.threads or 1)
        jnp = self.jax.numpy
        self.spec_ = spec
        self.params_ = [(jnp.asarray(W, dtype=spec.dtype), jnp.asarray(b, dtype=spec.dtype)) for W, b in weights]
        zeros = self.jax.tree.map(jnp.zeros_like, self.params_)
        self.state_ = {"sgd": {}, "momentum": {"v": zeros}, "nesterov": {"v": zeros}, "adam": {"m": zeros, "v": zeros}}[
            spec.optimizer
        ]
        self.t_ = 0
        self.key_ = self.jax.random.key(seed)
        self._data: tuple[Any, ...] = (None, None, None, None)

    def _train_step(
        self, spec: ModelSpec, params: list, state: dict, t: Any, X: Any, y: Any, idx: Any, key: Any
    ) -> tuple[list, dict, Any]:
        jax = self.jax
        loss, grads = jax.value_and_grad(partial(_loss, jax, spec))(params, X[idx], y[idx], jax.random.fold_in(key, t))
        if spec.l2:
            grads = [(gW + spec.l2 * W, gb) for (W, _), (gW, gb) in zip(params, grads, strict=True)]
        params, state = _update(jax, spec, params, grads, state, t.astype(spec.dtype))
        return params, state, loss

    def _device_data(self, X: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        # The runner passes the same arrays every epoch: copy them to the device once.
        if self._data[0] is not X or self._data[1] is not y:
            jnp = self.jax.numpy
            target = np.int32 if self.spec_.is_classifier else self.spec_.dtype
            self._data = (X, y, jnp.asarray(X, dtype=self.spec_.dtype), jnp.asarray(y, dtype=target))
        return self._data[2], self._data[3]

    def train_epoch(self, X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> float:
        Xd, yd = self._device_data(X, y)
        total, count = 0.0, 0
        for idx in batches:
            self.t_ += 1
            self.params_, self.state_, loss = self._step(
                self.spec_, self.params_, self.state_, np.int32(self.t_), Xd, yd, idx, self.key_
            )
            total, count = total + loss * len(idx), count + len(idx)  # stays on the device: no sync per batch
        return float(total) / max(count, 1)

    def _predict_fn(self, spec: ModelSpec, params: list, X: Any) -> Any:
        z = _forward(self.jax, spec, params, X)
        jnp, nn = self.jax.numpy, self.jax.nn
        if spec.loss == "cross_entropy":
            return nn.softmax(z, axis=1)
        if spec.loss == "binary_cross_entropy":
            p = nn.sigmoid(z)
            return jnp.concatenate([1 - p, p], axis=1)
        return z

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self.jax.numpy.asarray(X, dtype=self.spec_.dtype)
        return np.array(self._predict(self.spec_, self.params_, X), dtype=self.spec_.dtype)

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(np.array(W), np.array(b)) for W, b in self.params_]

    def sync(self) -> None:
        if getattr(self, "params_", None) is not None:
            self.jax.block_until_ready(self.params_)

    def __repr__(self) -> str:
        spec = getattr(self, "spec_", None)
        return f"JaxMLP({spec!r})" if spec else "JaxMLP(unbuilt)"
