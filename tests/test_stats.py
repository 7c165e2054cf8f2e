"""mlpbench.stats: the one definition of "epoch ms" (steady-state epochs 2..n of every seed, pooled)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mlpbench.stats import EPOCH_MS_LABEL, iqr, median, median_epoch_time_s, steady_epoch_times


def _curves(times_by_job: dict[str, list[float | None]]) -> pd.DataFrame:
    rows = [
        {"id": job, "epoch": i + 1, "epoch_time_s": t}
        for job, times in times_by_job.items()
        for i, t in enumerate(times)
    ]
    return pd.DataFrame(rows)


def test_steady_epochs_leave_out_each_jobs_first_epoch_and_pool_the_rest() -> None:
    curves = _curves({"a": [9.0, 1.0, 2.0], "b": [8.0, 3.0, 4.0, 5.0]})
    assert sorted(steady_epoch_times(curves)) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert median_epoch_time_s(curves) == 3.0  # pooled: not the median of the per-job medians (1.5, 4.0)


def test_a_job_that_ran_one_epoch_contributes_that_epoch() -> None:
    curves = _curves({"long": [9.0, 1.0, 1.0], "short": [4.0]})
    assert sorted(steady_epoch_times(curves)) == [1.0, 1.0, 4.0]


def test_untimed_epochs_are_left_out_and_rows_keep_their_index() -> None:
    curves = _curves({"a": [9.0, None, 2.0]})
    times = steady_epoch_times(curves)
    assert times.tolist() == [2.0] and times.index.tolist() == [2]


def test_no_epoch_means_nan_or_the_fallback() -> None:
    empty = pd.DataFrame(columns=["id", "epoch", "epoch_time_s"])
    assert steady_epoch_times(empty).empty
    assert math.isnan(median_epoch_time_s(empty))
    assert median_epoch_time_s(empty, fallback=pd.Series([0.5, None, 0.1, 0.3])) == pytest.approx(0.3)
    no_times = pd.DataFrame({"id": ["a"], "epoch": [1]})  # curves stored without epoch times
    assert median_epoch_time_s(no_times, fallback=pd.Series([2.0])) == 2.0
    # The fallback is for curves without times only: timed epochs always win.
    assert median_epoch_time_s(_curves({"a": [5.0, 1.0]}), fallback=pd.Series([7.0])) == 1.0


def test_median_and_iqr_ignore_what_is_not_a_number() -> None:
    assert median(pd.Series([1.0, None, "x", 3.0])) == 2.0
    assert math.isnan(median(pd.Series([], dtype=float)))
    assert iqr(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0])) == 2.0
    assert math.isnan(iqr(pd.Series([1.0])))


def test_the_label_names_the_definition() -> None:
    assert EPOCH_MS_LABEL == "epoch ms: median of the steady-state epochs (2..n) of every seed, pooled"
