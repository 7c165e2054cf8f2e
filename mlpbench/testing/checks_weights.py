"""Checks of what goes in and comes out: the runner's weights, `get_weights` and `predict`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..controlled import batch_order, initial_weights
from ..spec import ModelSpec
from .core import CheckSkipped, known, relative_error
from .data import make_data
from .run import KitRun


def check_initial_weights(run: KitRun, dtype: str) -> str | None:
    """build() starts from the runner's weights: get_weights() returns them unchanged, as copies."""
    c = f"initial_weights[{dtype}]"
    spec, _ = run.base_spec(dtype=dtype)
    backend = run.runnable(spec)
    if not backend.accepts_weights:
        backend.build(spec, None, 0)
        check_shapes(run, c, spec, backend.get_weights())
        return "accepts_weights is False: only the shapes were checked"
    given = initial_weights(spec, 0)
    backend.build(spec, [(W.copy(), b.copy()) for W, b in given], 0)
    got = backend.get_weights()
    check_shapes(run, c, spec, got)
    for i, ((W, b), (W0, b0)) in enumerate(zip(got, given, strict=True)):
        for what, a, a0 in (("W", W, W0), ("b", b, b0)):
            if not np.array_equal(np.asarray(a, dtype=np.float64), a0.astype(np.float64)):
                err, _ = relative_error(a, a0)
                raise run.fail(
                    c,
                    f"layer {i} {what} from get_weights() right after build() differs from "
                    f"the weights given to build() by up to {err:.3g}; they must be the same values",
                )
    # The arrays handed out must not be the live parameters: training must not change them.
    X, y = make_data(spec)
    backend.train_epoch(X, y, batch_order(len(X), spec.batch_size, 0, 0))
    backend.sync()
    for i, ((W, b), (W0, b0)) in enumerate(zip(got, given, strict=True)):
        if not (
            np.array_equal(np.asarray(W, dtype=np.float64), W0.astype(np.float64))
            and np.array_equal(np.asarray(b, dtype=np.float64), b0.astype(np.float64))
        ):
            raise run.fail(
                c,
                "the arrays get_weights() returned before training changed when the model trained "
                f"(layer {i}); return copies, not views of the live parameters",
            )
    return None


def check_shapes(run: KitRun, c: str, spec: ModelSpec, weights: Any) -> None:
    """`weights` (from get_weights()) is a list of NumPy (W, b) pairs shaped for `spec`."""
    sizes = spec.layer_sizes
    expected = [((a, b), (b,)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    try:
        shapes = [(np.shape(W), np.shape(b)) for W, b in weights]
    except (TypeError, ValueError) as exc:
        got = type(weights).__name__
        raise run.fail(c, f"get_weights() must return a list of (W, b) pairs, got {got}") from exc
    if shapes != expected:
        raise run.fail(
            c,
            f"get_weights() shapes {shapes} for layer sizes {sizes}; expected {expected} "
            "(W shaped (fan_in, fan_out), b shaped (fan_out,))",
        )
    for W, b in weights:
        if not isinstance(W, np.ndarray) or not isinstance(b, np.ndarray):
            raise run.fail(c, f"get_weights() must return NumPy arrays, got {type(W).__name__}, {type(b).__name__}")


def check_predict(run: KitRun, loss: str) -> str | None:
    """predict() shapes, dtype, probabilities; inference is deterministic and leaves the inputs alone."""
    c = f"predict[{loss}]"
    variants = [{}] if loss in ("cross_entropy", "binary_cross_entropy") else [{"n_outputs": 1}, {"n_outputs": 2}]
    dtypes = known(run.cls, "dtypes")
    notes = []
    for dtype in dtypes:
        for extra in variants:
            spec, _ = run.base_spec(loss=loss, dtype=dtype, **extra)
            try:
                backend = run.runnable(spec)
            except CheckSkipped as exc:
                notes.append(str(exc))
                continue
            if run.cls.supports_dropout and backend.skip(spec.replace(dropout=0.5)) is None:
                spec = spec.replace(dropout=0.5)  # predict must not drop units
            run.build(backend, spec)
            X, y = make_data(spec, n=7)
            X_before = X.copy()
            p = backend.predict(X)
            _check_prediction(run, c, spec, p, len(X))
            if not np.array_equal(X, X_before):
                raise run.fail(c, "predict() modified its input X")
            p2 = backend.predict(X)
            if not np.array_equal(p, p2):
                err, _ = relative_error(p2, p)
                raise run.fail(
                    c,
                    f"two predict() calls on the same X differ by up to {err:.3g} ({spec!r}); "
                    "inference must be deterministic (dropout off)",
                )
    if len(notes) == len(dtypes) * len(variants):
        raise CheckSkipped("; ".join(notes))
    return "; ".join(notes) or None


def _check_prediction(run: KitRun, c: str, spec: ModelSpec, p: Any, n: int) -> None:
    if not isinstance(p, np.ndarray):
        raise run.fail(c, f"predict() must return a NumPy array, got {type(p).__name__}")
    width = 2 if spec.loss == "binary_cross_entropy" else spec.n_outputs
    if p.shape != (n, width):
        what = {
            "cross_entropy": "class probabilities (n, n_classes)",
            "binary_cross_entropy": "two columns [1-p, p]",
        }.get(spec.loss, "values (n, n_outputs)")
        raise run.fail(
            c, f"predict() returned shape {p.shape} for {n} samples of {spec!r}; expected {(n, width)}: {what}"
        )
    if p.dtype != np.dtype(spec.dtype):
        raise run.fail(c, f"predict() returned {p.dtype} for a {spec.dtype} spec; return the spec's dtype")
    if not np.all(np.isfinite(p)):
        raise run.fail(c, f"predict() returned non-finite values for {spec!r}")
    if spec.is_classifier:
        atol = 1e-12 if spec.dtype == "float64" else 1e-6
        if p.min() < 0 or p.max() > 1:
            raise run.fail(c, f"probabilities outside [0, 1]: min {p.min():.6g}, max {p.max():.6g}")
        sums = p.sum(axis=1, dtype=np.float64)
        worst = float(np.max(np.abs(sums - 1.0)))
        if worst > 10 * atol * width:
            off = sums[np.argmax(np.abs(sums - 1.0))] - 1.0
            raise run.fail(c, f"probability rows must sum to 1; the worst row sums to 1 {off:+.3g}")
