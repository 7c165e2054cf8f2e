"""The built-in tasks' `scaler` parameter: fitted on the training part only, as the tutorials do."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("task", ["digits", "breast_cancer", "moons", "diabetes", "friedman"])
def test_minmax_maps_the_training_features_to_the_unit_interval(registry, task) -> None:
    split = registry.task(task)(scaler="minmax").load(0)
    assert split.X_train.min() == pytest.approx(0.0) and split.X_train.max() == pytest.approx(1.0)
    # Fitted on train only: the other parts are transformed with the training minimum and maximum.
    raw = registry.task(task)(scaler="none").load(0)
    lo, hi = raw.X_train.min(axis=0), raw.X_train.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    np.testing.assert_allclose(split.X_test, (raw.X_test - lo) / span, atol=1e-12)


def test_standard_is_the_default_and_none_keeps_the_raw_features(registry) -> None:
    default, raw = registry.task("digits")().load(0), registry.task("digits")(scaler="none").load(0)
    assert abs(default.X_train.mean()) < 1e-9
    assert raw.X_train.max() == 16.0  # digits pixels are 0..16
    np.testing.assert_array_equal(default.y_train, raw.y_train)  # same split, only the features differ


def test_an_unknown_scaler_is_refused_before_any_work(tmp_path, capsys) -> None:
    from mlpbench.cli import main

    out = tmp_path / "o"
    assert (
        main(
            [
                "run",
                "--backends",
                "numpy",
                "--tasks",
                "digits",
                "--task-param",
                "digits.scaler=robust",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "task digits: scaler='robust': allowed values are standard, minmax, none" in capsys.readouterr().err
    assert not out.exists()


def test_reference_scores_are_cached_by_data_fingerprint(registry, tmp_path, monkeypatch) -> None:
    from mlpbench.plan import data_fingerprint
    from mlpbench.references import reference_scores

    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path))
    task = registry.task("diabetes")()
    fp = data_fingerprint(task.load(1))
    first = reference_scores(task, 1, fp)
    assert len(list(tmp_path.rglob("*.json"))) == 1
    assert reference_scores(task, 1, fp) == first  # read back, same scores
    assert {r["model"] for r in first} == {"ridge regression", "HistGradientBoosting"}
    assert first[0]["test_r2"] == pytest.approx(reference_scores(task, 1)[0]["test_r2"])  # uncached: recomputed
