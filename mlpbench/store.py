"""The results directory: append-only JSON Lines of job records, environment, configuration, CSV exports.

Records are parsed as JSON data only, never unpickled. Each record is flushed and
fsynced as soon as its job ends, so an interrupted run loses nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .files import StoreWriteError, write_atomic
from .status import FINISHED

RUNS_FILE = "runs.jsonl"
ENV_FILE = "env.json"
CONFIG_FILE = "config.json"
TIMINGS_FILE = "timings.json"  # wall time per phase of the last execution (plan, jobs, reports, ...)


_WARNED: set[str] = set()  # incomplete lines already reported


def _clean(value: Any) -> Any:
    """Non-finite floats become None so every line is standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return _clean(value.item())
    return value


def timestamped_dir(prefix: str = "") -> Path:
    """A new results directory name under results/: ``results/<prefix><YYYYmmdd-HHMMSS>``."""
    return Path("results") / f"{prefix}{_dt.datetime.now():%Y%m%d-%H%M%S}"


class ResultsStore:
    """One results directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.runs_path = self.path / RUNS_FILE

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r})"

    def create(self) -> None:
        """Make the directory; raise a clear error when it cannot be written."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ValueError(f"cannot write to output directory {self.path}: {exc.strerror or exc}") from exc

    def has_results(self) -> bool:
        """Whether the directory already holds job records."""
        return self.runs_path.exists() and self.runs_path.stat().st_size > 0

    def append(self, record: dict[str, Any]) -> None:
        """Add one job record and make it durable before returning.

        A write that fails (a full disk, a file-size limit) leaves the file as it was and raises
        `StoreWriteError`, which says where and how to continue.
        """
        line = json.dumps(_clean(record), separators=(",", ":"))
        with open(self.runs_path, "a+b") as f:
            size = f.seek(0, os.SEEK_END)
            try:
                # A run killed mid-write leaves a last line without its newline: end it, or this
                # record would be glued to it and lost with it.
                if size > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        f.write(b"\n")
                f.write(line.encode("utf-8") + b"\n")
                f.flush()
                os.fsync(f.fileno())
            except OSError as exc:
                try:  # take the partial line back, so the file holds whole records only
                    f.truncate(size)
                except OSError:
                    pass  # records() and repair() skip and move a partial last line
                raise StoreWriteError(self.runs_path, exc) from exc

    def records(self) -> list[dict[str, Any]]:
        """Every complete record; a truncated line (a run killed mid-write) is skipped with a warning."""
        if not self.runs_path.exists():
            return []
        out = []
        with open(self.runs_path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    where = f"{self.runs_path}:{number}"
                    if where not in _WARNED:  # once per line, however often the file is read
                        _WARNED.add(where)
                        warnings.warn(
                            f"{where}: skipping an incomplete record (the run was probably "
                            "killed while writing it); --resume runs that job again",
                            stacklevel=2,
                        )
                    continue
                if isinstance(record, dict):
                    out.append(record)
        return out

    def repair(self) -> int:
        """Move incomplete lines (a run killed while writing) to runs.jsonl.incomplete; return how many.

        Used before resuming, so the file holds only complete records again; nothing is deleted.
        """
        if not self.runs_path.exists():
            return 0
        good, bad = [], []
        for line in self.runs_path.read_bytes().splitlines(keepends=True):
            if not line.strip():
                continue
            try:
                json.loads(line)
                good.append(line if line.endswith(b"\n") else line + b"\n")
            except ValueError:
                bad.append(line if line.endswith(b"\n") else line + b"\n")
        if bad:
            with open(self.runs_path.with_name(RUNS_FILE + ".incomplete"), "ab") as f:
                f.writelines(bad)
                f.flush()
                os.fsync(f.fileno())
            tmp = self.runs_path.with_name(RUNS_FILE + ".tmp")
            with open(tmp, "wb") as f:
                f.writelines(good)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.runs_path)
        return len(bad)

    def finished_ids(self) -> set[str]:
        """Ids of jobs that have a final record."""
        return {r["id"] for r in self.records() if r.get("status") in FINISHED and "id" in r}

    def write_json(self, name: str, data: Any) -> None:
        """Write a whole JSON file atomically (env.json, config.json, ...)."""
        write_atomic(self.path / name, json.dumps(_clean(data), indent=2, sort_keys=True))

    def read_json(self, name: str) -> Any:
        """A JSON file of the directory, or {} when it is absent."""
        p = self.path / name
        return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


