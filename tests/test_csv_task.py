"""The csv task: a user's own file, its kind read from the target column, every problem reported before work starts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlpbench.cli import main
from mlpbench.tasks.csv_task import CsvTask
from mlpbench.worker import execute


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
    expected = ((64,), "relu", "adam", 1e-3, 32, 50)
    assert (spec.hidden, spec.activation, spec.optimizer, spec.lr, spec.batch_size, spec.epochs) == expected
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
    assert "cannot be read as CSV: No columns to parse from file" in _error(
        path=str(tmp_path / "empty.csv"), target="y"
    )


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
    assert msg == (
        "csv target 'y': every class needs at least 5 rows to reach train, validation and test; too few: 'rare' (3)"
    )


def test_kind_that_does_not_fit_the_target(tmp_path, species) -> None:
    assert "has 3 classes, so it is not binary" in _error(path=str(species), target="species", kind="binary")
    assert "is not numeric, so it cannot be a regression target" in _error(
        path=str(species), target="species", kind="regression"
    )
    assert "expected auto, binary, multiclass or regression" in _error(
        path=str(species), target="species", kind="ordinal"
    )


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
    flags = "--backends numpy --tasks csv --csv-path species.csv --csv-target species --seeds 1 --epochs 20"
    code = main(["run", *flags.split(), "--out", str(out), "--no-progress"])
    assert code == 0
    record = json.loads((out / "runs.jsonl").read_text().splitlines()[0])
    assert record["status"] == "ok" and record["task"] == "csv"
    assert record["task_params"] == {"path": str(species), "target": "species"}
    assert record["target_metric"] == "accuracy" and 0 <= record["test_accuracy"] <= 1
    assert record["spec"]["loss"] == "cross_entropy" and record["spec"]["n_outputs"] == 3


# ---------------------------------------------------------------- files as users have them
def _labelled(n: int = 60) -> pd.DataFrame:
    """Three numeric features and a learnable text label."""
    f = _frame(n)
    f["label"] = np.where(f["a"] > 0, "yes", "no")
    return f


def _run(tmp_path, path, target: str = "label", *extra: str, out=None) -> int:
    out = out or tmp_path / "res"
    flags = ["--backends", "numpy", "--tasks", "csv", "--csv-path", str(path), "--csv-target", target]
    return main(["run", *flags, "--seeds", "1", "--epochs", "2", "--no-progress", "--out", str(out), *extra])


def _record(out) -> dict:
    return json.loads((out / "runs.jsonl").read_text().splitlines()[0])


def _files(directory) -> dict:
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _same_split(a, b) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in vars(a))


def test_duplicate_column_names_are_refused(tmp_path, capsys) -> None:
    """pandas would read the second 'label' as 'label.1', train on the first and feed the real label in as a feature."""
    f = _labelled()
    path = tmp_path / "dup.csv"
    rows = [f"{i % 3},{r.a},{r.b},{r.c},{int(r.a > 0)}" for i, r in enumerate(f.itertuples())]
    path.write_text("label,a,b,c,label\n" + "\n".join(rows) + "\n")
    assert _run(tmp_path, path) == 2
    assert (
        f"csv file {path} has duplicate column names: 'label' (columns 1 and 5); give each column its own name "
        "in the header"
    ) in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_a_file_changed_to_a_bad_one_leaves_a_previous_run_unchanged(tmp_path, capsys) -> None:
    path = _write(tmp_path, _labelled())
    out = tmp_path / "res"
    assert _run(tmp_path, path) == 0
    before = _files(out)
    text = path.read_text().splitlines()
    path.write_text("\n".join(["a,b,a,label", *text[1:]]) + "\n")  # a header edited by hand
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--no-progress"]) == 2
    assert "has duplicate column names: 'a' (columns 1 and 3)" in capsys.readouterr().err
    assert _files(out) == before


@pytest.mark.parametrize("header", ["", "Unnamed: 0"])
def test_a_saved_pandas_index_is_dropped_with_a_notice(tmp_path, capsys, registry, header) -> None:
    """`to_csv` without index=False writes an unnamed first column 0..n-1; re-saving names it 'Unnamed: 0'."""
    f = _labelled()
    clean = _write(tmp_path, f, "clean.csv")
    path = tmp_path / "indexed.csv"
    f.rename_axis(header or None).to_csv(path)
    assert path.read_text().startswith(f"{header},a,b,c,label\n")
    assert _run(tmp_path, path) == 0
    err = capsys.readouterr().err
    assert (
        f"warning: csv file {path}: its first column has no name and holds 0..59, a saved index (pandas to_csv "
        "without index=False, or row names), so it is not used as a feature; give it a name in the header"
    ) in err
    assert _record(tmp_path / "res")["spec"]["n_inputs"] == 3
    task = registry.task("csv")(path=str(path), target="label")
    assert _same_split(task.load(0), registry.task("csv")(path=str(clean), target="label").load(0))


def test_a_named_or_non_index_first_column_is_a_feature(tmp_path) -> None:
    f = _labelled()
    f.insert(0, "id", np.arange(60))
    assert CsvTask(path=str(_write(tmp_path, f)), target="label").spec().n_inputs == 4  # it has a name
    f = _labelled()
    f.insert(0, "", f["a"] * 3)  # unnamed, but measurements, not an index
    assert CsvTask(path=str(_write(tmp_path, f, "floats.csv")), target="label").spec().n_inputs == 4


def test_a_header_only_file_has_no_data_rows(tmp_path, capsys) -> None:
    path = tmp_path / "header.csv"
    path.write_text("f1,f2,label\n")
    assert _run(tmp_path, path) == 2
    assert (
        f"csv file {path} has a header (f1, f2, label) but no data rows; add one row per sample below it"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize(("sep", "decimal"), [(";", ","), (";", "."), ("\t", "."), ("|", ",")])
def test_the_separator_and_decimal_comma_are_sniffed(tmp_path, capsys, registry, sep, decimal) -> None:
    f = _labelled()
    clean = _write(tmp_path, f, "clean.csv")
    path = tmp_path / "semi.csv"
    f.to_csv(path, sep=sep, decimal=decimal, index=False)
    assert _run(tmp_path, path) == 0
    assert _record(tmp_path / "res")["status"] == "ok"
    task = registry.task("csv")(path=str(path), target="label")
    assert task.spec().n_inputs == 3
    assert _same_split(task.load(0), registry.task("csv")(path=str(clean), target="label").load(0))


def test_a_wrong_separator_says_which_one_the_file_uses(tmp_path, capsys) -> None:
    path = tmp_path / "semi.csv"
    _labelled().to_csv(path, sep=";", decimal=",", index=False)
    assert _run(tmp_path, path, "label", "--task-param", "csv.sep=,") == 2
    assert (
        "has no column 'label'; its columns: a;b;c;label; the file looks semicolon-separated: pass "
        "--task-param csv.sep=; (and csv.decimal=, for numbers like 1,5)"
    ) in capsys.readouterr().err
    assert not (tmp_path / "res").exists()
    assert _run(tmp_path, path, "label", "--task-param", "csv.sep=;", "--task-param", "csv.decimal=.") == 2
    assert "pass --task-param csv.decimal=," in capsys.readouterr().err
    assert "csv sep 'ab': expected auto, tab or one character" in _error(path=str(path), target="label", sep="ab")
    assert "csv decimal ':': expected auto, . or ," in _error(path=str(path), target="label", decimal=":")


def test_missing_value_markers_are_named_with_the_fix(tmp_path, capsys) -> None:
    f = _labelled().astype({"b": object})
    f.loc[[5, 20, 40], "b"] = "?"
    path = _write(tmp_path, f)
    assert _run(tmp_path, path) == 2
    assert (
        f"csv file {path}: column b has non-numeric values '?' (3 rows, first at line 7): if they mark missing "
        "values, pass --task-param csv.na_values=?"
    ) in capsys.readouterr().err
    assert not (tmp_path / "res").exists()
    assert _run(tmp_path, path, "label", "--task-param", "csv.na_values=?") == 2  # now missing: no imputation
    assert f"csv file {path} has missing values in b (3 rows); fill or drop them" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_na_values_decides_what_is_missing(tmp_path, capsys, registry) -> None:
    """pandas' default markers read a class 'NA' as missing; na_values= (empty) leaves only empty cells missing."""
    f = _labelled()
    f["label"] = np.where(f["a"] > 0, "NA", "EU")
    path = _write(tmp_path, f)
    n_na = int((f["label"] == "NA").sum())
    assert _run(tmp_path, path) == 2
    err = capsys.readouterr().err
    assert f"has missing values in label ({n_na} rows, written 'NA'); fill or drop them" in err
    assert "pass --task-param csv.na_values= so that only empty cells are missing" in err
    assert not (tmp_path / "res").exists()
    assert _run(tmp_path, path, "label", "--task-param", "csv.na_values=") == 0
    assert _record(tmp_path / "res")["task_params"]["na_values"] == ""
    for na in ("", "?", "?,-"):  # a list replaces pandas' markers
        task = registry.task("csv")(path=str(path), target="label", na_values=na)
        assert task.classes == ["EU", "NA"] and task.kind == "binary"
        assert set(np.unique(task.load(0).y_train)) == {0, 1}
    f.loc[3, "label"] = np.nan  # an empty cell is missing whatever the markers
    assert "has missing values in label (1 rows); fill or drop them" in _error(
        path=str(_write(tmp_path, f, "gap.csv")), target="label", na_values=""
    )


