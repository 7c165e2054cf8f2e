"""The Keras 3 backend: a `keras.Sequential` of Dense layers on TensorFlow (default), PyTorch or JAX.

The engine is chosen with the option ``engine`` and reaches Keras through ``KERAS_BACKEND``,
which `worker_env` puts in the worker's environment before anything is imported.

How an epoch runs (option ``loop``), measured on digits (1077 samples, batch 32: 34 steps;
64-64-10 relu, adam, float32, 1 thread) on a shared 2-core machine (noisy: relative
figures only; median of 29 epochs after the first; NumPy's hand-written backend takes ~5 ms)::

    engine      loop / option                        epoch ms   first epoch ms
    tensorflow  graph (default)                          14          1900
    tensorflow  graph, jit_compile=true (XLA)             6          4700
    tensorflow  fit                                     390          1800
    tensorflow  fit, steps_per_execution=34             250          1400
    tensorflow  fit, jit_compile=true                   250          6200
    tensorflow  model.train_on_batch per batch           81          1200
    torch       fit (default)                           210           240   (train_on_batch: 210)
    jax         fit (default; jax.jit)                   28          3100   (train_on_batch: 100)

On TensorFlow each `fit` call builds a new tf.data pipeline and retraces its map functions
(~0.3 s), which is why the default there is ``graph``; on xor (one batch) graph takes 2 ms an
epoch, fit 160 ms. On torch the time is Keras' per-step Python overhead, whichever loop.
jit_compile is "auto", Keras' own rule (no XLA on a CPU-only TensorFlow, jax.jit on jax).

``graph`` (TensorFlow only, the default there) traces one `tf.function` whose body loops
over all full-size batches of the epoch with `tf.range` (a graph while-loop): the data
stays in TensorFlow as constants, the batch index arrays are gathered inside the graph,
and Keras' own layers, losses, regularizers and optimizer do the work. The last, smaller
batch is a second call of the same function (one extra trace, in the first epoch).
``fit`` runs `model.fit` for one epoch on the samples in the runner's order
(``shuffle=False`` and consecutive batches reproduce the runner's batches exactly); it is
the path for the torch and jax engines. Tracing and compilation land in the first epoch.

Native mode (`fit_native`) ignores ``loop``: it is one ``model.fit(epochs=E, batch_size,
shuffle=True, verbose=0)`` call after ``keras.utils.set_random_seed(seed)``, on a model built
with the Dense layers' default initialisers (no runner weights) and compiled as above. A
callback times each epoch from ``on_epoch_begin`` to ``on_epoch_end`` (or to ``on_test_begin``
when fit validates for EarlyStopping) and then hands over to the runner, whose evaluation is
therefore outside the interval. With patience, Keras' own EarlyStopping on the runner's
validation split (``validation_data``). On TensorFlow's CPU kernels with one thread two runs
with one seed give identical results (tests/test_native.py).

Mapping onto the canonical semantics (see DESIGN.md):
- the output layer is linear; the losses take logits (``from_logits=True``), so softmax
  and sigmoid are applied by the loss and by `predict`;
- L2: ``kernel_regularizer=L2(l2 / 2)``, since Keras adds ``x * sum(W**2)`` to the
  objective (gradient ``2x W``); biases get none. The reported loss is the data loss only;
- leaky_relu uses slope 0.01 (Keras' default is 0.2, 0.3 for the LeakyReLU layer), elu alpha 1;
- SGD with momentum: Keras keeps ``m = mu*m - lr*g; p += m`` and for nesterov
  ``p += mu*m - lr*g``: with a constant learning rate ``m = -lr*v`` of PyTorch's form, so
  the updates are the same;
- Adam: Keras adds ``epsilon`` to ``sqrt(v)`` and folds the bias corrections into the step
  size, PyTorch adds it to ``sqrt(v_hat) = sqrt(v) / sqrt(1 - beta2**t)``. Keras with
  ``epsilon=eps`` is therefore PyTorch with ``eps / sqrt(1 - beta2**t)`` (31.6 eps at step 1,
  tending to eps). This difference is kept (it is Keras' Adam) and measured by the parity check;
- RMSprop: ``RMSprop(rho=alpha, epsilon=eps**2)``. Keras adds epsilon inside the square root
  (``lr*g / sqrt(v + epsilon)``), PyTorch outside (``lr*g / (sqrt(v) + eps)``): no epsilon makes
  them equal; eps**2 puts Keras' denominator between PyTorch's / sqrt(2) and PyTorch's. Measured;
- batch normalization: ``BatchNormalization(momentum=1 - bn_momentum, epsilon=bn_eps)`` after the
  activated Dense layer ("after") or between a linear Dense layer and an ``Activation`` layer
  ("before"), Dropout after it. Training is exact; Keras' moving variance is the biased batch
  variance (PyTorch's, the spec's, is unbiased), so predictions differ. Measured. Weights go in and
  out per Dense layer, so the normalization keeps its initial gamma 1, beta 0, moving 0 / 1;
- ``keras.config.set_floatx(spec.dtype)`` is set in `build`, because the optimizer's learning
  rate and the losses follow floatx.

float64 (the parity checks): TensorFlow's ``tf.cast`` turns a Python float into float32 before
casting (tensorflow/tensorflow#35938, #64548), and Keras casts its hyper-parameters that way
(SGD momentum, Adam's betas, L2's factor), so in float64 they would be float32-rounded
(0.9 -> 0.89999998): 2e-7 weight differences after 3 epochs of momentum on digits. They are
therefore passed as ``np.float64`` scalars, which cast exactly (in float32 this changes nothing).
What remains: TensorFlow's LeakyRelu op keeps its slope in a float32 attribute (~3e-11 after an
epoch). On the torch and jax engines Keras 3.15 computes some float64 ops in float32, because
its ``result_type`` demotes 64-bit types (keras-team/keras#23223): every matmul on torch, tanh
on jax; differences 1e-9 to 1e-7. On jax, float64 also needs ``JAX_ENABLE_X64=1`` (else `skip` declines).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import Any

import numpy as np

from mlpbench import Backend, ModelSpec
from mlpbench.backend import EpochEnd, NativeFit
from mlpbench.controlled import initial_weights
from mlpbench.spec import ELU_ALPHA, LEAKY_RELU_SLOPE

ENGINES = ("tensorflow", "torch", "jax")
LOOPS = ("auto", "graph", "fit")
_TRUE = ("1", "true", "yes", "on")


def _activation(keras: Any, name: str) -> Any:
    table = {
        "sigmoid": keras.activations.sigmoid,
        "tanh": keras.activations.tanh,
        "relu": keras.activations.relu,
        "leaky_relu": lambda x: keras.activations.leaky_relu(x, negative_slope=LEAKY_RELU_SLOPE),
        "elu": lambda x: keras.activations.elu(x, alpha=ELU_ALPHA),
    }
    return table[name]


def _loss_and_metric(keras: Any, loss: str) -> tuple[Any, Any]:
    """The training loss and a metric computing the same per-sample mean (the data loss only)."""
    L, M = keras.losses, keras.metrics
    table = {
        "cross_entropy": (
            L.SparseCategoricalCrossentropy(from_logits=True),
            M.SparseCategoricalCrossentropy(from_logits=True, name="data_loss"),
        ),
        "binary_cross_entropy": (
            L.BinaryCrossentropy(from_logits=True),
            M.BinaryCrossentropy(from_logits=True, name="data_loss"),
        ),
        "mse": (L.MeanSquaredError(), M.MeanSquaredError(name="data_loss")),
        "mae": (L.MeanAbsoluteError(), M.MeanAbsoluteError(name="data_loss")),
    }
    return table[loss]


def _optimizer(keras: Any, spec: ModelSpec) -> Any:
    opt = keras.optimizers
    f = np.float64  # not Python floats: see the module docstring
    table = {
        "sgd": lambda: opt.SGD(learning_rate=f(spec.lr)),
        "momentum": lambda: opt.SGD(learning_rate=f(spec.lr), momentum=f(spec.momentum)),
        "nesterov": lambda: opt.SGD(learning_rate=f(spec.lr), momentum=f(spec.momentum), nesterov=True),
        "adam": lambda: opt.Adam(
            learning_rate=f(spec.lr), beta_1=f(spec.beta1), beta_2=f(spec.beta2), epsilon=f(spec.eps)
        ),
        # Keras adds epsilon inside the square root: sqrt(v + eps^2) lies between sqrt(v) + eps and
        # (sqrt(v) + eps) / sqrt(2), the closest Keras comes to PyTorch's sqrt(v) + eps (see the docstring).
        "rmsprop": lambda: opt.RMSprop(
            learning_rate=f(spec.lr), rho=f(spec.alpha), epsilon=f(spec.eps**2), momentum=0.0, centered=False
        ),
    }
    return table[spec.optimizer]()


class KerasMLP(Backend):
    """A multilayer perceptron as a Keras 3 `Sequential` model, on TensorFlow, PyTorch or JAX."""

    name = "keras"
    requires = ("keras",)  # the engine's module is checked by `skip`, which knows the options
    options = {
        "engine": "tensorflow",  # Keras backend: tensorflow, torch or jax (KERAS_BACKEND)
        "loop": "auto",  # graph (TensorFlow only), fit, or auto: graph on TensorFlow, fit otherwise
        "jit_compile": "auto",  # XLA (jax.jit on jax) for the train step: true, false, or Keras' auto
        "steps_per_execution": 1,  # fit only: batches per call of Keras' compiled train function
    }
    optimizers = ("sgd", "momentum", "nesterov", "adam", "rmsprop")
    supports_batch_norm = True
    parity_target = 1e-6
    parity_notes = {
        "adam": "Adam adds epsilon to sqrt(v) before the bias correction: PyTorch's rule with "
        "eps / sqrt(1 - beta2^t) in place of eps (31.6·eps at step 1, tending to eps)",
        "rmsprop": "RMSprop adds epsilon inside the square root, p -= lr·g / sqrt(v + epsilon): with "
        "epsilon = eps² the denominator lies between (sqrt(v) + eps)/√2 and PyTorch's sqrt(v) + eps",
        "batch_norm": "BatchNormalization's moving variance is the biased batch variance (PyTorch's: unbiased, "
        "×n/(n-1)); momentum = 1 - bn_momentum and epsilon = bn_eps are exact, so training is, "
        "and predictions (running statistics) differ",
    }
    native_loop = (
        "one model.fit(epochs, batch_size, shuffle=True, verbose=0) call, a callback timing each epoch; "
        "keras.utils.set_random_seed(seed) and the Dense layers' default initialisers"
    )
    native_early_stopping = (
        "keras EarlyStopping(monitor='val_loss', patience, min_delta, restore_best_weights) "
        "on the runner's validation split"
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        engine, loop = self.config["engine"], self.config["loop"]
        if engine not in ENGINES:
            raise ValueError(f"option engine={engine!r}: expected one of {', '.join(ENGINES)}")
        if loop not in LOOPS:
            raise ValueError(f"option loop={loop!r}: expected one of {', '.join(LOOPS)}")
        if loop == "graph" and engine != "tensorflow":
            raise ValueError(f"option loop=graph needs engine=tensorflow (got engine={engine!r}); use loop=fit")
        if self.config["steps_per_execution"] < 1:
            raise ValueError("option steps_per_execution must be >= 1")
        jit = self.config["jit_compile"]
        if isinstance(jit, str):
            jit = {"auto": "auto", "true": True, "1": True, "false": False, "0": False}.get(jit.lower())
            if jit is None:
                raise ValueError(f"option jit_compile={self.config['jit_compile']!r}: expected auto, true or false")
        self.config["jit_compile"] = jit
        self.loop = loop if loop != "auto" else ("graph" if engine == "tensorflow" else "fit")

    @classmethod
    def worker_env(cls, options: dict[str, Any]) -> dict[str, str]:
        return {"KERAS_BACKEND": str(options.get("engine", cls.options["engine"]))}

    @classmethod
    def versions(cls) -> dict[str, str]:
        out = super().versions()
        engine = os.environ.get("KERAS_BACKEND", cls.options["engine"])
        if engine in ENGINES:
            out.update(_engine_versions(engine))
        return out

    def skip(self, spec: ModelSpec) -> str | None:
        engine = self.config["engine"]
        if importlib.util.find_spec(engine) is None:
            return f"keras engine {engine!r} is not installed (cannot import {engine}); choose another engine"
        if engine == "jax" and spec.dtype == "float64" and os.environ.get("JAX_ENABLE_X64", "").lower() not in _TRUE:
            return "keras on jax computes float64 in float32 unless jax's 64-bit mode is on: set JAX_ENABLE_X64=1"
        return super().skip(spec)

    # ---------------------------------------------------------------- lifecycle
    def prepare(self, threads: int) -> None:
        super().prepare(threads)
        engine = self.config["engine"]
        if "keras" in sys.modules:
            current = sys.modules["keras"].backend.backend()
            if current != engine:
                raise RuntimeError(f"keras is already imported with engine {current!r}; cannot switch to {engine!r}")
        os.environ["KERAS_BACKEND"] = engine
        if engine == "tensorflow":
            import tensorflow as tf

            # Only possible before TensorFlow runs its first op; a repeated prepare keeps them.
            if tf.config.threading.get_intra_op_parallelism_threads() != threads:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
            if tf.config.threading.get_inter_op_parallelism_threads() != 1:
                tf.config.threading.set_inter_op_parallelism_threads(1)
        elif engine == "torch":
            import torch

            torch.set_num_threads(threads)
        import keras

        self.keras = keras

    def build(self, spec: ModelSpec, weights: list[tuple[np.ndarray, np.ndarray]] | None, seed: int) -> None:
        self._build(spec, initial_weights(spec, seed) if weights is None else weights, seed)

    def _build(self, spec: ModelSpec, weights: list[tuple[np.ndarray, np.ndarray]] | None, seed: int) -> None:
        """The compiled model; `weights` None keeps the layers' own initialisers and Keras' global seed (native)."""
        if getattr(self, "keras", None) is None:
            self.prepare(self.threads or os.cpu_count() or 1)
        keras = self.keras
        keras.config.set_floatx(spec.dtype)
        self.spec_ = spec
        self.dtype_ = np.dtype(spec.dtype)
        native = weights is None
        reg = None
        if spec.l2:
            reg = keras.regularizers.L2(spec.l2 / 2)
            reg.l2 = np.float64(spec.l2 / 2)  # L2() stores a Python float: see the module docstring
        layers: list[Any] = [keras.Input((spec.n_inputs,), dtype=spec.dtype)]
        self.dense_: list[Any] = []
        self.norms_: list[Any] = []
        for i, width in enumerate(spec.hidden):
            act = _activation(keras, spec.activation)
            # Dense -> [BN "before"] -> activation -> [BN "after"] -> dropout, as the spec says.
            dense = keras.layers.Dense(
                width, activation=None if spec.batch_norm == "before" else act, kernel_regularizer=reg, dtype=spec.dtype
            )
            self.dense_.append(dense)
            layers.append(dense)
            if spec.batch_norm != "none":
                # Keras' moving average keeps `momentum` of the old value: 1 - the spec's (PyTorch's) momentum.
                norm = keras.layers.BatchNormalization(
                    momentum=1.0 - spec.bn_momentum, epsilon=spec.bn_eps, dtype=spec.dtype
                )
                self.norms_.append(norm)
                before = spec.batch_norm == "before"
                layers += [norm, keras.layers.Activation(act, dtype=spec.dtype)] if before else [norm]
            if spec.dropout:
                layers.append(keras.layers.Dropout(spec.dropout, seed=None if native else seed * 1000 + i))
        self.dense_.append(keras.layers.Dense(spec.n_outputs, kernel_regularizer=reg, dtype=spec.dtype))
        layers.append(self.dense_[-1])
        self.model_ = keras.Sequential(layers)
        if not native:
            for dense, (W, b) in zip(self.dense_, weights, strict=True):  # BN starts at gamma 1, beta 0, moving 0 / 1
                dense.set_weights([np.asarray(W, dtype=self.dtype_), np.asarray(b, dtype=self.dtype_).reshape(-1)])
        self.loss_, metric = _loss_and_metric(keras, spec.loss)
        self.optimizer_ = _optimizer(keras, spec)
        self.model_.compile(
            optimizer=self.optimizer_,
            loss=self.loss_,
            metrics=[metric],
            jit_compile=self.config["jit_compile"],
            steps_per_execution=self.config["steps_per_execution"],
        )
        self._data: tuple[Any, ...] | None = None
        # "auto" is Keras' own rule (no XLA on a CPU-only TensorFlow, none on torch, jax.jit on jax).
        self.jit_compile_ = bool(self.model_.jit_compile)
        self._epoch_fn = self._graph_epoch_function() if self.loop == "graph" and not native else None

    def fit_native(
        self,
        spec: ModelSpec,
        seed: int,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        epoch_end: EpochEnd,
    ) -> NativeFit | None:
        """Keras' own loop: one ``model.fit(epochs=E, shuffle=True)`` call; a callback times each epoch.

        The epoch's interval runs from ``on_epoch_begin`` to ``on_epoch_end``, or to ``on_test_begin``
        when Keras validates for its EarlyStopping (that pass is not training); the runner's
        evaluation runs inside ``on_epoch_end``, after the clock is read.
        """
        if getattr(self, "keras", None) is None:
            self.prepare(self.threads or os.cpu_count() or 1)
        keras = self.keras
        keras.utils.set_random_seed(seed)  # Python, NumPy and the engine: initialisers, dropout, shuffling
        self._build(spec, None, seed)
        clock = _epoch_clock(keras, epoch_end)
        callbacks: list[Any] = [clock]
        extra: dict[str, Any] = {}
        stopper = None
        if spec.patience:
            stopper = keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=spec.patience,
                min_delta=spec.min_delta,
                restore_best_weights=spec.restore_best,
            )
            callbacks.append(stopper)
            extra["validation_data"] = (np.asarray(X_val, dtype=self.dtype_), self._targets(y_val))
        self.model_.fit(
            np.asarray(X, dtype=self.dtype_),
            self._targets(y),
            epochs=spec.epochs,
            batch_size=spec.batch_size,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
            **extra,
        )
        if stopper is None:
            return None
        best = stopper.best_epoch + 1
        return NativeFit(
            best_epoch=best,
            stopped_early=stopper.stopped_epoch > 0,
            restored_best=spec.restore_best and best != clock.epochs,
        )

    # ------------------------------------------------------------- training
    def _targets(self, y: np.ndarray) -> np.ndarray:
        if self.spec_.loss == "cross_entropy":
            return np.asarray(y, dtype=np.int64)
        return np.asarray(y, dtype=self.dtype_).reshape(len(y), -1)

    def train_epoch(self, X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> float:
        sizes = {len(b) for b in batches[:-1]}
        if len(sizes) > 1 or (sizes and len(batches[-1]) > sizes.pop()):
            raise ValueError("batches must all have the same size except a smaller last one")
        if self.loop == "graph":
            return self._train_epoch_graph(X, y, batches)
        order = np.concatenate(batches)
        history = self.model_.fit(
            np.asarray(X, dtype=self.dtype_)[order],
            self._targets(y)[order],
            batch_size=len(batches[0]),
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        return float(history.history["data_loss"][-1])

    def _graph_epoch_function(self) -> Any:
        import tensorflow as tf

        model, loss_fn, optimizer = self.model_, self.loss_, self.optimizer_
        dtype = self.spec_.dtype

        @tf.function(jit_compile=self.jit_compile_, reduce_retracing=True)
        def run(X: Any, y: Any, index: Any) -> Any:
            # index: (steps, batch) sample indices; one optimizer step per row.
            total = tf.zeros((), dtype=dtype)
            for i in tf.range(tf.shape(index)[0]):
                xb, yb = tf.gather(X, index[i]), tf.gather(y, index[i])
                with tf.GradientTape() as tape:
                    loss = loss_fn(yb, model(xb, training=True))
                    objective = loss + tf.add_n(model.losses) if model.losses else loss
                grads = tape.gradient(objective, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
                total += loss * tf.cast(tf.shape(xb)[0], dtype)
            return total

        return run

    def _train_epoch_graph(self, X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> float:
        import tensorflow as tf

        # The runner passes the same arrays every epoch: convert them to tensors once.
        if self._data is None or self._data[0] is not X or self._data[1] is not y:
            self._data = (X, y, tf.constant(np.asarray(X, dtype=self.dtype_)), tf.constant(self._targets(y)))
        X_t, y_t = self._data[2], self._data[3]
        m = len(batches[0])
        full = [b for b in batches if len(b) == m]
        total = float(self._epoch_fn(X_t, y_t, tf.constant(np.stack(full))))
        if len(full) < len(batches):
            total += float(self._epoch_fn(X_t, y_t, tf.constant(batches[-1][None, :])))
        return total / sum(len(b) for b in batches)

    # ------------------------------------------------------------- inference
    def predict(self, X: np.ndarray) -> np.ndarray:
        z = np.asarray(self.model_.predict_on_batch(np.asarray(X, dtype=self.dtype_)), dtype=self.dtype_)
        if self.spec_.loss == "cross_entropy":
            z = np.exp(z - z.max(axis=1, keepdims=True))
            return z / z.sum(axis=1, keepdims=True)
        if self.spec_.loss == "binary_cross_entropy":
            p = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow
            return np.hstack([1.0 - p, p])
        return z

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The Dense layers' (W, b); batch normalization's state is not part of them (see `batch_norm_state`)."""
        pairs = [dense.get_weights() for dense in self.dense_]
        return [(np.array(W, dtype=self.dtype_), np.array(b, dtype=self.dtype_)) for W, b in pairs]

    def batch_norm_state(self) -> list[dict[str, np.ndarray]]:
        """Per hidden layer, copies of gamma, beta, running_mean and running_var ([] without batch_norm)."""
        keys = ("gamma", "beta", "running_mean", "running_var")  # Keras' order: gamma, beta, moving mean, variance
        return [
            {k: np.array(v, dtype=self.dtype_) for k, v in zip(keys, bn.get_weights(), strict=True)}
            for bn in self.norms_
        ]

    def __repr__(self) -> str:
        spec = getattr(self, "spec_", None)
        return f"KerasMLP({self.config['engine']}, {self.loop}, {spec!r})" if spec else f"KerasMLP({self.config})"


def _epoch_clock(keras: Any, epoch_end: EpochEnd) -> Any:
    """A Keras callback: each epoch's wall time, then the runner's `epoch_end` (its True stops training)."""

    class EpochClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epochs = 0
            self.t0 = self.t_end = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.t_end = None
            self.t0 = time.perf_counter()

        def on_test_begin(self, logs: Any = None) -> None:
            if self.t_end is None:  # Keras' own validation pass (EarlyStopping) ends the epoch's training
                self.t_end = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            end = self.t_end if self.t_end is not None else time.perf_counter()
            self.epochs = epoch + 1
            running = (logs or {}).get("data_loss")
            if epoch_end(epoch + 1, end - self.t0, None if running is None else float(running)):
                self.model.stop_training = True

    return EpochClock()


def _engine_versions(engine: str) -> dict[str, str]:
    import importlib.metadata

    dists = {"tensorflow": ("tensorflow-cpu", "tensorflow"), "torch": ("torch",), "jax": ("jax",)}[engine]
    for dist in dists:
        try:
            return {engine: importlib.metadata.version(dist)}
        except importlib.metadata.PackageNotFoundError:
            continue
    return {}
