"""The runner end to end: a real worker subprocess, results on disk, load_results round trip."""

from __future__ import annotations

import json
import os

import pytest

from mlpbench import load_results
from mlpbench.choices import BackendChoice, expand_seeds, parse_backend_list
from mlpbench.cli import main


@pytest.fixture(scope="module")
def numpy_run(tmp_path_factory):
    """The issue's reference run: numpy on xor, digits, diabetes with 3 seeds, default specs."""
    out = tmp_path_factory.mktemp("run") / "res"
    code = main(
        [
            "run",
            "--backends",
            "numpy",
            "--tasks",
            "xor,digits,diabetes",
            "--seeds",
            "3",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    return code, out


def test_every_job_ok_and_quality_reached(numpy_run) -> None:
    code, out = numpy_run
    assert code == 0
    runs = load_results(out).runs
    assert len(runs) == 9 and set(runs["status"]) == {"ok"}
    med = runs.groupby("task").median(numeric_only=True)
    assert med.loc["xor", "test_accuracy"] == 1.0
    assert (runs[runs.task == "xor"]["test_accuracy"] == 1.0).all()  # 4/4 for every seed
    assert med.loc["digits", "test_accuracy"] >= 0.97
    assert runs[runs.task == "digits"]["test_accuracy"].min() >= 0.96
    assert med.loc["diabetes", "test_r2"] >= 0.40


def test_results_round_trip_with_documented_columns(numpy_run) -> None:
    _, out = numpy_run
    res = load_results(out)
    for col in (
        "backend",
        "task",
        "seed",
        "status",
        "error",
        "test_accuracy",
        "test_f1",
        "test_log_loss",
        "test_r2",
        "train_time_s",
        "epoch_time_s",
        "first_epoch_s",
        "time_to_target_s",
        "predict_time_s",
        "peak_rss_mb",
        "threads",
    ):
        assert col in res.runs.columns, col
    for col in ("backend", "task", "seed", "epoch", "train_loss", "val_loss", "val_accuracy", "val_r2", "elapsed_s"):
        assert col in res.curves.columns, col
    digits = res.runs[res.runs.task == "digits"].iloc[0]
    assert digits["threads"] == 1 and digits["peak_rss_mb"] > 10 and digits["predict_time_s"] > 0
    curve = res.curves[(res.curves.task == "digits") & (res.curves.seed == digits["seed"])]
    # the run's times are its epochs' own: the total is their sum, "epoch" the median of epochs 2..n
    assert digits["train_time_s"] == pytest.approx(curve["epoch_time_s"].sum(), rel=1e-9)
    assert digits["epoch_time_s"] == pytest.approx(curve["epoch_time_s"].iloc[1:].median(), rel=1e-9)
    assert digits["epoch_time_s"] > 0
    assert list(curve["epoch"]) == list(range(1, 41))
    assert curve["train_loss"].iloc[-1] < curve["train_loss"].iloc[0]  # it learned
    assert curve["elapsed_s"].is_monotonic_increasing
    # time to target is the elapsed training time at the first epoch meeting the target
    first = curve[curve["val_accuracy"] >= 0.95].iloc[0]
    assert digits["time_to_target_s"] == pytest.approx(first["elapsed_s"])
    assert res.env["threads"] == 1 and res.env["matmul_gflops"] > 0 and "numpy" in res.env["versions"]
    assert res.config["tasks"] == ["xor", "digits", "diabetes"]
    # CSV exports hold the same rows
    assert (out / "runs.csv").read_text().count("\n") == 10


def test_records_are_plain_json_lines(numpy_run) -> None:
    _, out = numpy_run
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 9
    assert all(json.loads(line)["status"] == "ok" for line in lines)


def test_backend_list_and_seeds_parsing() -> None:
    assert parse_backend_list("numpy, keras[engine=torch,jit=true],torch") == [
        BackendChoice("numpy"),
        BackendChoice("keras", (("engine", "torch"), ("jit", "true"))),
        BackendChoice("torch"),
    ]
    assert BackendChoice("keras", (("engine", "torch"),)).label == "keras[engine=torch]"
    assert expand_seeds("3") == [0, 1, 2] and expand_seeds("4,9") == [4, 9]
    with pytest.raises(ValueError, match="expected a count"):
        expand_seeds("three")


def test_list_shows_backends_and_tasks(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "available" in out and "built-in" in out
    for task in ("xor", "digits", "diabetes", "friedman", "breast_cancer", "moons", "california"):
        assert task in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backends", "nope"], "unknown backend 'nope'; valid backends: "),
        (["--tasks", "mnist"], "unknown task 'mnist'; valid tasks: "),
        (["--set", "lr=-1"], "ModelSpec.lr = -1.0: must be a number in (0, inf)"),
        (["--set", "activation=swish"], "allowed values are sigmoid, tanh, relu, leaky_relu, elu"),
    ],
)
def test_bad_names_and_values_stop_before_any_work(tmp_path, capsys, argv, message) -> None:
    out = tmp_path / "res"
    code = main(["run", "--backends", "numpy", "--tasks", "xor", "--out", str(out), *argv])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing was started


COUNTED_TASK = '''
import os

from mlpbench import Split
from mlpbench.tasks.toy import XOR


class CountedXOR(XOR):
    """xor that notes which process loaded it, each time it is loaded."""

    name = "counted_xor"
    references = False  # the reference models would load it once more

    def load(self, seed):
        with open(os.environ["COUNTED_LOADS"], "a") as f:
            f.write(f"{os.getpid()} {seed}\\n")
        return super().load(seed)
'''


def test_a_run_loads_each_split_once_and_its_workers_never(tmp_path, monkeypatch) -> None:
    plugin, loads = tmp_path / "counted.py", tmp_path / "loads.txt"
    plugin.write_text(COUNTED_TASK)
    monkeypatch.setenv("COUNTED_LOADS", str(loads))
    argv = ["run", "--plugin", str(plugin), "--backends", "numpy,sklearn", "--tasks", "counted_xor"]
    code = main([*argv, "--seeds", "2", "--epochs", "2", "--out", str(tmp_path / "res"), "--no-progress"])
    assert code == 0
    # the plan loads each seed's split to fingerprint it; the workers of both backends read that copy
    assert sorted(loads.read_text().splitlines()) == [f"{os.getpid()} 0", f"{os.getpid()} 1"]
    assert len(load_results(tmp_path / "res").runs) == 4
