"""A user's own data: a CSV file with a header row, one target column, every other column a numeric feature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlpbench import ModelSpec, Split, Task

from ._split import split_and_scale

#: At most this many distinct integer values make an integer target a class label under kind=auto.
MAX_AUTO_CLASSES = 20
#: Fewer rows leave validation and test sets too small to mean anything (20% each).
MIN_ROWS = 20
#: Each class must reach train, validation and test in a stratified 60/20/20 split.
MIN_PER_CLASS = 5
#: Quality targets for time-to-target: no threshold fits every data set, these are conventions.
TARGETS = {"binary": ("accuracy", 0.9), "multiclass": ("accuracy", 0.9), "regression": ("r2", 0.5)}
LOSS_BY_KIND = {"binary": "binary_cross_entropy", "multiclass": "cross_entropy", "regression": "mse"}


class CsvTask(Task):
    """A CSV file: ``--tasks csv --csv-path FILE --csv-target COLUMN [--csv-kind KIND]``.

    Feature columns must be numbers (True/False count as 1/0). The kind (binary,
    multiclass, regression) is read from the target column unless set: text, booleans
    and integers with at most 20 distinct values are class labels (encoded 0..k-1 in
    sorted order), floats are a regression target. Unlike the built-in tasks, `kind` is
    an attribute of the instance, known once the file is read.
    """

    name = "csv"
    kind = "auto"  # per instance: resolved from the file
    target_metric = "accuracy"
    target = 0.9
    params = {"path": "", "target": "", "kind": "auto"}
    description = "your own CSV file (--csv-path FILE --csv-target COLUMN)"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._data: tuple[np.ndarray, np.ndarray, list[Any]] | None = None
        self._problem: ValueError | None = None
        if self.config["path"] and self.config["target"]:
            try:
                self._read()
            except ValueError as exc:  # reported by validate(), before any work starts
                self._problem = exc

    def unavailable(self) -> str | None:
        if not self.config["path"] or not self.config["target"]:
            return "no file given: use --csv-path FILE --csv-target COLUMN"
        return str(self._problem) if self._problem else None

    def validate(self) -> None:
        """Raise ValueError saying exactly what is wrong with the file or the parameters."""
        if not self.config["path"]:
            raise ValueError("the csv task needs a file: --csv-path FILE --csv-target COLUMN")
        if not self.config["target"]:
            raise ValueError(f"the csv task needs the target column of {self.config['path']}: --csv-target COLUMN")
        if self._problem:
            raise self._problem

    @property
    def classes(self) -> list[Any]:
        """The original class labels in the order of their codes 0..k-1 (empty for regression)."""
        return self._read()[2]

    def load(self, seed: int) -> Split:
        X, y, _ = self._read()
        return split_and_scale(X, y, seed, classification=self.kind != "regression")

    def spec(self) -> ModelSpec:
        X, _, classes = self._read()
        n_outputs = {"binary": 1, "multiclass": len(classes), "regression": 1}[self.kind]
        return ModelSpec(
            n_inputs=X.shape[1], n_outputs=n_outputs, hidden=(64,), activation="relu", loss=LOSS_BY_KIND[self.kind],
            optimizer="adam", lr=1e-3, batch_size=32, epochs=50,
        )  # fmt: skip

    # ------------------------------------------------------------------ reading
    def _read(self) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        if self._data is None:
            self._data = self._parse()
        return self._data

    def _parse(self) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        path, column, kind = Path(self.config["path"]), self.config["target"], self.config["kind"]
        if kind not in ("auto", *LOSS_BY_KIND):
            raise ValueError(f"csv kind {kind!r}: expected auto, binary, multiclass or regression")
        if not path.is_file():
            raise ValueError(f"csv file {path}: {'is a directory' if path.is_dir() else 'no such file'}")
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
            raise ValueError(f"csv file {path} cannot be read as CSV: {exc}") from None
        if column not in frame.columns:
            columns = ", ".join(map(str, frame.columns))
            raise ValueError(f"csv file {path} has no column {column!r}; its columns: {columns}")
        features = frame.drop(columns=[column])
        if features.shape[1] == 0:
            raise ValueError(f"csv file {path} has no feature column besides the target {column!r}")
        text = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
        if text:
            raise ValueError(f"csv file {path}: feature columns must be numeric; not numeric: {', '.join(text)} "
                             "(encode or drop them)")  # fmt: skip
        missing = frame.isna().sum()
        missing = missing[missing > 0]
        if len(missing):
            where = ", ".join(f"{c} ({n} rows)" for c, n in missing.items())
            raise ValueError(f"csv file {path} has missing values in {where}; fill or drop them")
        if len(frame) < MIN_ROWS:
            raise ValueError(f"csv file {path} has {len(frame)} rows; at least {MIN_ROWS} are needed "
                             "for a 60/20/20 train/validation/test split")  # fmt: skip
        X = features.to_numpy(dtype=np.float64)
        if not np.isfinite(X).all():
            bad = [str(c) for c in features.columns if not np.isfinite(features[c].to_numpy(dtype=np.float64)).all()]
            raise ValueError(f"csv file {path} has infinite values in {', '.join(bad)}")
        target = frame[column]
        kind = self._kind(target) if kind == "auto" else kind
        if kind == "regression":
            if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
                raise ValueError(f"csv target {column!r} is not numeric, so it cannot be a regression target "
                                 "(use --csv-kind binary or multiclass)")  # fmt: skip
            y = target.to_numpy(dtype=np.float64)
            if not np.isfinite(y).all():
                raise ValueError(f"csv target {column!r} has infinite values")
            classes: list[Any] = []
        else:
            codes, uniques = pd.factorize(target, sort=True)
            classes = [v.item() if hasattr(v, "item") else v for v in uniques]
            if len(classes) < 2:
                raise ValueError(f"csv target {column!r} has a single value ({classes[0]!r}); "
                                 "a classifier needs at least two classes")  # fmt: skip
            if kind == "binary" and len(classes) != 2:
                raise ValueError(f"csv target {column!r} has {len(classes)} classes, so it is not binary "
                                 "(use --csv-kind multiclass)")  # fmt: skip
            counts = np.bincount(codes, minlength=len(classes))
            rare = [f"{classes[i]!r} ({counts[i]})" for i in np.flatnonzero(counts < MIN_PER_CLASS)]
            if rare:
                raise ValueError(f"csv target {column!r}: every class needs at least {MIN_PER_CLASS} rows to reach "
                                 f"train, validation and test; too few: {', '.join(rare[:10])}"
                                 + (f" and {len(rare) - 10} more" if len(rare) > 10 else ""))  # fmt: skip
            y = codes.astype(np.int64)
        self.kind = kind
        self.target_metric, self.target = TARGETS[kind]
        return X, y, classes

    @staticmethod
    def _kind(target: pd.Series) -> str:
        """binary / multiclass for text, booleans and integers with few values; regression for floats."""
        n = target.nunique()
        integer = pd.api.types.is_integer_dtype(target) and not pd.api.types.is_bool_dtype(target)
        if pd.api.types.is_float_dtype(target) or (integer and n > MAX_AUTO_CLASSES):
            return "regression"
        return "binary" if n <= 2 else "multiclass"