@dataclass
class Results:
    """A results directory as pandas tables."""

    runs: pd.DataFrame  # one row per job
    curves: pd.DataFrame  # one row per job and epoch
    env: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)  # runs.jsonl as read, the tables' source

    def __repr__(self) -> str:
        return f"Results({self.path}: {len(self.runs)} jobs, {len(self.curves)} epochs)"


_RUN_COLUMNS = [
    "id",
    "backend",
    "task",
    "seed",
    "status",
    "error",
    "train_time_s",
    "epoch_time_s",
    "first_epoch_s",
    "time_to_target_s",
    "predict_time_s",
    "peak_rss_mb",
]
_CURVE_COLUMNS = ["id", "backend", "task", "seed", "epoch", "train_loss", "val_loss", "elapsed_s"]


def records_to_frames(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split job records into the runs table and the curves table."""
    rows, curve_rows = [], []
    for r in records:
        row = {k: v for k, v in r.items() if k not in ("curve", "weights", "spec", "traceback", "grid", "grid_point")}
        for key, value in (r.get("spec") or {}).items():
            row[f"spec_{key}"] = ",".join(map(str, value)) if isinstance(value, list) else value
        # One column per swept setting, so runs.groupby(["backend", "grid_hidden"]) answers "by width".
        for key, value in (r.get("grid_point") or {}).items():
            row[f"grid_{key}"] = "x".join(map(str, value)) if isinstance(value, list) else value
        for key in ("backend_options", "task_params", "versions"):
            if isinstance(row.get(key), dict):
                row[key] = json.dumps(row[key], sort_keys=True)
        rows.append(row)
        for point in r.get("curve") or []:
            curve_rows.append(
                {"id": r.get("id"), "backend": r.get("backend"), "task": r.get("task"), "seed": r.get("seed"), **point}
            )
    runs = pd.DataFrame(rows)
    for col in _RUN_COLUMNS:
        if col not in runs:
            runs[col] = pd.Series(dtype=object if col in ("id", "backend", "task", "status", "error") else float)
    curves = pd.DataFrame(curve_rows)
    for col in _CURVE_COLUMNS:
        if col not in curves:
            curves[col] = pd.Series(dtype=float)
    return runs, curves


def load_results(path: str | Path) -> Results:
    """Load a results directory written by `run_bench.py run`.

    Returns `Results` with ``.runs`` (one row per job: backend, task, seed, status,
    error, test_<metric>, timings, memory, spec_<field>, one grid_<setting> column per
    swept setting, ...) and ``.curves`` (one row per job and
    epoch: train_loss, val_loss, val_<metric>, elapsed_s, ...).
    """
    store = ResultsStore(path)
    if not store.path.is_dir():
        raise FileNotFoundError(f"{path}: no such results directory")
    if not store.runs_path.exists():
        raise FileNotFoundError(f"{path}: not a results directory (no {RUNS_FILE})")
    records = store.records()
    runs, curves = records_to_frames(records)
    return Results(runs, curves, store.read_json(ENV_FILE), store.read_json(CONFIG_FILE), store.path, records)


def export_csv(store: ResultsStore, results: Results | None = None) -> None:
    """Write runs.csv and curves.csv next to runs.jsonl (tidy tables for spreadsheets and pandas), atomically.

    `results`: the directory as already loaded (`load_results`), so that a large runs.jsonl is parsed once.
    """
    runs, curves = (results.runs, results.curves) if results is not None else records_to_frames(store.records())
    write_atomic(store.path / "runs.csv", runs.to_csv(index=False))
    write_atomic(store.path / "curves.csv", curves.to_csv(index=False))
