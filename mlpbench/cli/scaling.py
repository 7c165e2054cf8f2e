"""``run_bench.py scaling``: the shipped ``scaling`` experiment, then time per epoch against work.

The sweep is an ordinary experiment (a grid over the synthetic task's sizes); this command
fills it from its flags, runs it like ``run --config scaling`` and adds the scaling table,
``scaling.json`` and ``figures/scaling.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from functools import partial
from pathlib import Path
from typing import Any

from ..choices import parse_backend_list
from ..env import peak_gflops
from ..experiment import ExperimentError, load_experiment
from ..scaling import (
    FIGURE,
    PRESET,
    QUICK_SAMPLES,
    QUICK_WIDTHS,
    SCALING_FILE,
    TASK,
    draw,
    fit_slopes,
    print_table,
    scaling_rows,
)
from ..session import execute
from ..status import FAILED
from ..store import ENV_FILE, ResultsStore
from .common import (
    EXIT_FAILED_JOBS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    PROG,
    UsageError,
    add_oversubscribe_arg,
    add_plugin_arg,
    add_progress_arg,
    parse_duration,
    positive_int,
    timestamped_dir,
)

_PRESET = load_experiment(PRESET)
SAMPLES = tuple(_PRESET.grid[f"{TASK}.n_samples"])
WIDTHS = tuple(_PRESET.grid[f"{TASK}.width"])


def int_list(text: str) -> list[int]:
    """An argument type: comma-separated positive whole numbers (``1000,1e4``)."""
    try:
        values = [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers like 1000,1e4") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive numbers")
    return values


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``scaling`` sub-command's arguments."""
    params = _PRESET.task_params[TASK]
    p = sub.add_parser(
        "scaling",
        help="time per epoch against work (FLOPs) over a grid of sizes of the synthetic task",
        description="Run the shipped 'scaling' experiment (run --config scaling): every backend on the synthetic "
        "task over training-set sizes x hidden widths; print time per epoch against FLOPs per epoch with the fitted "
        f"log-log slope per backend, and write {SCALING_FILE} and {FIGURE} to the results directory.",
    )
    p.add_argument("--backends", default=None, metavar="LIST", help="comma-separated backends (default: all installed)")
    p.add_argument(
        "--samples",
        type=int_list,
        default=None,
        metavar="LIST",
        help=f"training-set sizes (default {','.join(map(str, SAMPLES))})",
    )
    p.add_argument(
        "--widths",
        type=int_list,
        default=None,
        metavar="LIST",
        help=f"hidden-layer widths (default {','.join(map(str, WIDTHS))})",
    )
    p.add_argument(
        "--features",
        type=positive_int,
        default=params["n_features"],
        help=f"input features (default {params['n_features']})",
    )
    p.add_argument(
        "--depth", type=positive_int, default=params["depth"], help=f"hidden layers (default {params['depth']})"
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=params["batch_size"],
        help=f"mini-batch size (default {params['batch_size']})",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"the small corner only: samples {','.join(map(str, QUICK_SAMPLES))} x widths "
        f"{','.join(map(str, QUICK_WIDTHS))}",
    )
    p.add_argument(
        "--threads",
        type=int_list,
        default=[_PRESET.threads],
        metavar="N[,N...]",
        help=f"threads per worker (default {_PRESET.threads}); a list such as 1,2 sweeps them too, each size at "
        "each thread count, and the matmul peak is measured at each",
    )
    add_oversubscribe_arg(p, default=False)
    p.add_argument(
        "--timeout",
        type=parse_duration,
        default=_PRESET.timeout_s,
        metavar="DURATION",
        help="per-job time limit (default 10m)",
    )
    p.add_argument("--out", default=None, metavar="DIR", help="results directory (default results/scaling-<timestamp>)")
    add_progress_arg(p)
    add_plugin_arg(p)
    return p


def cmd(args: argparse.Namespace) -> int:
    """Run the scaling experiment, then print the table and write scaling.json and the figure."""
    samples = args.samples or list(QUICK_SAMPLES if args.quick else SAMPLES)
    widths = args.widths or list(QUICK_WIDTHS if args.quick else WIDTHS)
    experiment = dataclasses.replace(
        _PRESET,
        backends=[c.label for c in parse_backend_list(args.backends)] if args.backends else None,
        task_params={TASK: {"n_features": args.features, "depth": args.depth, "batch_size": args.batch_size}},
        grid={f"{TASK}.n_samples": samples, f"{TASK}.width": widths}
        | ({"threads": list(dict.fromkeys(args.threads))} if len(set(args.threads)) > 1 else {}),
        threads=args.threads[0],
        oversubscribe=args.oversubscribe,
        timeout_s=args.timeout,
        plugins=list(args.plugin),
    )
    out = Path(args.out) if args.out else timestamped_dir("scaling-")
    try:
        outcome = execute(
            experiment,
            out,
            progress=not args.no_progress,
            argv=sys.argv[1:],
            before_report=write_scaling,
            keep_broken=False,
        )
    except (ExperimentError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    store, results = outcome.store, outcome.loaded()
    rows = scaling_rows(results.records, partial(peak_gflops, results.env))
    print_table(rows, fit_slopes(rows), results.env)
    if (store.path / FIGURE).exists():
        print(f"Figure: {store.path / FIGURE}")
    if outcome.report_error:
        print(
            f"warning: the report could not be written ({outcome.report_error}); retry with: "
            f"python {PROG} report {out}",
            file=sys.stderr,
        )
    if outcome.interrupted:
        print(
            f"\nInterrupted by {outcome.interrupted}. Every finished job is saved in {out}.\n"
            f"Continue with: python {PROG} run --resume {out}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(f"Results: {out}")
    bad = [r for r in outcome.records if r.get("status") in FAILED]
    for r in bad:
        print(f"  {r['id']}: {r['status']}: {str(r.get('error')).splitlines()[0] if r.get('error') else ''}")
    return EXIT_FAILED_JOBS if bad else EXIT_OK


def write_scaling(store: ResultsStore) -> None:
    """scaling.json and the figure, from the records (before the report, which shows them)."""
    rows = scaling_rows(store.records(), partial(peak_gflops, store.read_json(ENV_FILE)))
    slopes = fit_slopes(rows)
    store.write_json(SCALING_FILE, [{**r, "slope": slopes.get(r["series"])} for r in rows])
    draw(rows, slopes, store.path / FIGURE)
