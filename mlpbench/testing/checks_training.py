"""Training parity: from the same weights on the same batches a backend ends where the NumPy reference does."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Backend
from ..controlled import batch_order
from ..spec import ModelSpec
from .checks_weights import check_shapes
from .core import relative_error
from .data import make_data
from .run import KitRun


def check_parity(run: KitRun, c: str, epochs: int = 1, **changes: Any) -> str | None:
    """One epoch (two for stateful optimizers) from the same weights on the same batches matches the reference.

    With l2 the biases start non-zero, so that decaying them too (l2 applies to the
    weight matrices only) shows. RMSprop runs with ``eps = 1e-3``, so that where eps is
    added (outside the square root) shows. With batch normalization the predictions
    compared are the running statistics' (evaluation mode).
    """
    spec, note = run.base_spec(**changes)
    if spec.optimizer == "adam":
        spec = spec.replace(lr=0.01)
    if spec.optimizer == "rmsprop":
        spec = spec.replace(lr=0.01, eps=1e-3)
    backend = run.runnable(spec)
    X, y = make_data(spec)
    batches = [batch_order(len(X), spec.batch_size, 0, e) for e in range(epochs)]
    msg = compare_training(run, c, backend, spec, X, y, batches, check_loss=not spec.l2, biases=bool(spec.l2))
    if spec.l2 and not backend.accepts_weights:
        msg = "; ".join(filter(None, [msg, "accepts_weights is False: the biases start where build() puts them"]))
    notes = [n for n in (note, msg) if n]
    return "; ".join(notes) or None


def compare_training(
    run: KitRun,
    c: str,
    backend: Backend,
    spec: ModelSpec,
    X: np.ndarray,
    y: np.ndarray,
    epochs: list[list[np.ndarray]],
    check_loss: bool = True,
    biases: bool = False,
) -> str | None:
    """Train `backend` and the reference on `epochs` (each a list of batches); compare weights, predictions, losses.

    `biases`: start from non-zero biases (see `KitRun.build`).
    """
    weights = run.build(backend, spec, biases=biases)
    ref = run.reference()
    ref.build(spec, [(W.copy(), b.copy()) for W, b in weights], 0)
    X_before, y_before = X.copy(), y.copy()
    rtol = run.tol.for_dtype(spec.dtype)
    note = None
    losses = []
    for batches in epochs:
        loss = backend.train_epoch(X, y, [np.array(i) for i in batches])
        backend.sync()
        losses.append((loss, ref.train_epoch(X, y, batches)))
        if not (np.array_equal(X, X_before) and np.array_equal(y, y_before)):
            raise run.fail(c, "train_epoch() modified its input X or y")
    got, want = backend.get_weights(), ref.get_weights()
    check_shapes(run, c, spec, got)
    # (layer, "W" or "b", difference, the layer's scale, how far training moved the reference's array)
    diffs = []
    for i, ((W, b), (Wr, br), (W0, b0)) in enumerate(zip(got, want, weights, strict=True)):
        scale = max(float(np.max(np.abs(Wr))), float(np.max(np.abs(br), initial=0.0)))
        for what, a, r, a0 in (("W", W, Wr, W0), ("b", b, br, b0)):
            diffs.append((i, what, relative_error(a, r)[0], scale, relative_error(r, a0)[0]))
    for i, what, err, scale, moved in diffs:
        if err > rtol * scale:
            raise run.fail(
                c,
                f"after {len(epochs)} epoch(s) of {spec!r} on the same batches from the same "
                f"weights, layer {i} {what} differs from the NumPy reference by up to {err:.3g} "
                f"(allowed {rtol:g} x {scale:.3g}); training moved the reference's {what} by {moved:.3g}"
                + (_bias_hint(diffs) if spec.l2 else ""),
            )
    p, p_ref = backend.predict(X), ref.predict(X)
    err, scale = relative_error(p, p_ref)
    if err > rtol * max(scale, 1.0):
        raise run.fail(c, f"predictions after training differ from the NumPy reference by up to {err:.3g}")
    # The weights agree, so a loss that does not is the value reported, not the training.
    for e, (loss, ref_loss) in enumerate(losses):
        if loss is None:
            note = "train_epoch() returned no loss"
            continue
        if not check_loss:
            continue
        try:
            value = float(loss)
        except (TypeError, ValueError) as exc:
            what = f"train_epoch() must return the epoch's mean loss as a number, got {loss!r}"
            raise run.fail(c, what) from exc
        if not abs(value - ref_loss) <= rtol * max(abs(ref_loss), 1e-12):
            raise run.fail(
                c,
                f"epoch {e + 1}: train_epoch() returned loss {value:.10g}, the NumPy reference "
                f"{ref_loss:.10g} (relative difference {abs(value - ref_loss) / abs(ref_loss):.3g}, "
                f"allowed {rtol:g}) for {spec!r}; it is the mean over the epoch's samples of the "
                "per-sample loss, each batch's loss taken before its update",
            )
    return note


def _bias_hint(diffs: list[tuple[int, str, float, float, float]]) -> str:
    """Under l2, when a bias differs most: the likely cause (the check starts from non-zero biases)."""
    i, what, err, _, _ = max(diffs, key=lambda d: d[2])
    if what != "b":
        return ""
    return (
        f"; the bias differs most (layer {i} b, by {err:.3g}): l2 decays the weight matrices W only, never "
        "the biases, which start non-zero in this check"
    )


def check_given_batches(run: KitRun) -> str | None:
    """train_epoch() trains on exactly the given batches, in order: not a permutation of its own."""
    c = "given_batches"
    spec, note = run.base_spec()
    backend = run.runnable(spec)
    X, y = make_data(spec)
    idx = np.random.default_rng(3).permutation(len(X))
    # Fewer than half the samples, one batch twice, a last batch of one sample. The sizes keep the
    # runner's shape (equal batches, a smaller last one) so that fit()-based loops can follow them.
    batches = [idx[0:8], idx[0:8], idx[20:28], idx[30:31]]
    compare_training(run, c, backend, spec, X, y, [batches])
    return note
