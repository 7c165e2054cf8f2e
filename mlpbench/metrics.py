"""Metrics and losses as pure functions of labels and predictions (one implementation for all backends)."""

from __future__ import annotations

import numpy as np

# Probabilities are clipped away from 0 so log loss stays finite for a confident wrong answer.
_PROB_FLOOR = 1e-15


def _labels(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba).argmax(axis=1)


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    """Fraction of samples whose most probable class is the true one."""
    return float(np.mean(_labels(proba) == np.asarray(y)))


def _per_class(
    y: np.ndarray, proba: np.ndarray, pred: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, predicted and actual counts of the classes present; `pred`: the labels, if known."""
    y = np.asarray(y)
    n_classes = proba.shape[1]
    pred = _labels(proba) if pred is None else pred
    tp = np.bincount(y[pred == y], minlength=n_classes).astype(float)
    predicted = np.bincount(pred, minlength=n_classes).astype(float)
    actual = np.bincount(y, minlength=n_classes).astype(float)
    # Macro averages run over the classes that occur in y or in the predictions (as scikit-learn does).
    present = (predicted + actual) > 0
    return tp[present], predicted[present], actual[present]


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def _macro(numerator: np.ndarray, denominator: np.ndarray) -> float:
    return float(np.mean(_safe_div(numerator, denominator)))


def precision(y: np.ndarray, proba: np.ndarray) -> float:
    """Macro-averaged precision (a class never predicted counts as 0)."""
    tp, predicted, _ = _per_class(y, proba)
    return _macro(tp, predicted)


def recall(y: np.ndarray, proba: np.ndarray) -> float:
    """Macro-averaged recall."""
    tp, _, actual = _per_class(y, proba)
    return _macro(tp, actual)


def f1(y: np.ndarray, proba: np.ndarray) -> float:
    """Macro-averaged F1: the mean over classes of 2·tp / (predicted + actual)."""
    tp, predicted, actual = _per_class(y, proba)
    return _macro(2 * tp, predicted + actual)


def _classification(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Every classification metric, the labels and class counts computed once (evaluation runs every epoch)."""
    y, pred = np.asarray(y), _labels(proba)
    tp, predicted, actual = _per_class(y, proba, pred)
    return {
        "accuracy": float(np.mean(pred == y)),
        "precision": _macro(tp, predicted),
        "recall": _macro(tp, actual),
        "f1": _macro(2 * tp, predicted + actual),
        "log_loss": log_loss(y, proba),
    }


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true class."""
    p = np.asarray(proba, dtype=np.float64)[np.arange(len(y)), np.asarray(y)]
    return float(-np.mean(np.log(np.clip(p, _PROB_FLOOR, 1.0))))


def _as_2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(len(a), -1)


def mse(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean squared error over samples and outputs (no 1/2 factor)."""
    return float(np.mean((_as_2d(pred) - _as_2d(y)) ** 2))


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    """Square root of `mse`."""
    return float(np.sqrt(mse(y, pred)))


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute error over samples and outputs."""
    return float(np.mean(np.abs(_as_2d(pred) - _as_2d(y))))


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination, averaged uniformly over outputs."""
    y2, p2 = _as_2d(y), _as_2d(pred)
    ss_res = np.sum((y2 - p2) ** 2, axis=0)
    ss_tot = np.sum((y2 - y2.mean(axis=0)) ** 2, axis=0)
    scores = np.where(ss_tot > 0, 1.0 - _safe_div(ss_res, ss_tot), 0.0)
    return float(np.mean(scores))


METRICS = {
    "accuracy": accuracy,
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "log_loss": log_loss,
    "mse": mse,
    "rmse": rmse,
    "mae": mae,
    "r2": r2,
}
HIGHER_IS_BETTER = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "r2": True,
    "log_loss": False,
    "mse": False,
    "rmse": False,
    "mae": False,
}
_CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "log_loss")
METRICS_BY_KIND = {"binary": _CLASSIFICATION, "multiclass": _CLASSIFICATION, "regression": ("r2", "mse", "rmse", "mae")}


def evaluate(kind: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Every metric of a task kind, by name."""
    if METRICS_BY_KIND[kind] == _CLASSIFICATION:
        return _classification(y, pred)
    return {name: METRICS[name](y, pred) for name in METRICS_BY_KIND[kind]}


def reached(metric: str, value: float, target: float) -> bool:
    """Whether `value` meets `target` in the metric's direction."""
    return value >= target if HIGHER_IS_BETTER[metric] else value <= target


def loss(name: str, y: np.ndarray, pred: np.ndarray) -> float:
    """The canonical training loss of `ModelSpec.loss` `name`, from a backend's predictions.

    cross_entropy and binary_cross_entropy take the predicted class probabilities
    (two columns for binary); mse and mae take the predicted values.
    """
    if name in ("cross_entropy", "binary_cross_entropy"):
        return log_loss(y, pred)
    if name == "mse":
        return mse(y, pred)
    if name == "mae":
        return mae(y, pred)
    raise ValueError(f"unknown loss {name!r}")
