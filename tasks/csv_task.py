"""A user's own data: a CSV file with a header row, one target column, every other column a numeric feature."""

from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlpbench import ModelSpec, Split

from ._split import ScaledTask, split_and_scale

#: At most this many distinct integer values make an integer target a class label under kind=auto.
MAX_AUTO_CLASSES = 20
#: Fewer rows leave validation and test sets too small to mean anything (20% each).
MIN_ROWS = 20
#: Each class must reach train, validation and test in a stratified 60/20/20 split.
MIN_PER_CLASS = 5
#: Quality targets for time-to-target: no threshold fits every data set, these are conventions.
TARGETS = {"binary": ("accuracy", 0.9), "multiclass": ("accuracy", 0.9), "regression": ("r2", 0.5)}
LOSS_BY_KIND = {"binary": "binary_cross_entropy", "multiclass": "cross_entropy", "regression": "mse"}
#: Separators tried by sep=auto, in this order of preference when they split the file equally well.
SEPARATORS = (",", ";", "\t", "|")
SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
#: At most this many distinct non-numeric values in a numeric column are taken for missing-value markers.
MAX_MARKERS = 5
#: Lines read to guess the separator (and the header).
SNIFF_LINES = 200
#: An index saved by pandas (``to_csv`` without ``index=False``): the first column has no name.
UNNAMED_FIRST = ("", "Unnamed: 0")
_DECIMAL_COMMA = re.compile(r"[+-]?(\d+,\d*|,\d+)([eE][+-]?\d+)?|[+-]?\d+")
_NOTICES: set[str] = set()  # notices already printed by this process (a task is built several times a run)


