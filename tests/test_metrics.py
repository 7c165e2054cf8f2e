"""The core's metrics agree with scikit-learn's on random data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlpbench import metrics


@pytest.fixture
def classification():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=200)
    y = rng.integers(0, 4, 200)
    return y, proba


def test_classification_metrics_match_scikit_learn(classification) -> None:
    y, proba = classification
    pred = proba.argmax(axis=1)
    assert metrics.accuracy(y, proba) == pytest.approx(skm.accuracy_score(y, pred))
    assert metrics.precision(y, proba) == pytest.approx(skm.precision_score(y, pred, average="macro", zero_division=0))
    assert metrics.recall(y, proba) == pytest.approx(skm.recall_score(y, pred, average="macro", zero_division=0))
    assert metrics.f1(y, proba) == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert metrics.log_loss(y, proba) == pytest.approx(skm.log_loss(y, proba, labels=range(4)))


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_evaluate_gives_each_classification_metric_exactly_as_computed_alone(kind: str) -> None:
    """The per-epoch evaluation computes the labels once; its values are those of the single-metric functions."""
    rng = np.random.default_rng(2)
    k = 2 if kind == "binary" else 5
    proba = rng.dirichlet(np.ones(k), size=60)
    y = rng.integers(0, k - 1, 60)  # one class never occurs: macro averages over present classes
    got = metrics.evaluate(kind, y, proba)
    assert got == {name: metrics.METRICS[name](y, proba) for name in metrics.METRICS_BY_KIND[kind]}
    assert got["f1"] == pytest.approx(skm.f1_score(y, proba.argmax(axis=1), average="macro", zero_division=0))


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal((50, 2))
    pred = y + 0.3 * rng.standard_normal((50, 2))
    assert metrics.mse(y, pred) == pytest.approx(skm.mean_squared_error(y, pred))
    assert metrics.rmse(y, pred) == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert metrics.mae(y, pred) == pytest.approx(skm.mean_absolute_error(y, pred))
    assert metrics.r2(y, pred) == pytest.approx(skm.r2_score(y, pred))


def test_log_loss_stays_finite_for_a_confident_wrong_answer() -> None:
    assert np.isfinite(metrics.log_loss(np.array([0]), np.array([[0.0, 1.0]])))


def test_evaluate_and_target_direction() -> None:
    assert set(metrics.evaluate("regression", np.zeros((3, 1)), np.zeros((3, 1)))) == {"r2", "mse", "rmse", "mae"}
    assert metrics.reached("accuracy", 0.97, 0.95) and not metrics.reached("mse", 0.5, 0.4)
