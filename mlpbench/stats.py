"""The statistics mlpbench reports, defined once for the end-of-run table, the reports and ``compare``.

Every "epoch ms" mlpbench shows is :func:`median_epoch_time_s` of :func:`steady_epoch_times`: the
steady-state epochs (2..n) of every seed, pooled. The first epoch is left out of it because it carries
one-off costs (graph building, compilation, warm-up) that the reports show on their own.

Uncertainty comes from `scipy.stats` only: bootstrap confidence intervals of medians (and of ratios and
differences of medians) and the Mann–Whitney U test, with a fixed random state so that the same results
always render to the same report. Nothing here is hand-rolled beyond the bookkeeping around those calls.

Functions here are pure: tables or arrays in, numbers out, nothing read or written.
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: The one name and definition of "epoch ms", shown by the summary table and by the reports.
EPOCH_MS = "epoch ms"
EPOCH_MS_DEFINITION = "median of the steady-state epochs (2..n) of every seed, pooled"
EPOCH_MS_LABEL = f"{EPOCH_MS}: {EPOCH_MS_DEFINITION}"

CONFIDENCE = 0.95  # of every interval mlpbench shows
#: A difference is significant when the Mann–Whitney p-value is below ALPHA *and* the 95% interval of the
#: ratio excludes 1 (of a difference, 0). The strict level keeps a CI gate that compares many groups at
#: once from crying wolf: 20 unchanged groups at 0.05 would flag one of them every other run.
ALPHA = 0.01
MIN_SAMPLES = 3  # fewer values give no interval and no test
N_RESAMPLES = 2999  # bootstrap resamples: enough for stable 95% bounds, fast enough for hundreds of groups
BCA_MAX = 1000  # above this many values per sample, percentile intervals (BCa's jackknife is n²)
RANDOM_STATE = 12345  # every bootstrap starts from it: the same results always give the same intervals


def numeric(values: pd.Series | Iterable[float]) -> pd.Series:
    """`values` as floats, with everything that is not a number (None, NaN, text) dropped."""
    if isinstance(values, pd.Series) and values.dtype.kind == "f":
        return values.dropna().astype(float)  # already numbers (most columns of a results table)
    values = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    return pd.to_numeric(values, errors="coerce").astype(float).dropna()


def _finite(values: pd.Series | Iterable[float]) -> np.ndarray:
    a = numeric(values).to_numpy(dtype=float)
    return a[np.isfinite(a)]


def median(values: pd.Series) -> float:
    """The median of the numbers in `values`; NaN when there are none."""
    values = numeric(values)
    return float(values.median()) if len(values) else float("nan")


def iqr(values: pd.Series) -> float:
    """The interquartile range of the numbers in `values`; NaN when there are fewer than two."""
    values = numeric(values)
    return float(values.quantile(0.75) - values.quantile(0.25)) if len(values) > 1 else float("nan")


def steady_epoch_times(curves: pd.DataFrame) -> pd.Series:
    """Seconds of the steady-state epochs of the jobs in `curves`, pooled.

    `curves` has one row per job and epoch, with the columns ``id``, ``epoch`` (1-based) and
    ``epoch_time_s``, as in the ``curves`` table of `mlpbench.load_results`; pass the rows of the jobs
    to aggregate (e.g. the ok jobs of one backend on one task). The result holds epochs 2..n of every
    job, or the one epoch of a job that ran only one (the same rule as each record's ``epoch_time_s``);
    untimed epochs are left out. Its index is that of `curves`.
    """
    if curves.empty or "epoch_time_s" not in curves or "epoch" not in curves:
        return pd.Series(dtype=float, name="epoch_time_s")
    epoch = pd.to_numeric(curves["epoch"], errors="coerce")
    jobs = curves["id"] if "id" in curves else pd.Series(0, index=curves.index)
    last = epoch.groupby(jobs, dropna=False, sort=False).transform("max")
    keep = (epoch >= 2) | (last < 2)
    return numeric(curves.loc[keep, "epoch_time_s"])


def median_epoch_time_s(curves: pd.DataFrame, fallback: pd.Series | None = None) -> float:
    """The "epoch ms" figure, in seconds: the median of `steady_epoch_times` of `curves` (`EPOCH_MS_LABEL`).

    `fallback`, the jobs' own ``epoch_time_s`` (each job's median steady-state epoch), is used only when
    `curves` hold no timed epoch, as in results stored without curves: its median. NaN when neither has
    a number.
    """
    times = steady_epoch_times(curves)
    if len(times) or fallback is None:
        return median(times)
    return median(fallback)


# --------------------------------------------------------------------------- intervals
@dataclass(frozen=True)
class Interval:
    """A median with its bootstrap confidence interval (NaN bounds when there were too few values)."""

    median: float
    low: float = math.nan
    high: float = math.nan
    n: int = 0
    cv: float = math.nan  # coefficient of variation (sample standard deviation / mean)

    @property
    def has_ci(self) -> bool:
        """Whether the interval was computed (at least `MIN_SAMPLES` values)."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    def scaled(self, factor: float) -> Interval:
        """The same interval in other units (seconds to milliseconds)."""
        return Interval(self.median * factor, self.low * factor, self.high * factor, self.n, self.cv)