class CsvTask(ScaledTask):
    """A CSV file: ``--tasks csv --csv-path FILE --csv-target COLUMN [--csv-kind KIND]``.

    Feature columns must be numbers (True/False count as 1/0). The kind (binary,
    multiclass, regression) is read from the target column unless set: text, booleans
    and integers with at most 20 distinct values are class labels (encoded 0..k-1 in
    sorted order), floats are a regression target. Unlike the built-in tasks, `kind` is
    an attribute of the instance, known once the file is read.

    Reading follows pandas' ``read_csv``, with these rules (task parameters via
    ``--task-param csv.KEY=VALUE``):

    - ``sep`` (default ``auto``): the separator. ``auto`` tries comma, semicolon, tab and
      pipe and takes the one that splits the header and the first rows into the same number
      of fields (the most fields wins); ``tab`` (or ``\\t``) names the tab.
    - ``decimal`` (default ``auto``): ``.`` or ``,``. ``auto`` is ``,`` when the separator is
      not a comma and numbers are written with a decimal comma (``1,5``), else ``.``.
    - ``na_values``: the missing-value markers. Unset: pandas' defaults (empty, ``NA``,
      ``N/A``, ``nan``, ``null``, ...). A comma-separated list replaces them (``?`` or
      ``?,-``); empty (``na_values=``) leaves only empty cells missing, so a class ``NA`` is
      a class. Empty cells are always missing.
    - Column names are stripped of surrounding spaces (the target name too). Duplicate names
      are an error (pandas would rename the second ``label`` to ``label.1`` and use it as a
      feature).
    - A first column without a name (empty, or ``Unnamed: 0``) holding distinct whole
      numbers or distinct labels is a saved index (pandas ``to_csv`` without ``index=False``,
      R's row names): it is dropped with a notice on stderr, never used as a feature. Give it
      a name in the header to use it as a feature.
    - Missing values are not imputed: a missing feature or target is an error naming the
      columns and counts (fill or drop those rows). Non-numeric values in a numeric column
      are named with their count and line, and few distinct ones are offered as markers.
    - A target with a single value is refused, for classification and regression alike.
    """

    name = "csv"
    kind = "auto"  # per instance: resolved from the file
    target_metric = "accuracy"
    target = 0.9
    params = {
        **ScaledTask.params,
        "path": "",
        "target": "",
        "kind": "auto",
        "sep": "auto",
        "decimal": "auto",
        "na_values": None,
    }
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
        super().validate()
        if self._problem:
            raise self._problem

    @property
    def classes(self) -> list[Any]:
        """The original class labels in the order of their codes 0..k-1 (empty for regression)."""
        return self._read()[2]

    def load(self, seed: int) -> Split:
        X, y, _ = self._read()
        return split_and_scale(X, y, seed, classification=self.kind != "regression", scaler=self.config["scaler"])

    def spec(self) -> ModelSpec:
        X, _, classes = self._read()
        n_outputs = {"binary": 1, "multiclass": len(classes), "regression": 1}[self.kind]
        return ModelSpec(
            n_inputs=X.shape[1],
            n_outputs=n_outputs,
            hidden=(64,),
            activation="relu",
            loss=LOSS_BY_KIND[self.kind],
            optimizer="adam",
            lr=1e-3,
            batch_size=32,
            epochs=50,
        )

    # ------------------------------------------------------------------ reading
    def _read(self) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        if self._data is None:
            self._data = self._parse()
        return self._data

    def _options(self) -> tuple[str | None, str | None, list[str] | None]:
        """sep (None: auto), decimal (None: auto) and the missing-value markers (None: pandas' defaults)."""
        kind, sep, decimal = self.config["kind"], str(self.config["sep"]), str(self.config["decimal"])
        if kind not in ("auto", *LOSS_BY_KIND):
            raise ValueError(f"csv kind {kind!r}: expected auto, binary, multiclass or regression")
        sep = {"tab": "\t", "\\t": "\t"}.get(sep.lower(), sep)
        if sep != "auto" and (len(sep) != 1 or sep in '"\r\n'):
            raise ValueError(f"csv sep {self.config['sep']!r}: expected auto, tab or one character such as ; or |")
        if decimal not in ("auto", ".", ","):
            raise ValueError(f"csv decimal {decimal!r}: expected auto, . or ,")
        if sep != "auto" and sep == decimal:
            raise ValueError(f"csv sep and decimal are both {sep!r}: numbers like 1{sep}5 could not be told apart")
        na = self.config["na_values"]
        markers = None if na is None else [m.strip() for m in str(na).split(",") if m.strip()]
        return (None if sep == "auto" else sep), (None if decimal == "auto" else decimal), markers

    def _parse(self) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        sep, decimal, markers = self._options()
        path, column, kind = Path(self.config["path"]), str(self.config["target"]).strip(), self.config["kind"]
        if not path.is_file():
            raise ValueError(f"csv file {path}: {'is a directory' if path.is_dir() else 'no such file'}")
        try:
            sample = _head(path)
        except (UnicodeDecodeError, OSError) as exc:
            raise ValueError(f"csv file {path} cannot be read as CSV: {exc}") from None
        sep = sep or _sniff(sample)
        header = _header(sample, sep)
        _check_duplicates(path, header)
        na = {} if markers is None else {"keep_default_na": False, "na_values": ["", *markers]}
        frame = self._frame(path, sep, decimal or ".", na)
        if decimal is None and sep != "," and _decimal_comma(frame):
            decimal = ","
            frame = self._frame(path, sep, decimal, na)
        decimal = decimal or "."
        frame.columns = [str(c).strip() for c in frame.columns]
        if len(frame) == 0:
            raise ValueError(
                f"csv file {path} has a header ({', '.join(map(str, frame.columns))}) but no data "
                "rows; add one row per sample below it"
            )
        frame = _drop_saved_index(path, frame, header, column)
        if column not in frame.columns:
            columns = ", ".join(map(str, frame.columns))
            raise ValueError(
                f"csv file {path} has no column {column!r}; its columns: {columns}"
                + _separator_hint(sample, sep, frame)
            )
        features = frame.drop(columns=[column])
        if features.shape[1] == 0:
            raise ValueError(f"csv file {path} has no feature column besides the target {column!r}")
        self._check_numeric(path, frame, column, kind, decimal, markers, sep)
        missing = frame.isna().sum()
        missing = missing[missing > 0]
        if len(missing):
            raise ValueError(self._missing_message(path, frame, missing, sep, decimal, markers))
        if len(frame) < MIN_ROWS:
            raise ValueError(
                f"csv file {path} has {len(frame)} rows; at least {MIN_ROWS} are needed "
                "for a 60/20/20 train/validation/test split"
            )
        X = np.column_stack([_numbers(features[c], decimal).to_numpy(dtype=np.float64) for c in features.columns])
        if not np.isfinite(X).all():
            bad = [str(c) for i, c in enumerate(features.columns) if not np.isfinite(X[:, i]).all()]
            raise ValueError(f"csv file {path} has infinite values in {', '.join(bad)}")
        target = frame[column]
        kind = self._kind(target) if kind == "auto" else kind
        if kind == "regression":
            if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
                raise ValueError(
                    f"csv target {column!r} is not numeric, so it cannot be a regression target "
                    "(use --csv-kind binary or multiclass)"
                )
            y = target.to_numpy(dtype=np.float64)
            if not np.isfinite(y).all():
                raise ValueError(f"csv target {column!r} has infinite values")
            if len(np.unique(y)) < 2:
                raise ValueError(
                    f"csv target {column!r} has a single value ({y[0]:g}) in every row; a regression "
                    "target must vary: choose another --csv-target"
                )
            classes: list[Any] = []
        else:
            codes, uniques = pd.factorize(target, sort=True)
            classes = [v.item() if hasattr(v, "item") else v for v in uniques]
            if len(classes) < 2:
                raise ValueError(
                    f"csv target {column!r} has a single value ({classes[0]!r}); "
                    "a classifier needs at least two classes"
                )
            if kind == "binary" and len(classes) != 2:
                raise ValueError(
                    f"csv target {column!r} has {len(classes)} classes, so it is not binary (use --csv-kind multiclass)"
                )
            counts = np.bincount(codes, minlength=len(classes))
            rare = [f"{classes[i]!r} ({counts[i]})" for i in np.flatnonzero(counts < MIN_PER_CLASS)]
            if rare:
                raise ValueError(
                    f"csv target {column!r}: every class needs at least {MIN_PER_CLASS} rows to reach "
                    f"train, validation and test; too few: {', '.join(rare[:10])}"
                    + (f" and {len(rare) - 10} more" if len(rare) > 10 else "")
                )
            y = codes.astype(np.int64)
        self.kind = kind
        self.target_metric, self.target = TARGETS[kind]
        return X, y, classes

    @staticmethod
    def _frame(path: Path, sep: str, decimal: str, na: dict[str, Any]) -> pd.DataFrame:
        try:
            return pd.read_csv(path, sep=sep, decimal=decimal, **na)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
            raise ValueError(f"csv file {path} cannot be read as CSV: {exc}") from None

    def _check_numeric(
        self, path: Path, frame: pd.DataFrame, column: str, kind: str, decimal: str, markers: list[str] | None, sep: str
    ) -> None:
        """Name non-numeric values: a few distinct ones in a numeric column are probably missing-value markers."""
        checked = [c for c in frame.columns if c != column]
        if kind in ("auto", "regression"):  # numbers with a few odd values: not class labels
            checked.append(column)
        found: dict[str, tuple[np.ndarray, pd.Series]] = {}  # column -> rows and texts of its non-numeric values
        text = []
        for c in checked:
            series = frame[c]
            if pd.api.types.is_numeric_dtype(series):
                continue
            odd_rows = np.flatnonzero((series.notna() & _numbers(series, decimal).isna()).to_numpy())
            if len(odd_rows) == 0:
                continue  # numbers and missing values (True/False with gaps, say): reported as missing
            odd = series.iloc[odd_rows].astype(str)
            numeric = int(series.notna().sum()) - len(odd_rows)
            few = odd.nunique() <= MAX_MARKERS
            if c == column:
                if numeric > len(odd_rows) and few:
                    found[c] = (odd_rows, odd)
            elif numeric and few:
                found[c] = (odd_rows, odd)
            else:
                text.append(str(c))
        parts = []
        if found:
            lines = _data_lines(path, sep)
            clauses, seen = [], []
            for c, (odd_rows, odd) in found.items():
                counts = odd.value_counts(sort=False)
                seen += [v for v in counts.index if v not in seen]
                first = _line(lines, int(odd_rows[0]))
                where = f"first at line {first}" if len(odd) > 1 else f"at line {first}"
                rows = f"{len(odd)} row{'s' if len(odd) > 1 else ''}"
                clauses.append(
                    f"column {c} has non-numeric values {', '.join(map(repr, counts.index))} ({rows}, {where})"
                )
            suggestion = ",".join([*(markers or []), *seen])
            tail = (
                "; if they are class labels, pass --csv-kind multiclass" if column in found and kind == "auto" else ""
            )
            parts.append(
                f"{', '.join(clauses)}: if they mark missing values, pass --task-param csv.na_values="
                f"{suggestion} (rows with missing values must then be filled or dropped: there is no "
                f"imputation){tail}; otherwise correct them"
            )
        if text:
            comma = decimal == "." and _decimal_comma(frame[text])
            hint = "; they look written with a decimal comma (1,5): pass --task-param csv.decimal=," if comma else ""
            parts.append(f"feature columns must be numeric; not numeric: {', '.join(text)} (encode or drop them){hint}")
        if parts:
            raise ValueError(f"csv file {path}: " + "; ".join(parts))

    def _missing_message(
        self, path: Path, frame: pd.DataFrame, missing: pd.Series, sep: str, decimal: str, markers: list[str] | None
    ) -> str:
        """Columns and counts of missing values; with pandas' default markers, the markers that made them."""
        where = []
        written: list[str] = []
        raw = None
        if markers is None:
            try:
                raw = pd.read_csv(path, sep=sep, decimal=decimal, dtype=str, na_filter=False)
            except Exception:  # noqa: BLE001 - only to name the markers; the counts stand without them
                raw = None
            if raw is not None:
                raw.columns = [str(c).strip() for c in raw.columns]
                if len(raw) != len(frame):
                    raw = None
        for c, n in missing.items():
            marks = ""
            if raw is not None and c in raw.columns:
                cells = raw[c].to_numpy(dtype=object)[frame[c].isna().to_numpy()]
                text = [v for v in pd.unique(pd.Series(cells, dtype=object).astype(str).str.strip()) if v]
                if text:
                    marks = f", written {', '.join(map(repr, text[:MAX_MARKERS]))}"
                    written += [v for v in text if v not in written]
            where.append(f"{c} ({n} rows{marks})")
        message = f"csv file {path} has missing values in {', '.join(where)}; fill or drop them"
        if written:
            values = (
                f"{', '.join(map(repr, written[:MAX_MARKERS]))} {'is a value' if len(written) == 1 else 'are values'}"
            )
            message += (
                f" (or, if {values} and not a missing-value marker, pass --task-param csv.na_values= so that only "
                "empty cells are missing)"
            )
        return message

    @staticmethod
    def _kind(target: pd.Series) -> str:
        """binary / multiclass for text, booleans and integers with few values; regression for floats."""
        n = target.nunique()
        integer = pd.api.types.is_integer_dtype(target) and not pd.api.types.is_bool_dtype(target)
        if pd.api.types.is_float_dtype(target) or (integer and n > MAX_AUTO_CLASSES):
            return "regression"
        return "binary" if n <= 2 else "multiclass"


