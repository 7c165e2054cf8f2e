"""The scikit-learn backend: `MLPClassifier` / `MLPRegressor` stepped on the runner's batches.

Two ways to run an epoch (option ``loop``), both exact:

* ``batch`` (default): per runner batch, the two calls the body of scikit-learn's own
  ``fit`` loop makes — ``_backprop`` (forward, loss, gradients) and
  ``_optimizer.update_params`` — so an epoch costs what an epoch of ``fit`` costs.
  These are private names (checked in `build`, which says to use ``loop=partial_fit``
  when a scikit-learn version lacks them).
* ``partial_fit``: public API only. With ``shuffle=False``, ``partial_fit(X, y)`` makes
  one pass over ``X`` in consecutive slices of ``batch_size`` rows, one step per slice;
  the rows are gathered in the runner's order and handed over in one call per run of
  equal-sized batches (normally two: the full batches, then the smaller last one).
  Each call re-validates its input: measured 2-9 ms per call here, which on XOR
  (one batch per epoch) is several times the training work itself.

loop=batch uses private names, so it runs only on the scikit-learn versions whose
signatures were checked (`BATCH_LOOP_VERSIONS`, the bound in pyproject.toml; the test
``test_private_signatures_used_by_loop_batch_are_unchanged`` fails when they change):
outside them `skip_mode` makes controlled loop=batch jobs ``skipped`` with a reason that
points at ``loop=partial_fit``.

Native mode (`fit_native`) is the estimator's public ``fit`` (``max_iter`` = epochs,
``shuffle=True``, ``random_state=seed``, ``tol=0`` and ``n_iter_no_change`` = epochs + 1 so
that it runs every epoch asked for; hyper-parameters mapped as below, alpha for full
batches), scikit-learn's own initialisation. It has no per-epoch hook, so the call is timed
as a whole (``NativeFit(timing="whole_call")``), its ``loss_curve_`` is the running loss per
epoch (L2 penalty included, mse in the spec's units) and per-epoch validation values are
absent. With patience: its own ``early_stopping`` (a 10% validation split of the training
set, its validation score, best weights restored).

Starting from the runner's weights: scikit-learn builds its fitted state (label
binarizer, layer list, output activation, optimizer) only inside a first
``partial_fit``. `build` makes that call on a dummy batch, writes the runner's weights
into ``coefs_`` / ``intercepts_`` and deletes the optimizer that call created
(``_optimizer``); the next step then starts from a fresh optimizer with zero state —
the code path of a model never trained — so the dummy step leaves no trace. The
tests check the first epochs against the NumPy backend for both loops.

Differences from the spec, and how they are mapped (exact unless noted):

* L2: scikit-learn adds ``alpha * W / n_batch`` to the gradient, so ``alpha`` is set to
  ``l2 * n_batch / c`` for each batch size (the smaller last batch gets its own value).
* mse: scikit-learn's gradient is that of ``1/2 · Σ_outputs mean_samples (p - y)²``,
  the spec's that of ``mean (p - y)²``: the spec's gradient is ``c = 2 / n_outputs``
  times scikit-learn's. sgd / momentum / nesterov get the learning rate ×c (and alpha
  /c); Adam is invariant to the gradient's scale except for epsilon, which gets /c.
* momentum / nesterov: scikit-learn's ``u = mu*u - lr*g; p += u`` (nesterov
  ``p += mu*u - lr*g``) is PyTorch's rule with ``u = -lr*v`` for a constant learning rate.
* adam — NOT exact: scikit-learn adds epsilon to ``sqrt(v)`` before the bias correction
  (``p -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)``): PyTorch's rule with a
  step-dependent epsilon ``eps / sqrt(1-b2^t)`` (31.6·eps at step 1, tending to eps).
  With eps → 0 the two agree to rounding; the parity check measures the difference.
* Capabilities: activations relu, tanh, sigmoid ("logistic"); losses cross_entropy
  (3+ classes: for 2 classes scikit-learn uses one logistic unit), binary_cross_entropy,
  mse; optimizers sgd, momentum, nesterov, adam (no RMSprop solver); no mae, no dropout, no
  batch normalization; constant learning rate.
* Running loss (`train_epoch`'s return): scikit-learn's batch losses in the spec's
  units (mse ×2) with its L2 penalty taken out. With ``loop=partial_fit`` and l2 > 0 the
  penalty stays in (it is folded into each batch's loss inside the call). Reports use
  the core's train_loss, computed from predictions.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import math
import re
import time
import warnings
from typing import Any

import numpy as np

from mlpbench import Backend, ModelSpec
from mlpbench.backend import EpochEnd, NativeFit
from mlpbench.controlled import initial_weights

# Our activation name -> scikit-learn's.
_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}
_LOOPS = ("batch", "partial_fit")
#: The scikit-learn versions (lowest, first one not) whose private fit internals loop=batch steps through;
#: the bound of pyproject.toml. tests/test_sklearn_mlp.py checks their signatures, and 1.4 to 1.9 were run.
BATCH_LOOP_VERSIONS = ((1, 4), (1, 10))
#: Native mode with patience: scikit-learn's early stopping holds out this part of the training set.
NATIVE_VALIDATION_FRACTION = 0.1


def _installed_version() -> str | None:
    try:
        return importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        return None


def batch_loop_unsupported(version: str | None) -> str | None:
    """Why loop=batch cannot run on scikit-learn `version` (outside `BATCH_LOOP_VERSIONS`), or None."""
    match = re.match(r"(\d+)\.(\d+)", version or "")
    (lo_major, lo_minor), (hi_major, hi_minor) = BATCH_LOOP_VERSIONS
    if match and BATCH_LOOP_VERSIONS[0] <= (int(match[1]), int(match[2])) < BATCH_LOOP_VERSIONS[1]:
        return None
    return (
        f"scikit-learn {version or '(version unknown)'} is outside the versions whose private fit internals "
        f"(_backprop, the optimizers' update_params) loop=batch steps through (>={lo_major}.{lo_minor}, "
        f"<{hi_major}.{hi_minor}); use sklearn[loop=partial_fit], which uses public API only"
    )


def _n_classes(spec: ModelSpec) -> int:
    """The classes a classifier spec predicts: one sigmoid unit stands for two."""
    return 2 if spec.loss == "binary_cross_entropy" else spec.n_outputs


def _check_own_validation_split(spec: ModelSpec, n: int) -> None:
    """Say plainly when scikit-learn's early stopping cannot hold out its validation split from `n` samples.

    It holds out ``ceil(NATIVE_VALIDATION_FRACTION * n)`` samples, stratified for a classifier (so each
    side needs a sample of every class); a regressor's score needs two. scikit-learn's own error names
    only ``test_size``.
    """
    held = math.ceil(NATIVE_VALIDATION_FRACTION * n)  # as train_test_split rounds the test part
    classes = _n_classes(spec)
    need = classes if spec.is_classifier else 2
    if held < need or n - held < need:
        of = f" of {classes} classes" if spec.is_classifier else ""
        raise ValueError(
            f"scikit-learn's early stopping (patience={spec.patience}) holds out "
            f"{NATIVE_VALIDATION_FRACTION:.0%} of the {n} training samples ({held}), too few for its "
            f"validation split{of}: run sklearn's native mode on this task without patience, or in controlled "
            "mode, where the runner's early stopping uses the task's own validation set"
        )


class SklearnMLP(Backend):
    """scikit-learn's MLPClassifier / MLPRegressor, trained on the runner's batches."""

    name = "sklearn"
    requires = ("sklearn",)
    activations = tuple(_ACTIVATIONS)
    losses = ("cross_entropy", "binary_cross_entropy", "mse")
    optimizers = ("sgd", "momentum", "nesterov", "adam")  # scikit-learn has no RMSprop solver
    supports_dropout = False
    supports_batch_norm = False
    # loop: "batch" (fit's inner loop, per runner batch) or "partial_fit" (public API only).
    options = {"loop": "batch"}
    parity_target = 1e-6
    parity_notes = {
        "adam": "Adam adds epsilon to sqrt(v) before the bias correction: PyTorch's rule with "
        "eps / sqrt(1 - beta2^t) in place of eps (31.6·eps at step 1, tending to eps)",
    }
    parity_mapping = {
        "*": "alpha is scaled by 1/batch size -> alpha = l2·n_batch/c set for each batch size "
        "(the smaller last batch too); its mse gradient is 1/c of the spec's (c = 2/n_outputs) -> lr×c "
        "(Adam: eps/c); exact",
    }
    native_loop = (
        "the estimator's public fit(max_iter=epochs, shuffle=True, random_state=seed), timed as a whole; "
        "scikit-learn's own initialisation"
    )
    native_early_stopping = (
        f"sklearn early_stopping (own {NATIVE_VALIDATION_FRACTION:.0%} validation split of "
        "the training set, its score, n_iter_no_change=patience, tol=min_delta)"
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.config["loop"] not in _LOOPS:
            raise ValueError(f"option loop={self.config['loop']!r}: expected one of {', '.join(_LOOPS)}")

    def skip(self, spec: ModelSpec) -> str | None:
        reason = super().skip(spec)
        if reason is None and spec.batch_norm != "none":
            reason = "sklearn does not support batch_norm (scikit-learn's MLP has no batch normalization)"
        if reason is None and spec.loss == "cross_entropy" and spec.n_outputs == 2:
            reason = (
                "sklearn uses one logistic output unit for 2 classes, not a 2-unit softmax; use binary_cross_entropy"
            )
        return reason

    def prepare(self, threads: int) -> None:
        super().prepare(threads)
        import sklearn

        self.sklearn_version_ = sklearn.__version__  # what skip_mode checks loop=batch against

    def skip_mode(self, spec: ModelSpec, mode: str) -> str | None:
        reason = super().skip_mode(spec, mode)
        if reason is None and mode == "controlled" and self.config["loop"] == "batch":
            reason = batch_loop_unsupported(getattr(self, "sklearn_version_", None) or _installed_version())
        return reason

    def _params(self, spec: ModelSpec, seed: int) -> dict[str, Any]:
        """The estimator's parameters for `spec` (for the controlled loops: no shuffling, one epoch a call)."""
        self.spec_ = spec
        self.dtype_ = np.dtype(spec.dtype)
        # c: the spec's gradient over scikit-learn's (2 / n_outputs for mse, 1 otherwise).
        self.scale_ = 2.0 / spec.n_outputs if spec.loss == "mse" else 1.0
        params: dict[str, Any] = dict(
            hidden_layer_sizes=spec.hidden,
            activation=_ACTIVATIONS[spec.activation],
            alpha=0.0,
            batch_size=spec.batch_size,
            learning_rate="constant",
            shuffle=False,
            random_state=seed,
            max_iter=1,
            tol=0.0,
            n_iter_no_change=np.inf,
            early_stopping=False,
        )
        if spec.optimizer == "adam":
            params.update(
                solver="adam",
                learning_rate_init=spec.lr,
                beta_1=spec.beta1,
                beta_2=spec.beta2,
                epsilon=spec.eps / self.scale_,
            )
        else:
            params.update(
                solver="sgd",
                learning_rate_init=spec.lr * self.scale_,
                momentum=0.0 if spec.optimizer == "sgd" else spec.momentum,
                nesterovs_momentum=spec.optimizer == "nesterov",
            )
        return params

    # ------------------------------------------------------------------ build
    def build(self, spec: ModelSpec, weights: list[tuple[np.ndarray, np.ndarray]] | None, seed: int) -> None:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        if weights is None:
            weights = initial_weights(spec, seed)
        params = self._params(spec, seed)
        # The initialising call, on a dummy batch (its step is undone below).
        if spec.is_classifier:
            m = MLPClassifier(**params)
            n_classes = _n_classes(spec)
            classes = np.arange(n_classes)
            m.set_params(batch_size=n_classes)
            m.partial_fit(np.zeros((n_classes, spec.n_inputs), dtype=self.dtype_), classes, classes=classes)
        else:
            m = MLPRegressor(**params)
            m.set_params(batch_size=1)
            m.partial_fit(np.zeros((1, spec.n_inputs), dtype=self.dtype_), self._sk_targets(np.zeros((1, 1))))
        m.coefs_ = [np.array(W, dtype=self.dtype_) for W, _ in weights]
        m.intercepts_ = [np.array(b, dtype=self.dtype_).reshape(-1) for _, b in weights]
        del m._optimizer  # the next step creates a fresh one, with zero momentum / moments
        m.n_iter_, m.t_, m.loss_curve_, m.best_loss_ = 0, 0, [], np.inf
        self.model_ = m
        self._targets: tuple[np.ndarray, np.ndarray] | None = None
        if self.config["loop"] == "batch":
            self._start_batch_loop()

    def _start_batch_loop(self) -> None:
        """The state scikit-learn's fit loop keeps: its optimizer and the backprop buffers."""
        m = self.model_
        try:
            from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

            backprop_args = set(inspect.signature(m._backprop).parameters)
        except (ImportError, AttributeError) as exc:
            raise RuntimeError(
                f"this scikit-learn lacks the internals loop=batch uses ({exc}); use sklearn[loop=partial_fit]"
            ) from exc
        needed = {"X", "y", "activations", "deltas", "coef_grads", "intercept_grads"}
        if not needed <= backprop_args:
            raise RuntimeError(
                f"this scikit-learn's MLP _backprop takes {sorted(backprop_args)}, not "
                f"{sorted(needed)}; use sklearn[loop=partial_fit]"
            )
        self._weighted = "sample_weight" in backprop_args
        self.params_ = m.coefs_ + m.intercepts_  # the arrays themselves: updates land in coefs_ / intercepts_
        if m.solver == "adam":
            m._optimizer = AdamOptimizer(self.params_, m.learning_rate_init, m.beta_1, m.beta_2, m.epsilon)
        else:
            m._optimizer = SGDOptimizer(
                self.params_, m.learning_rate_init, m.learning_rate, m.momentum, m.nesterovs_momentum, m.power_t
            )
        sizes = self.spec_.layer_sizes
        self._activations: list[Any] = [None] * len(sizes)
        self._deltas: list[Any] = [None] * (len(sizes) - 1)
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        self._coef_grads = [np.empty((a, b), dtype=self.dtype_) for a, b in pairs]
        self._intercept_grads = [np.empty(b, dtype=self.dtype_) for b in sizes[1:]]

    def _sk_targets(self, y: np.ndarray) -> np.ndarray:
        """y as partial_fit takes it: labels, or a 1-D vector for a single regression target."""
        if self.spec_.is_classifier:
            return np.asarray(y).reshape(-1)
        y = np.asarray(y, dtype=self.dtype_).reshape(len(y), -1)
        return y[:, 0] if y.shape[1] == 1 else y  # a (n, 1) column makes scikit-learn warn

    # -------------------------------------------------------------- training
    def train_epoch(self, X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> float:
        X = np.asarray(X, dtype=self.dtype_)
        if self.config["loop"] == "batch":
            total, count = self._epoch_batch(X, y, batches)
        else:
            total, count = self._epoch_partial_fit(X, y, batches)
        loss = total / max(count, 1)
        return loss * 2.0 if self.spec_.loss == "mse" else loss  # scikit-learn's squared loss is 1/2·mse

    def _epoch_batch(self, X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> tuple[float, int]:
        m, l2 = self.model_, self.spec_.l2
        Y = self._fit_targets(y)
        extra = {"sample_weight": None} if self._weighted else {}
        total, count = 0.0, 0
        for idx in batches:
            m.alpha = l2 * len(idx) / self.scale_
            # scikit-learn's batch loss includes alpha/2·ΣW²/n_batch = l2/(2c)·ΣW²: taken out again below.
            penalty = 0.5 * l2 / self.scale_ * sum(float(np.vdot(W, W)) for W in m.coefs_) if l2 else 0.0
            xb = X[idx]
            self._activations[0] = xb
            loss, self._coef_grads, self._intercept_grads = m._backprop(
                X=xb,
                y=Y[idx],
                activations=self._activations,
                deltas=self._deltas,
                coef_grads=self._coef_grads,
                intercept_grads=self._intercept_grads,
                **extra,
            )
            m._optimizer.update_params(self.params_, self._coef_grads + self._intercept_grads)
            total += (loss - penalty) * len(idx)
            count += len(idx)
        return total, count

    def _fit_targets(self, y: np.ndarray) -> np.ndarray:
        """y as scikit-learn's fit loop sees it (one-hot booleans, or 2-D values), converted once per array."""
        if self._targets is not None and self._targets[0] is y:
            return self._targets[1]
        if self.spec_.is_classifier:
            t = self.model_._label_binarizer.transform(np.asarray(y).reshape(-1)).astype(bool)
        else:
            t = np.asarray(y, dtype=self.dtype_).reshape(len(y), -1)
        self._targets = (y, t)
        return t

    def _epoch_partial_fit(self, X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> tuple[float, int]:
        y = self._sk_targets(y)
        total, count = 0.0, 0
        i = 0
        while i < len(batches):
            # A run of consecutive batches of one size is one call: partial_fit slices it in order.
            size = len(batches[i])
            j = i
            while j < len(batches) and len(batches[j]) == size:
                j += 1
            idx = np.concatenate(batches[i:j]) if j - i > 1 else batches[i]
            self.model_.set_params(batch_size=size, alpha=self.spec_.l2 * size / self.scale_)
            self.model_.partial_fit(X[idx], y[idx])
            total += self.model_.loss_ * len(idx)
            count += len(idx)
            i = j
        return total, count

    # ----------------------------------------------------------- native mode
    def fit_native(
        self,
        spec: ModelSpec,
        seed: int,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        epoch_end: EpochEnd,
    ) -> NativeFit:
        """The estimator's public ``fit``, timed as a whole (scikit-learn has no per-epoch hook).

        scikit-learn's own initialisation and shuffling (``random_state=seed``, ``shuffle=True``),
        ``max_iter`` epochs; the hyper-parameters are mapped as in the controlled loops (alpha per
        full batch). With patience, its own early stopping on its own validation split.
        """
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        params = self._params(spec, seed)
        params.update(
            max_iter=spec.epochs,
            shuffle=True,
            tol=0.0,
            n_iter_no_change=spec.epochs + 1,
            alpha=spec.l2 * spec.batch_size / self.scale_,
        )
        if spec.patience:
            params.update(
                early_stopping=True,
                validation_fraction=NATIVE_VALIDATION_FRACTION,
                n_iter_no_change=spec.patience,
                tol=spec.min_delta,
            )
        m = (MLPClassifier if spec.is_classifier else MLPRegressor)(**params)
        X = np.asarray(X, dtype=self.dtype_)
        targets = self._sk_targets(y)
        if spec.patience:
            _check_own_validation_split(spec, len(X))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: the epochs asked for
            t0 = time.perf_counter()
            m.fit(X, targets)
            took = time.perf_counter() - t0
        self.model_ = m
        if spec.is_classifier:
            n_classes = _n_classes(spec)
            if len(m.classes_) != n_classes:
                raise ValueError(
                    f"the training set has {len(m.classes_)} classes, the spec {n_classes}: "
                    "scikit-learn's fit sizes its output from the labels it sees"
                )
        unit = 2.0 if spec.loss == "mse" else 1.0  # scikit-learn's squared loss is 1/2·mse
        fit = NativeFit(
            timing="whole_call",
            train_time_s=took,
            epochs_run=int(m.n_iter_),
            running_losses=[float(v) * unit for v in m.loss_curve_],
        )
        if spec.patience:
            best = int(np.argmax(m.validation_scores_)) + 1  # the first best score: scikit-learn keeps it
            fit.best_epoch, fit.stopped_early, fit.restored_best = best, m.n_iter_ < spec.epochs, best != m.n_iter_
        return fit

    # ------------------------------------------------------------- inference
    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=self.dtype_)
        if self.spec_.is_classifier:
            return self.model_.predict_proba(X)  # two columns [1-p, p] for binary
        return self.model_.predict(X).reshape(len(X), -1)

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(W.copy(), b.copy()) for W, b in zip(self.model_.coefs_, self.model_.intercepts_, strict=True)]

    def __repr__(self) -> str:
        spec = getattr(self, "spec_", None)
        loop = self.config["loop"]
        return f"SklearnMLP({spec!r}, loop={loop!r})" if spec else f"SklearnMLP(loop={loop!r}, unbuilt)"
