"""``run_bench.py scaling``: time per epoch against work over a grid of sizes of the synthetic task."""

from __future__ import annotations

import argparse
from typing import Any

from .. import env as envmod
from ..plan import make_plan
from ..runner import DEFAULT_TIMEOUT_S, run_with_progress
from ..scaling import (
    FIGURE,
    QUICK_SAMPLES,
    QUICK_WIDTHS,
    SAMPLES,
    SCALING_FILE,
    TASK,
    WIDTHS,
    draw,
    fit_slopes,
    grid,
    print_table,
    scaling_rows,
)
from ..status import FAILED
from ..store import CONFIG_FILE, ENV_FILE, ResultsStore, export_csv
from .common import (
    DEFAULT_THREADS,
    EXIT_FAILED_JOBS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    add_plugin_arg,
    after_run,
    backend_choices,
    load_registry,
    parse_duration,
    positive_int,
    timestamped_dir,
    usage_errors,
)


def int_list(text: str) -> list[int]:
    try:
        values = [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers like 1000,1e4") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive numbers")
    return values


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``scaling`` sub-command's arguments."""
    p = sub.add_parser(
        "scaling", help="time per epoch against work (FLOPs) over a grid of sizes of the synthetic task",
        description="Train every backend on the synthetic 'scaling' task over a grid of training-set sizes x hidden "
        "widths; print time per epoch against FLOPs per epoch with the fitted log-log slope per backend, and write "
        f"{SCALING_FILE} and {FIGURE} to the results directory.",
    )  # fmt: skip
    p.add_argument("--backends", default=None, metavar="LIST", help="comma-separated backends (default: all installed)")
    p.add_argument("--samples", type=int_list, default=None, metavar="LIST",
                   help=f"training-set sizes (default {','.join(map(str, SAMPLES))})")  # fmt: skip
    p.add_argument("--widths", type=int_list, default=None, metavar="LIST",
                   help=f"hidden-layer widths (default {','.join(map(str, WIDTHS))})")  # fmt: skip
    p.add_argument("--features", type=positive_int, default=64, help="input features (default 64)")
    p.add_argument("--depth", type=positive_int, default=2, help="hidden layers (default 2)")
    p.add_argument("--batch-size", type=positive_int, default=512, help="mini-batch size (default 512)")
    p.add_argument("--quick", action="store_true",
                   help=f"the small corner only: samples {','.join(map(str, QUICK_SAMPLES))} x widths "
                        f"{','.join(map(str, QUICK_WIDTHS))}")  # fmt: skip
    p.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                   help=f"threads per worker (default {DEFAULT_THREADS})")  # fmt: skip
    p.add_argument("--timeout", type=parse_duration, default=DEFAULT_TIMEOUT_S, metavar="DURATION",
                   help="per-job time limit (default 10m)")  # fmt: skip
    p.add_argument("--out", default=None, metavar="DIR", help="results directory (default results/scaling-<timestamp>)")
    p.add_argument("--no-progress", action="store_true", help="no live progress display")
    add_plugin_arg(p)
    return p


def cmd(args: argparse.Namespace) -> int:
    """Run the grid through the Runner, then print the table and write scaling.json and the figure."""
    registry = load_registry(args.plugin)
    if TASK not in registry.tasks:
        raise UsageError(f"task {TASK!r} is not registered (reinstall: pip install -e .)")
    backends = backend_choices(args.backends, registry, keep_broken=False)
    if not backends:
        raise UsageError("no backend to run: name at least one with --backends")
    samples = args.samples or list(QUICK_SAMPLES if args.quick else SAMPLES)
    widths = args.widths or list(QUICK_WIDTHS if args.quick else WIDTHS)
    points = grid(samples, widths, args.features, args.depth, args.batch_size)
    jobs = []
    with usage_errors():
        for params in points:
            jobs += make_plan(registry, backends, [TASK], [0], {}, {TASK: params})

    path = args.out or str(timestamped_dir("scaling-"))
    store = ResultsStore(path)
    if store.has_results():
        raise UsageError(f"{path} already holds results; choose another --out")
    with usage_errors():
        store.create()
    store.write_json(CONFIG_FILE, {"command": "scaling", "backends": [b.label for b in backends], "tasks": [TASK],
                                   "grid": points, "seeds": [0], "threads": args.threads, "timeout_s": args.timeout,
                                   "plugins": list(args.plugin)})  # fmt: skip
    env = envmod.collect(args.threads)
    store.write_json(ENV_FILE, env)

    records, interrupted = run_with_progress(registry, store, jobs, args.threads, args.timeout, not args.no_progress)
    export_csv(store)
    peak = env.get("matmul_gflops")
    rows = scaling_rows(store.records(), peak)
    slopes = fit_slopes(rows)
    store.write_json(SCALING_FILE, [{**r, "slope": slopes.get(r["backend"])} for r in rows])
    figure = draw(rows, slopes, store.path / FIGURE)
    after_run(store.path)
    print_table(rows, slopes, peak)
    if figure:
        print(f"Figure: {figure}")
    if interrupted:
        print(f"\nInterrupted by {interrupted}. Every finished job is saved in {store.path}.")
        return EXIT_INTERRUPTED
    print(f"Results: {store.path}")
    bad = [r for r in records if r.get("status") in FAILED]
    for r in bad:
        print(f"  {r['id']}: {r['status']}: {str(r.get('error')).splitlines()[0] if r.get('error') else ''}")
    return EXIT_FAILED_JOBS if bad else EXIT_OK
