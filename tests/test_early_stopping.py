"""Early stopping is the runner's: the same rule for every backend, and the best epoch's weights are what is scored."""

from __future__ import annotations

import json

import pytest

from mlpbench.cli import main
from mlpbench.worker.stopping import EarlyStopping


def test_the_rule_is_keras_early_stopping() -> None:
    stop = EarlyStopping(patience=2, min_delta=0.1)
    assert [stop.update(e, loss) for e, loss in enumerate([1.0, 0.95, 0.85, 0.80, 0.79], 1)] == [
        True,
        False,
        True,
        False,
        False,
    ]
    assert stop.best_epoch == 3 and stop.best_loss == 0.85 and stop.should_stop
    assert not EarlyStopping(patience=0).should_stop and not EarlyStopping(patience=0).active


def _records(out) -> dict[str, dict]:
    return {r["backend"]: r for r in map(json.loads, (out / "runs.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    out = tmp_path_factory.mktemp("es") / "out"
    argv = [
        "run",
        "--backends",
        "numpy,torch",
        "--tasks",
        "diabetes",
        "--seeds",
        "1",
        "--epochs",
        "300",
        "--set",
        "patience=5",
        "--set",
        "dtype=float64",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    return _records(out)


def test_exact_backends_stop_at_the_same_epoch(stopped) -> None:
    numpy, torch = stopped["numpy"], stopped["torch"]
    assert numpy["stopped_early"] is True and torch["stopped_early"] is True
    assert numpy["epochs_run"] < 300 and numpy["epochs_run"] == torch["epochs_run"] == len(numpy["curve"])
    assert numpy["best_epoch"] == torch["best_epoch"] == numpy["epochs_run"] - 5
    losses = [p["val_loss"] for p in numpy["curve"]]
    assert min(losses) == losses[numpy["best_epoch"] - 1]


def test_the_best_epochs_weights_are_restored(stopped, tmp_path) -> None:
    """Scored after restoring = trained for exactly best_epoch epochs without early stopping."""
    best = stopped["numpy"]["best_epoch"]
    out = tmp_path / "plain"
    argv = [
        "run",
        "--backends",
        "numpy",
        "--tasks",
        "diabetes",
        "--seeds",
        "1",
        "--epochs",
        str(best),
        "--set",
        "dtype=float64",
        "--set",
        "patience=0",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    plain = _records(out)["numpy"]
    assert stopped["numpy"]["restored_best"] is True
    assert stopped["numpy"]["test_r2"] == pytest.approx(plain["test_r2"], rel=1e-12)
    assert stopped["torch"]["test_r2"] == pytest.approx(plain["test_r2"], rel=1e-9)
    assert "stopped_early" not in plain  # off by default