# ---------------------------------------------------------------------- helpers
def _head(path: Path) -> str:
    """The first lines of the file (enough to find the separator and read the header)."""
    lines = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for _ in range(SNIFF_LINES):
            line = f.readline()
            if not line:
                break
            lines.append(line)
    return "".join(lines)


def _records(sample: str, sep: str) -> list[list[str]]:
    """The non-empty records of `sample` split at `sep` (the last one dropped: it may be cut short)."""
    try:
        records = [r for r in csv.reader(io.StringIO(sample), delimiter=sep) if r]
    except csv.Error:
        return []
    return records[:-1] if len(records) > 2 else records


def _sniff(sample: str) -> str:
    """The separator that splits the header and the first rows into the same number (>1) of fields."""
    best, fields = ",", 1
    for sep in SEPARATORS:
        records = _records(sample, sep)
        if not records:
            continue
        n = len(records[0])
        counts = {len(r) for r in records[1:]}
        # every row as wide as the header, or one wider (pandas then takes the first field for the index)
        if n > fields and (not counts or counts == {n} or counts == {n + 1}):
            best, fields = sep, n
    return best


def _header(sample: str, sep: str) -> list[str]:
    records = _records(sample, sep)
    return [name.strip() for name in records[0]] if records else []


def _check_duplicates(path: Path, header: list[str]) -> None:
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(header, 1):
        if name:
            positions.setdefault(name, []).append(i)
    dupes = {name: where for name, where in positions.items() if len(where) > 1}
    if dupes:
        listed = ", ".join(f"{name!r} (columns {_and(where)})" for name, where in dupes.items())
        raise ValueError(
            f"csv file {path} has duplicate column names: {listed}; give each column its own name "
            "in the header (pandas would rename the second to NAME.1 and use it as a feature)"
        )


