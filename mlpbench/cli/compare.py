"""``run_bench.py compare A B [C ...]``: which differences between results directories are real.

A is the baseline; every further directory is compared with it. Exit status 0 when nothing is wrong,
1 with ``--fail-slower PCT`` when a matched group got significantly slower by more than PCT (a CI
regression gate), 2 for bad input: a missing directory, one without results, a bad percentage, or two
runs that have no job in common.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..compare import ALPHA, NOISE, CompareError, Comparison, compare_runs, load_run, parse_percent, regressions
from ..store import timestamped_dir
from .common import EXIT_FAILED_JOBS, EXIT_OK, UsageError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``compare`` sub-command's arguments."""
    p = sub.add_parser(
        "compare",
        help="compare results directories: epoch time, time to target, memory and metric, with significance",
        description="Match the jobs of results directories (same backend, options, task, parameters, grid point, "
        "mode, threads and spec; any seeds) and say, per matched group, how epoch time, time to target, peak "
        "memory and the test metric changed from A to B: ratio with a bootstrap 95% CI, Mann-Whitney U p-value "
        f"and a verdict (significant: p < {ALPHA:g} and the CI lies beyond the --noise band). The first directory "
        "is the baseline; "
        "with more than two, each is compared with it and a history figure follows them across runs. Writes "
        "compare.md and compare.html (with figures) to --out.",
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="results directories: the baseline first")
    p.add_argument("--out", default=None, metavar="DIR", help="where to write (default results/compare-<timestamp>)")
    p.add_argument(
        "--noise",
        default=f"{100 * NOISE:g}%",
        metavar="PCT",
        help=f"noise band of time and memory ratios: a change counts only when its 95%% CI lies beyond ±PCT "
        f"(default {100 * NOISE:g}%%; 0 tests the epochs alone, which flags ordinary run-to-run drift)",
    )
    p.add_argument(
        "--fail-slower",
        default=None,
        metavar="PCT",
        help="exit with status 1 when a matched group got significantly slower (epoch time or time to target) "
        "by more than PCT, e.g. 10%% or 10: a regression gate for CI",
    )
    return p


def load_runs(dirs: list[str]) -> list[Any]:
    """Every directory as a `Run`; a missing or non-results directory is a usage error."""
    try:
        return [load_run(d) for d in dirs]
    except CompareError as exc:
        raise UsageError(str(exc)) from None


def cmd(args: argparse.Namespace) -> int:
    """Compare the baseline with each other directory, print and write the comparison, gate on --fail-slower."""
    from rich.console import Console

    from ..report.compare import print_comparison
    from ..report.compare_page import write_outputs

    if len(args.dirs) < 2:
        raise UsageError("compare needs at least two results directories: the baseline A and B")
    threshold = None
    if args.fail_slower is not None:
        try:
            threshold = parse_percent(args.fail_slower)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        noise = parse_percent(args.noise, "--noise")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    runs = load_runs(args.dirs)
    comparisons: list[Comparison] = []
    try:
        for other in runs[1:]:
            comparisons.append(compare_runs(runs[0], other, threshold=noise))
    except CompareError as exc:
        raise UsageError(str(exc)) from None
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    found = []
    for c in comparisons:
        slow = regressions(c, threshold) if threshold is not None else []
        found += slow
        print_comparison(c, console, slow)
    out = Path(args.out) if args.out else timestamped_dir("compare-")
    written = write_outputs(out, comparisons, runs, found)
    print(f"Comparison: {written.html}\n            {written.markdown}")
    if found:
        print(f"{len(found)} significant slowdown(s) of more than {100 * threshold:g}% (--fail-slower): exit status 1")
        return EXIT_FAILED_JOBS
    return EXIT_OK
