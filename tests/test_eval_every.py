"""The evaluation interval: long runs are evaluated every k-th epoch, every epoch is still timed."""

from __future__ import annotations

import json

import pytest

from mlpbench import ModelSpec
from mlpbench.cli import main
from mlpbench.spec import parse_field


def _spec(**kw) -> ModelSpec:
    return ModelSpec(n_inputs=2, n_outputs=1, loss="binary_cross_entropy", **kw)


def test_auto_keeps_about_a_hundred_evaluated_epochs_and_every_epoch_with_early_stopping() -> None:
    assert _spec(epochs=100).evaluation_interval == 1
    assert _spec(epochs=101).evaluation_interval == 2
    assert _spec(epochs=200).evaluation_interval == 2
    assert _spec(epochs=1000).evaluation_interval == 10
    assert _spec(epochs=1000, patience=5).evaluation_interval == 1
    assert _spec(epochs=1000, eval_every=1).evaluation_interval == 1
    spec = _spec(epochs=12, eval_every=5)
    assert [e for e in range(1, 13) if spec.evaluates(e)] == [1, 5, 10, 12]  # the first and last always
    assert parse_field("eval_every", "auto") == 0 and parse_field("eval_every", "3") == 3


def test_an_interval_with_early_stopping_is_refused_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "res"
    argv = ["run", "--backends", "numpy", "--tasks", "xor", "--set", "patience=5", "--set", "eval_every=3"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "eval_every = 3: early stopping (patience=5) reads the validation loss after every epoch" in err
    assert "use eval_every=1 or auto" in err
    assert not out.exists()


def _run(out, *settings: str) -> list[dict]:
    argv = ["run", "--backends", "numpy", "--tasks", "xor", "--seeds", "2", "--epochs", "40", "--no-progress"]
    for setting in settings:
        argv += ["--set", setting]
    assert main([*argv, "--out", str(out)]) == 0
    return sorted(map(json.loads, (out / "runs.jsonl").read_text().splitlines()), key=lambda r: r["seed"])


@pytest.fixture(scope="module")
def every_epoch_and_every_seventh(tmp_path_factory):
    base = tmp_path_factory.mktemp("eval_every")
    return _run(base / "every", "eval_every=1"), _run(base / "seventh", "eval_every=7"), base / "seventh"


def test_every_epoch_is_timed_and_only_the_evaluated_ones_have_losses(every_epoch_and_every_seventh) -> None:
    _, sparse, _ = every_epoch_and_every_seventh
    for record in sparse:
        assert record["eval_every_epochs"] == 7
        curve = record["curve"]
        assert [p["epoch"] for p in curve] == list(range(1, 41))
        assert all(p["epoch_time_s"] > 0 and p["running_loss"] is not None for p in curve)
        evaluated = [p["epoch"] for p in curve if p["val_loss"] is not None]
        assert evaluated == [1, 7, 14, 21, 28, 35, 40]
        assert all(p["train_loss"] is None and p["val_accuracy"] is None for p in curve if p["epoch"] not in evaluated)
        assert record["epochs_to_target"] in evaluated
        assert record["train_time_s"] == pytest.approx(sum(p["epoch_time_s"] for p in curve), rel=1e-9)


def test_evaluating_less_trains_the_same_model_and_reads_the_target_no_earlier(every_epoch_and_every_seventh) -> None:
    dense, sparse, _ = every_epoch_and_every_seventh
    for d, s in zip(dense, sparse, strict=True):
        assert s["test_log_loss"] == d["test_log_loss"] and s["final_train_loss"] == d["final_train_loss"]
        assert [p["running_loss"] for p in s["curve"]] == [p["running_loss"] for p in d["curve"]]
        evaluated = {p["epoch"]: p for p in s["curve"] if p["val_loss"] is not None}
        assert all(evaluated[e]["val_loss"] == d["curve"][e - 1]["val_loss"] for e in evaluated)
        # the first evaluated epoch at or after the one where the every-epoch run met the target
        assert s["epochs_to_target"] == min(e for e in evaluated if e >= d["epochs_to_target"])


def test_the_report_says_at_what_resolution_time_to_target_was_read(every_epoch_and_every_seventh) -> None:
    _, _, out = every_epoch_and_every_seventh
    report = (out / "report.md").read_text()
    assert "(read every 7 epochs)" in report
    assert "ModelSpec.eval\\_every" in report  # the column note says how the interval is chosen