@functools.cache
def _scipy_stats() -> Any:
    """`scipy.stats`, imported on first use: it takes a second, and most commands never need it."""
    from scipy import stats

    return stats


@functools.cache
def _rng_keyword() -> str:
    """scipy >= 1.15 names the generator argument ``rng``; older versions ``random_state``."""
    return "rng" if "rng" in inspect.signature(_scipy_stats().bootstrap).parameters else "random_state"


def _median_of(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(samples[0], axis=axis)


def _ratio_of_medians(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(b, axis=axis) / np.median(a, axis=axis)


def _difference_of_medians(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(b, axis=axis) - np.median(a, axis=axis)


def bootstrap_interval(samples: tuple[np.ndarray, ...], statistic: object) -> tuple[float, float]:
    """The 95% bootstrap interval of `statistic` over independently resampled `samples`.

    BCa (bias-corrected and accelerated) first; where its acceleration cannot be estimated (samples of
    identical values, a statistic the jackknife cannot move) the percentile interval instead, and for
    samples above `BCA_MAX` values, whose jackknife would cost n² memory for a correction that has
    become negligible. Samples whose every value is the same give that point as both bounds.
    """
    if all(len(s) and np.ptp(s) == 0 for s in samples):
        point = float(statistic(*(s[None, :] for s in samples), axis=-1)[0])  # type: ignore[operator]
        return point, point
    methods = ("BCa", "percentile") if max(len(s) for s in samples) <= BCA_MAX else ("percentile",)
    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a failed BCa says so with NaN bounds, handled below
            result = _scipy_stats().bootstrap(
                samples,
                statistic,
                n_resamples=N_RESAMPLES,
                confidence_level=CONFIDENCE,
                method=method,
                vectorized=True,
                **{_rng_keyword(): np.random.default_rng(RANDOM_STATE)},
            )
        low, high = (float(x) for x in result.confidence_interval)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    return math.nan, math.nan


def coefficient_of_variation(values: pd.Series | Iterable[float]) -> float:
    """Sample standard deviation over mean (`scipy.stats.variation`, ddof=1); NaN for fewer than two values."""
    a = _finite(values)
    if len(a) < 2 or a.mean() == 0:
        return math.nan
    return float(_scipy_stats().variation(a, ddof=1))


def median_interval(values: pd.Series | Iterable[float], min_n: float = MIN_SAMPLES) -> Interval:
    """The median of `values` with its bootstrap 95% interval (from `min_n` values on) and its CV."""
    a = _finite(values)
    if not len(a):
        return Interval(math.nan)
    low, high = bootstrap_interval((a,), _median_of) if len(a) >= min_n else (math.nan, math.nan)
    return Interval(float(np.median(a)), low, high, len(a), coefficient_of_variation(a))


def epoch_time_interval(curves: pd.DataFrame, fallback: pd.Series | None = None) -> Interval:
    """ "epoch ms" in seconds (`median_epoch_time_s`) with the bootstrap interval of the pooled steady epochs.

    Without timed epochs in `curves`, the median of `fallback` (the jobs' own epoch times), no interval.
    """
    times = steady_epoch_times(curves)
    if len(times) or fallback is None:
        return median_interval(times)
    return Interval(median(fallback), n=len(numeric(fallback)))


def overlap(a: Interval, b: Interval) -> bool:
    """Whether two computed intervals share a point: their difference is not established."""
    return a.has_ci and b.has_ci and a.low <= b.high and b.low <= a.high


# --------------------------------------------------------------------------- two samples
@dataclass(frozen=True)
class Change:
    """How sample B differs from sample A: estimate B/A (or B − A) of the medians, interval, test, verdict."""

    kind: str  # "ratio" (B / A) or "difference" (B − A)
    a: Interval  # A's median, size and CV (its own interval is not computed: the change's is what counts)
    b: Interval
    estimate: float
    low: float
    high: float
    p_value: float  # two-sided Mann–Whitney U; NaN when no test was possible
    direction: int  # +1: B significantly higher, -1: significantly lower, 0: no significant change
    note: str = ""  # why no test was possible, when it was not

    @property
    def tested(self) -> bool:
        """Whether a test was possible at all with these sample sizes."""
        return math.isfinite(self.p_value)


def min_mannwhitney_p(n1: int, n2: int) -> float:
    """The smallest two-sided p-value an exact Mann–Whitney U test can give for samples of n1 and n2.

    With every value of one sample below every value of the other, the exact two-sided p is
    2 / C(n1 + n2, n1): 3 seeds against 3 can never go below 0.1, so no test at ALPHA = 0.01 is possible.
    """
    if n1 < 1 or n2 < 1:
        return 1.0
    log_ways = math.lgamma(n1 + n2 + 1) - math.lgamma(n1 + 1) - math.lgamma(n2 + 1)  # log C(n1 + n2, n1)
    return min(1.0, 2.0 * math.exp(-log_ways))


def compare_samples(
    a: pd.Series | Iterable[float],
    b: pd.Series | Iterable[float],
    kind: str = "ratio",
    alpha: float = ALPHA,
    threshold: float = 0.0,
) -> Change:
    """Compare two samples: the ratio (or difference) of their medians with a bootstrap 95% interval.

    B is significantly higher (direction +1) or lower (-1) when the two-sided Mann–Whitney U p-value is
    below `alpha` and the interval lies wholly outside the no-change band: 1 for a ratio (widened to
    [1 / (1 + threshold), 1 + threshold] by a noise `threshold`), 0 for a difference. With fewer than
    `MIN_SAMPLES` values on a side, or sizes too small for the test to ever reach `alpha`, no test is
    made and `note` says why.
    """
    if kind not in ("ratio", "difference"):
        raise ValueError(f"kind must be 'ratio' or 'difference', not {kind!r}")
    xa, xb = _finite(a), _finite(b)
    ia, ib = median_interval(xa, min_n=math.inf), median_interval(xb, min_n=math.inf)  # medians: one bootstrap
    if not len(xa) or not len(xb):
        return Change(kind, ia, ib, math.nan, math.nan, math.nan, math.nan, 0, "no values to compare")
    ratio = kind == "ratio"
    if ratio and (ia.median <= 0 or np.any(xa <= 0) or np.any(xb <= 0)):
        return Change(kind, ia, ib, math.nan, math.nan, math.nan, math.nan, 0, "a ratio needs positive values")
    estimate = ib.median / ia.median if ratio else ib.median - ia.median
    same = np.array_equal(np.sort(xa), np.sort(xb))
    smallest = min_mannwhitney_p(len(xa), len(xb))
    if min(len(xa), len(xb)) < MIN_SAMPLES or smallest >= alpha:
        if same:  # too few values for a test, but the very same values: known to be unchanged
            return Change(kind, ia, ib, estimate, math.nan, math.nan, 1.0, 0, "the same values in both")
        note = (
            f"no test possible with {len(xa)} vs {len(xb)} values: the smallest p a Mann–Whitney test can give "
            f"is {smallest:.2g}, not below α = {alpha:g}"
        )
        return Change(kind, ia, ib, estimate, math.nan, math.nan, math.nan, 0, note)
    low, high = bootstrap_interval((xa, xb), _ratio_of_medians if ratio else _difference_of_medians)
    if same or np.ptp(np.concatenate([xa, xb])) == 0:
        p = 1.0  # the same values: nothing to test (the normal approximation is undefined without spread)
    else:
        p = float(_scipy_stats().mannwhitneyu(xa, xb, alternative="two-sided").pvalue)
    # Epochs of one run are not independent draws of the machine's speed: a run-to-run drift of a few
    # percent is "significant" by p alone, so a ratio must also leave the noise band to count.
    upper = (1.0 + threshold) if ratio else 0.0
    lower = 1.0 / (1.0 + threshold) if ratio else 0.0
    direction = 0
    if p < alpha and math.isfinite(low) and math.isfinite(high):
        direction = 1 if low > upper else -1 if high < lower else 0
    return Change(kind, ia, ib, estimate, low, high, p, direction)


# --------------------------------------------------------------------------- performance profiles
def performance_ratios(costs: pd.DataFrame) -> pd.DataFrame:
    """Dolan–Moré performance ratios: each problem's (row's) cost over the best cost of that problem.

    `costs` has one row per problem and one column per solver (backend); a solver that failed on a
    problem (never reached the target, no ok job) has an infinite or missing cost and an infinite ratio,
    as in AlgoPerf. A problem no solver solved gives every solver an infinite ratio.
    """
    c = costs.apply(pd.to_numeric, errors="coerce").astype(float).fillna(math.inf)
    best = c.min(axis=1)
    ratios = c.div(best.where(np.isfinite(best) & (best > 0)), axis=0)
    return ratios.fillna(math.inf).where(np.isfinite(c), math.inf)


def profile(ratios: pd.DataFrame, taus: Iterable[float]) -> pd.DataFrame:
    """ρ_s(τ): per solver (column), the share of problems whose ratio is at most τ, for each τ (index)."""
    taus = list(taus)
    if ratios.empty:
        return pd.DataFrame(index=taus, columns=ratios.columns, dtype=float)
    return pd.DataFrame({s: [float((ratios[s] <= t).mean()) for t in taus] for s in ratios.columns}, index=taus)
