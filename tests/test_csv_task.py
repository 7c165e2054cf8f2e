"""The csv task: a user's own file, its kind read from the target column, every problem reported before work starts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlpbench.cli import main
from mlpbench.worker import execute
from mlpbench.tasks.csv_task import CsvTask


def _frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": np.arange(n) % 7})


def _write(tmp_path, frame: pd.DataFrame, name: str = "data.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def species(tmp_path):
    """Three string classes that depend on the features (so a network can learn them)."""
    f = _frame(90)
    f["species"] = np.where(f["a"] > 0.5, "virginica", np.where(f["a"] < -0.5, "setosa", "versicolor"))
    return _write(tmp_path, f, "species.csv")


# ---------------------------------------------------------------- kind inference
@pytest.mark.parametrize(
    ("target", "kind", "loss", "n_outputs", "classes"),
    [
        (lambda f: np.where(f["a"] > 0, "yes", "no"), "binary", "binary_cross_entropy", 1, ["no", "yes"]),
        (lambda f: (f["a"] > 0).astype(int) + 2 * (f["b"] > 0), "multiclass", "cross_entropy", 4, [0, 1, 2, 3]),
        (lambda f: f["a"] > 0, "binary", "binary_cross_entropy", 1, [False, True]),
        (lambda f: 3.0 * f["a"] - f["b"], "regression", "mse", 1, []),
        (lambda f: np.arange(len(f)) * 3, "regression", "mse", 1, []),  # integers, too many values for labels
    ],
)
def test_kind_is_inferred_from_the_target(tmp_path, target, kind, loss, n_outputs, classes) -> None:
    f = _frame()
    f["y"] = target(f)
    task = CsvTask(path=str(_write(tmp_path, f)), target="y")
    task.validate()
    assert task.kind == kind and CsvTask.kind == "auto"  # the instance knows, the class does not
    spec = task.spec()
    assert (spec.loss, spec.n_outputs, spec.n_inputs) == (loss, n_outputs, 3)
    assert (spec.hidden, spec.activation, spec.optimizer, spec.lr, spec.batch_size, spec.epochs) == (
        (64,), "relu", "adam", 1e-3, 32, 50)  # fmt: skip
    assert task.classes == classes
    assert task.target_metric == ("r2" if kind == "regression" else "accuracy")


def test_boolean_features_count_as_numbers(tmp_path) -> None:
    f = _frame()
    f["flag"] = f["a"] > 0
    f["y"] = f["b"] * 2
    task = CsvTask(path=str(_write(tmp_path, f)), target="y")
    task.validate()
    assert task.spec().n_inputs == 4


def test_kind_can_be_overridden(tmp_path) -> None:
    f = _frame()
    f["y"] = (f["a"] > 0).astype(int)
    path = str(_write(tmp_path, f))
    task = CsvTask(path=path, target="y", kind="multiclass")
    assert (task.kind, task.spec().loss, task.spec().n_outputs) == ("multiclass", "cross_entropy", 2)
    task = CsvTask(path=path, target="y", kind="regression")
    assert (task.kind, task.spec().loss) == ("regression", "mse")


def test_load_encodes_labels_and_splits_stratified(species) -> None:
    task = CsvTask(path=str(species), target="species")
    split = task.load(seed=3)
    assert len(split.X_train) + len(split.X_val) + len(split.X_test) == 90
    assert split.X_train.shape[1] == 3 and split.y_train.dtype == np.int64
    for y in (split.y_train, split.y_val, split.y_test):
        assert set(np.unique(y)) == {0, 1, 2}  # every class in every part
    assert np.allclose(split.X_train.mean(axis=0), 0, atol=1e-12)  # scaled with the training part
    assert task.classes == ["setosa", "versicolor", "virginica"]


def test_two_instances_have_their_own_kind(tmp_path, species) -> None:
    f = _frame()
    f["y"] = f["a"] * 2.0
    reg = CsvTask(path=str(_write(tmp_path, f)), target="y")
    cls = CsvTask(path=str(species), target="species")
    assert (reg.kind, cls.kind) == ("regression", "multiclass")
    assert reg.metrics != cls.metrics


def test_regression_file_trains_and_is_scored_with_regression_metrics(tmp_path, registry) -> None:
    f = _frame(200)
    f["y"] = 2.0 * f["a"] - f["b"] + 0.1 * f["c"]
    task = CsvTask(path=str(_write(tmp_path, f)), target="y")
    backend = registry.backend("numpy")()
    backend.prepare(1)
    spec = task.spec().replace(epochs=30, lr=1e-2)
    record = execute(backend, task, task.load(0), {"id": "numpy/csv", "seed": 0, "spec": spec.to_dict()})
    assert record["status"] == "ok" and record["target_metric"] == "r2"
    assert record["test_r2"] > 0.9  # a nearly linear target


# ---------------------------------------------------------------- bad input
def _error(**params) -> str:
    task = CsvTask(**params)
    with pytest.raises(ValueError) as exc:
        task.validate()
    return str(exc.value)


def test_no_file_or_no_target(tmp_path) -> None:
    assert _error() == "the csv task needs a file: --csv-path FILE --csv-target COLUMN"
    assert "needs the target column" in _error(path=str(tmp_path / "x.csv"))
    assert CsvTask().unavailable() == "no file given: use --csv-path FILE --csv-target COLUMN"


def test_missing_file_and_directory(tmp_path) -> None:
    assert _error(path=str(tmp_path / "nope.csv"), target="y") == f"csv file {tmp_path / 'nope.csv'}: no such file"
    assert _error(path=str(tmp_path), target="y") == f"csv file {tmp_path}: is a directory"


def test_empty_file(tmp_path) -> None:
    (tmp_path / "empty.csv").write_text("")
    assert "cannot be read as CSV: No columns to parse from file" in _error(path=str(tmp_path / "empty.csv"),
                                                                             target="y")  # fmt: skip


def test_missing_target_column_lists_the_columns(tmp_path) -> None:
    path = _write(tmp_path, _frame())
    assert _error(path=str(path), target="label") == f"csv file {path} has no column 'label'; its columns: a, b, c"


def test_non_numeric_feature_columns_are_named(tmp_path) -> None:
    f = _frame()
    f["city"] = "Paris"
    f["when"] = "2024-01-02"
    f["flag"] = f["a"] > 0  # True/False is numeric enough
    f["y"] = f["a"] * 2
    msg = _error(path=str(_write(tmp_path, f)), target="y")
    assert msg.endswith("feature columns must be numeric; not numeric: city, when (encode or drop them)")


def test_missing_values_are_located(tmp_path) -> None:
    f = _frame()
    f["y"] = f["a"] * 2
    f.loc[[3, 8], "b"] = np.nan
    f.loc[5, "y"] = np.nan
    msg = _error(path=str(_write(tmp_path, f)), target="y")
    assert msg.endswith("has missing values in b (2 rows), y (1 rows); fill or drop them")


def test_single_class(tmp_path) -> None:
    f = _frame()
    f["y"] = "cat"
    msg = _error(path=str(_write(tmp_path, f)), target="y")
    assert msg == "csv target 'y' has a single value ('cat'); a classifier needs at least two classes"


def test_too_few_rows(tmp_path) -> None:
    f = _frame(12)
    f["y"] = f["a"] * 2
    path = _write(tmp_path, f)
    assert _error(path=str(path), target="y") == (
        f"csv file {path} has 12 rows; at least 20 are needed for a 60/20/20 train/validation/test split"
    )


def test_class_with_too_few_rows(tmp_path) -> None:
    f = _frame()
    f["y"] = np.where(np.arange(60) < 3, "rare", "common")
    msg = _error(path=str(_write(tmp_path, f)), target="y")
    assert msg == ("csv target 'y': every class needs at least 5 rows to reach train, validation and test; "
                   "too few: 'rare' (3)")  # fmt: skip


def test_kind_that_does_not_fit_the_target(tmp_path, species) -> None:
    assert "has 3 classes, so it is not binary" in _error(path=str(species), target="species", kind="binary")
    assert "is not numeric, so it cannot be a regression target" in _error(path=str(species), target="species",
                                                                          kind="regression")  # fmt: skip
    assert "expected auto, binary, multiclass or regression" in _error(path=str(species), target="species",
                                                                        kind="ordinal")  # fmt: skip


# ---------------------------------------------------------------- from the command line
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--csv-path", "nope.csv", "--csv-target", "y"], "nope.csv: no such file"),
        (["--csv-target", "y"], "the csv task needs a file: --csv-path FILE --csv-target COLUMN"),
        (["--csv-path", "{species}", "--csv-target", "label"], "has no column 'label'; its columns: a, b, c, species"),
        (["--csv-path", "{species}", "--csv-target", "species", "--csv-kind", "binary"], "not binary"),
    ],
)
def test_command_line_problems_exit_2_before_any_work(tmp_path, capsys, species, extra, message) -> None:
    out = tmp_path / "res"
    extra = [e.format(species=species) for e in extra]
    assert main(["run", "--backends", "numpy", "--tasks", "csv", "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_csv_run_from_the_command_line(tmp_path, monkeypatch, species) -> None:
    """A relative --csv-path is recorded absolute, so the job id and --resume do not depend on the directory."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "res"
    code = main(["run", "--backends", "numpy", "--tasks", "csv", "--csv-path", "species.csv", "--csv-target", "species",
                 "--seeds", "1", "--epochs", "20", "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    record = json.loads((out / "runs.jsonl").read_text().splitlines()[0])
    assert record["status"] == "ok" and record["task"] == "csv"
    assert record["task_params"] == {"path": str(species), "target": "species"}
    assert record["target_metric"] == "accuracy" and 0 <= record["test_accuracy"] <= 1
    assert record["spec"]["loss"] == "cross_entropy" and record["spec"]["n_outputs"] == 3