def test_missing_values_are_refused_from_the_command_line(tmp_path, capsys) -> None:
    f = _labelled()
    f.loc[[3, 8], "b"] = np.nan
    f.loc[5, "label"] = np.nan
    path = _write(tmp_path, f)
    assert _run(tmp_path, path) == 2
    assert f"csv file {path} has missing values in b (2 rows), label (1 rows); fill or drop them" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "res").exists()


def test_a_constant_regression_target_is_refused(tmp_path, capsys) -> None:
    f = _frame()
    f["y"] = 3.5
    path = _write(tmp_path, f)
    assert _run(tmp_path, path, "y") == 2
    assert (
        "csv target 'y' has a single value (3.5) in every row; a regression target must vary: choose another "
        "--csv-target"
    ) in capsys.readouterr().err
    assert not (tmp_path / "res").exists()
    f["y"] = 7  # integers: class labels under kind=auto, so the single-class message; regression when asked
    path = _write(tmp_path, f, "seven.csv")
    assert "a classifier needs at least two classes" in _error(path=str(path), target="y")
    assert "a regression target must vary" in _error(path=str(path), target="y", kind="regression")


def test_column_names_are_stripped(tmp_path, capsys, registry) -> None:
    f = _labelled()
    clean = _write(tmp_path, f, "clean.csv")
    path = tmp_path / "spaces.csv"
    f.rename(columns={"a": " a ", "b": " b", "label": " label "}).to_csv(path, index=False)
    assert path.read_text().startswith(" a , b,c, label \n")
    assert _run(tmp_path, path) == 0
    assert _record(tmp_path / "res")["status"] == "ok"
    task = registry.task("csv")(path=str(path), target="label")
    assert _same_split(task.load(0), registry.task("csv")(path=str(clean), target="label").load(0))
    assert registry.task("csv")(path=str(path), target=" label ").spec().n_inputs == 3
    path.write_text("a, a,label\n" + "1,2,x\n" * 30)  # the same name once stripped
    assert "duplicate column names: 'a' (columns 1 and 2)" in _error(path=str(path), target="label")
