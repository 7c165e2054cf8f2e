"""The table printed at the end of a run: its "epoch ms" is the report's, labelled the same way."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from mlpbench.report.tables import task_rows
from mlpbench.stats import EPOCH_MS, EPOCH_MS_LABEL
from mlpbench.store import ResultsStore, records_to_frames
from mlpbench.summary import print_summary, summary_frame


def _record(seed: int, times: list[float], job_median: float) -> dict:
    curve = [{"epoch": i + 1, "epoch_time_s": t, "train_loss": 1.0, "val_loss": 1.0} for i, t in enumerate(times)]
    return {
        "id": f"numpy/xor/seed={seed}",
        "backend": "numpy",
        "task": "xor",
        "seed": seed,
        "status": "ok",
        "curve": curve,
        "test_accuracy": 1.0,
        "epoch_time_s": job_median,  # the worker's median of the job's steady epochs
        "first_epoch_s": times[0],
        "peak_rss_mb": 70.0,
    }


# Seed 0: steady epochs 1, 1, 1 (job median 1 s); seed 1: 10 (job median 10 s). The median of the job
# medians would be 5.5 s; pooled, the steady epochs are 1, 1, 1, 10: median 1 s.
FAILED = {"id": "numpy/xor/seed=2", "backend": "numpy", "task": "xor", "seed": 2, "status": "error", "error": "x"}
RECORDS = [_record(0, [50.0, 1.0, 1.0, 1.0], 1.0), _record(1, [50.0, 10.0], 10.0), FAILED]


def test_summary_epoch_ms_is_the_reports() -> None:
    runs, curves = records_to_frames(RECORDS)
    frame = summary_frame(runs, curves)
    (row,) = frame.to_dict("records")
    assert row[EPOCH_MS] == pytest.approx(1000.0)
    (report_row,) = task_rows(runs, curves, ["numpy"])
    assert report_row["epoch_ms"] == pytest.approx(row[EPOCH_MS])


def test_summary_without_curves_falls_back_to_the_jobs_own_epoch_time() -> None:
    runs, _ = records_to_frames(RECORDS)
    (row,) = summary_frame(runs).to_dict("records")
    assert row[EPOCH_MS] == pytest.approx(1000 * 5.5)


def test_printed_table_says_what_epoch_ms_is(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    for r in RECORDS:
        store.append(r)
    out = io.StringIO()
    print_summary(store, Console(file=out, width=200))
    text = out.getvalue()
    assert EPOCH_MS_LABEL in " ".join(text.split())  # the caption, however the console wraps it
    assert "2 ok 1 error" in text and re.search(r"│\s+1000\s+│", text)


def _point_record(seed: int, hidden: str, mode: str, epoch_s: float) -> dict:
    record = _record(seed, [9.0, epoch_s, epoch_s], epoch_s)
    return {**record, "id": f"numpy/xor/{hidden}/{mode}/{seed}", "grid_point": {"hidden": hidden}, "mode": mode}


def test_a_gridded_run_has_one_row_per_grid_point_and_mode() -> None:
    """Points are never pooled: 16 and 256 are their own rows, in the grid's order, and so are the modes."""
    records = [
        _point_record(s, h, m, t)
        for h, t in (("256", 0.004), ("16", 0.001))
        for m in ("controlled", "native")
        for s in (0, 1)
    ]
    runs, curves = records_to_frames(records)
    frame = summary_frame(runs, curves, {"grid": {"hidden": ["16", "256"]}, "modes": ["controlled", "native"]})
    assert list(frame.columns[:4]) == ["task", "hidden", "mode", "backend"]
    assert list(zip(frame["hidden"], frame["mode"], strict=True)) == [
        ("16", "controlled"),
        ("16", "native"),
        ("256", "controlled"),
        ("256", "native"),
    ]
    assert frame[EPOCH_MS].tolist() == pytest.approx([1.0, 1.0, 4.0, 4.0])
    assert set(frame["jobs"]) == {"2 ok"}
    # Without a grid and with one mode, the table is as it always was: task, backend, ...
    plain = summary_frame(*records_to_frames(RECORDS))
    assert list(plain.columns[:3]) == ["task", "backend", "jobs"]