def _decimal_comma(frame: pd.DataFrame) -> bool:
    """Whether some text column holds only numbers written with a decimal comma (``1,5``)."""
    for c in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[c]):
            continue
        values = frame[c].dropna().astype(str).str.strip()
        if len(values) and values.str.fullmatch(_DECIMAL_COMMA).all() and values.str.contains(",").any():
            return True
    return False


def _numbers(values: pd.Series, decimal: str) -> pd.Series:
    """`values` as floats (True/False as 1/0); NaN where a value is not a number."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(np.float64)
    text = values.astype(str).str.strip()
    flags = text.str.lower().map({"true": 1.0, "false": 0.0})
    if decimal == ",":
        text = text.str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype(np.float64).fillna(flags)


def _drop_saved_index(path: Path, frame: pd.DataFrame, header: list[str], target: str) -> pd.DataFrame:
    """Without the first column when it is a saved index: no name, distinct whole numbers or labels."""
    first = frame.columns[0]
    if not header or header[0] not in UNNAMED_FIRST or first != "Unnamed: 0" or first == target:
        return frame
    values = frame[first]
    integer = pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values)
    labels = pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)
    if not (integer or labels) or values.isna().any() or not values.is_unique or frame.shape[1] < 2:
        return frame
    if integer and (values.to_numpy() == np.arange(values.iloc[0], values.iloc[0] + len(values))).all():
        held = f"{values.iloc[0]}..{values.iloc[-1]}"
    else:
        held = f"{len(values)} distinct {'whole numbers' if integer else 'labels'}"
    _notice(
        f"warning: csv file {path}: its first column has no name and holds {held}, a saved index (pandas "
        "to_csv without index=False, or row names), so it is not used as a feature; give it a name in the "
        "header to use it"
    )
    return frame.drop(columns=[first])


def _separator_hint(sample: str, sep: str, frame: pd.DataFrame) -> str:
    """When the header did not split, the separator it seems to use."""
    if frame.shape[1] != 1:
        return ""
    line = sample.splitlines()[0] if sample else ""
    for other in SEPARATORS:
        if other != sep and other in line:
            spelled = "tab" if other == "\t" else other
            return f"; the file looks {SEPARATOR_NAMES[other]}-separated: pass --task-param csv.sep={spelled}" + (
                " (and csv.decimal=, for numbers like 1,5)" if other == ";" else ""
            )
    return ""


def _data_lines(path: Path, sep: str) -> list[int]:
    """The line number where each data row (after the header) starts, as pandas counts rows."""
    starts = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=sep)
            end = 0
            for record in reader:
                if record:
                    starts.append(end + 1)
                end = reader.line_num
    except (csv.Error, OSError, UnicodeDecodeError):
        pass
    return starts[1:]


def _line(lines: list[int], row: int) -> int:
    return lines[row] if row < len(lines) else row + 2


def _and(items: list[Any]) -> str:
    """``1 and 5``, ``1, 3 and 5``."""
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _notice(message: str) -> None:
    """Print `message` to stderr once per process (the task is built several times a run)."""
    if message not in _NOTICES:
        _NOTICES.add(message)
        print(message, file=sys.stderr)
