"""mlpbench.stats: "epoch ms", bootstrap intervals, two-sample tests and performance profiles, on known data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlpbench.stats import (
    ALPHA,
    EPOCH_MS_LABEL,
    Interval,
    compare_samples,
    epoch_time_interval,
    iqr,
    median,
    median_epoch_time_s,
    median_interval,
    min_mannwhitney_p,
    overlap,
    performance_ratios,
    profile,
    steady_epoch_times,
)


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


# ---------------------------------------------------------------------------- intervals and tests
def test_the_interval_of_a_ratio_covers_the_true_ratio_at_about_the_stated_rate() -> None:
    """200 simulated pairs of lognormal samples with B = 1.5 x A in distribution: ~95% of the intervals hold 1.5."""
    rng = np.random.default_rng(2026)
    covered, slower = 0, 0
    for _ in range(200):
        a = rng.lognormal(0.0, 0.3, 25)
        b = 1.5 * rng.lognormal(0.0, 0.3, 25)
        change = compare_samples(a, b)
        covered += change.low <= 1.5 <= change.high
        slower += change.direction == 1
    # Binomial(200, 0.95) has a standard deviation of 0.015: this band is about three of them each way.
    assert 0.90 <= covered / 200 <= 0.99
    assert slower >= 180  # the power to see a 50% slowdown in 25 epochs with 30% noise at α = 0.01 (~94%)


def test_identical_samples_are_no_significant_change() -> None:
    a = np.random.default_rng(0).lognormal(0.0, 0.2, 30)
    change = compare_samples(a, a.copy())
    assert change.direction == 0 and change.p_value == 1.0 and change.estimate == 1.0
    assert change.low <= 1.0 <= change.high
    few = compare_samples([0.9, 0.95, 0.97], [0.9, 0.95, 0.97], "difference")  # too few for a test, but equal
    assert few.direction == 0 and few.p_value == 1.0 and few.estimate == 0.0


def test_too_few_values_say_that_no_test_is_possible() -> None:
    assert min_mannwhitney_p(3, 3) == pytest.approx(0.1)
    assert min_mannwhitney_p(5, 5) < ALPHA < min_mannwhitney_p(4, 4)
    change = compare_samples([1.0, 1.1, 1.2], [2.0, 2.1, 2.2])
    assert not change.tested and change.direction == 0 and math.isnan(change.low)
    assert "no test possible" in change.note and "0.1" in change.note
    assert change.estimate == pytest.approx(2.1 / 1.1)


def test_a_clear_difference_is_significant_in_the_right_direction() -> None:
    rng = np.random.default_rng(1)
    a = rng.lognormal(0.0, 0.1, 20)
    assert compare_samples(a, 0.5 * rng.lognormal(0.0, 0.1, 20)).direction == -1
    worse = compare_samples(rng.normal(0.95, 0.005, 10), rng.normal(0.90, 0.005, 10), "difference")
    assert worse.direction == -1 and worse.high < 0 and worse.p_value < ALPHA


def test_median_interval_is_reproducible_and_needs_three_values() -> None:
    values = np.random.default_rng(3).lognormal(0.0, 0.5, 40)
    first, again = median_interval(values), median_interval(values)
    assert (first.low, first.high) == (again.low, again.high)  # a fixed random state: reports render alike
    assert first.low <= first.median <= first.high and first.n == 40
    assert first.cv == pytest.approx(np.std(values, ddof=1) / np.mean(values))
    two = median_interval([1.0, 2.0])
    assert two.median == 1.5 and not two.has_ci
    assert median_interval([5.0, 5.0, 5.0]).low == 5.0  # no spread: the point itself
    curves = _curves({"a": [9.0, 1.0, 1.1, 1.2], "b": [9.0, 1.0, 1.3, 0.9]})
    epoch = epoch_time_interval(curves)
    assert epoch.median == pytest.approx(median_epoch_time_s(curves)) and epoch.n == 6 and epoch.has_ci


def test_two_intervals_overlap_only_when_both_were_computed() -> None:
    assert overlap(Interval(1.0, 0.9, 1.1, 5), Interval(1.2, 1.05, 1.3, 5))
    assert not overlap(Interval(1.0, 0.9, 1.1, 5), Interval(1.5, 1.3, 1.7, 5))
    assert not overlap(Interval(1.0), Interval(1.0))


# ---------------------------------------------------------------------------- performance profiles
def test_performance_ratios_count_failures_as_infinite() -> None:
    costs = pd.DataFrame(
        {"numpy": [1.0, 4.0, math.inf, None], "torch": [2.0, 2.0, 3.0, None]}, index=["xor", "digits", "moons", "x"]
    )
    ratios = performance_ratios(costs)
    assert ratios.loc["xor"].tolist() == [1.0, 2.0]
    assert ratios.loc["digits"].tolist() == [2.0, 1.0]
    assert ratios.loc["moons", "numpy"] == math.inf and ratios.loc["moons", "torch"] == 1.0  # never reached
    assert ratios.loc["x"].tolist() == [math.inf, math.inf]  # no backend finished: a failure for all
    rho = profile(ratios, [1.0, 2.0, 10.0])
    assert rho["numpy"].tolist() == [0.25, 0.5, 0.5]
    assert rho["torch"].tolist() == [0.5, 0.75, 0.75]


def test_the_noise_band_withholds_a_significant_but_small_ratio() -> None:
    """A steady 5% shift is significant by p; it counts only when the band is narrower than it."""
    rng = np.random.default_rng(3)
    a = rng.lognormal(0.0, 0.01, 400)
    b = rng.lognormal(0.0, 0.01, 400) * 1.05
    bare = compare_samples(a, b, "ratio", threshold=0.0)
    assert bare.p_value < 1e-10 and bare.direction == 1 and 1.04 < bare.low < bare.high < 1.06
    assert compare_samples(a, b, "ratio", threshold=0.10).direction == 0
    assert compare_samples(a, b, "ratio", threshold=0.02).direction == 1
    assert compare_samples(b, a, "ratio", threshold=0.02).direction == -1
