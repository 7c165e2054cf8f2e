"""The statistics mlpbench reports, defined once for the end-of-run table and the reports.

Every "epoch ms" mlpbench shows is :func:`median_epoch_time_s` of :func:`steady_epoch_times`: the
steady-state epochs (2..n) of every seed, pooled. The first epoch is left out of it because it carries
one-off costs (graph building, compilation, warm-up) that the reports show on their own.

Functions here are pure: tables in, numbers out, nothing read or written.
"""

from __future__ import annotations

import pandas as pd

#: The one name and definition of "epoch ms", shown by the summary table and by the reports.
EPOCH_MS = "epoch ms"
EPOCH_MS_DEFINITION = "median of the steady-state epochs (2..n) of every seed, pooled"
EPOCH_MS_LABEL = f"{EPOCH_MS}: {EPOCH_MS_DEFINITION}"


def numeric(values: pd.Series) -> pd.Series:
    """`values` as floats, with everything that is not a number (None, NaN, text) dropped."""
    return pd.to_numeric(values, errors="coerce").astype(float).dropna()


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
