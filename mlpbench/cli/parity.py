"""``run_bench.py parity``: every backend against the NumPy reference, same weights and batches, float64."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..choices import DEFAULT_TASKS, parse_backend_list
from ..files import write_atomic
from ..parity import (
    DEFAULT_BATCH_NORMS,
    DEFAULT_EPOCHS,
    DEFAULT_OPTIMIZERS,
    PARITY_FILE,
    REFERENCE,
    _ParityStore,
    compare,
    format_table,
    plan,
)
from ..runner import run_with_progress
from ..spec import BATCH_NORMS, OPTIMIZERS
from ..status import FAILED
from .common import (
    DEFAULT_THREADS,
    EXIT_FAILED_JOBS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    add_plugin_arg,
    backend_choices,
    load_registry,
    parse_duration,
    positive_int,
    timestamped_dir,
    usage_errors,
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``parity`` sub-command's arguments."""
    p = sub.add_parser(
        "parity",
        help="check every backend against the NumPy backend (same weights, same batches, float64)",
        description="Train every backend from identical initial weights on identical batches in float64 with "
        "dropout 0, once per optimizer and batch-norm setting, and report the largest relative difference from "
        "the NumPy backend of the per-epoch training loss and of the final weights (max|a-b| / max|numpy|). "
        "Exit status 1 when a row misses its target or a job fails.",
    )
    p.add_argument(
        "--backends",
        default=None,
        metavar="LIST",
        help="backends to check (default: every installed backend); numpy is always run as the reference",
    )
    p.add_argument(
        "--tasks",
        default=",".join(DEFAULT_TASKS),
        metavar="LIST",
        help=f"comma-separated tasks (default: {','.join(DEFAULT_TASKS)})",
    )
    p.add_argument(
        "--optimizers",
        default=DEFAULT_OPTIMIZERS,
        metavar="LIST",
        help=f"comma-separated optimizers (default: {DEFAULT_OPTIMIZERS})",
    )
    p.add_argument(
        "--batch-norm",
        default=DEFAULT_BATCH_NORMS,
        metavar="LIST",
        help=f"comma-separated batch_norm settings ({', '.join(BATCH_NORMS)}), each run with every optimizer "
        f"(default: {DEFAULT_BATCH_NORMS})",
    )
    p.add_argument(
        "--epochs", type=positive_int, default=DEFAULT_EPOCHS, help=f"epochs per job (default {DEFAULT_EPOCHS})"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, batches and split (default 0)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the rows as a JSON list to FILE")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help=f"results directory for {PARITY_FILE} (may be a run's directory, so its report shows parity); "
        "the parity jobs' records and logs go to DIR/parity/, replaced on each check "
        "(default results/parity-<timestamp>)",
    )
    p.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS, help="threads per worker")
    p.add_argument("--timeout", type=parse_duration, default=600.0, metavar="DURATION", help="per-job time limit")
    p.add_argument("--no-progress", action="store_true", help="no live progress display, one line per job")
    add_plugin_arg(p)
    return p


def cmd(args: argparse.Namespace) -> int:
    """Run the parity jobs, print the table, write DIR/parity.json (and --json FILE)."""
    registry = load_registry(args.plugin)
    backends = backend_choices(args.backends, registry, keep_broken=False)
    for b in backends:
        with usage_errors():
            registry.backend(b.name)(**dict(b.options))
    if REFERENCE not in [b.label for b in backends]:
        backends = [*parse_backend_list(REFERENCE), *backends]
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    for o in optimizers:
        if o not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {o!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
    batch_norms = [b.strip() for b in args.batch_norm.split(",") if b.strip()]
    for b in batch_norms:
        if b not in BATCH_NORMS:
            raise UsageError(f"unknown batch_norm setting {b!r}; valid settings: {', '.join(BATCH_NORMS)}")
    if not tasks or not optimizers or not batch_norms:
        raise UsageError("name at least one task, one optimizer and one batch_norm setting")
    with usage_errors():
        jobs = plan(registry, backends, tasks, optimizers, args.epochs, args.seed, args.threads, batch_norms)

    out = Path(args.out or timestamped_dir("parity-"))
    store = _ParityStore(out / "parity")
    with usage_errors():
        store.create()
    store.runs_path.unlink(missing_ok=True)  # a fresh check, never a resumed one
    store.write_json(
        "config.json",
        {
            "backends": [b.label for b in backends],
            "tasks": tasks,
            "optimizers": optimizers,
            "batch_norms": batch_norms,
            "epochs": args.epochs,
            "seed": args.seed,
            "threads": args.threads,
            "argv": sys.argv[1:],
        },
    )

    records, interrupted = run_with_progress(registry, store, jobs, args.timeout, not args.no_progress)
    if interrupted:
        print(f"\nInterrupted by {interrupted}; no parity written.", file=sys.stderr)
        return EXIT_INTERRUPTED

    rows = compare(records, registry)
    print(
        f"\nParity against {REFERENCE} (float64, dropout 0, {args.epochs} epochs, seed {args.seed}); "
        "relative difference = max|a-b| / max|numpy| over the per-epoch train loss and the final weights\n"
    )
    print(format_table(rows))
    text = json.dumps(rows, indent=2)
    write_atomic(out / PARITY_FILE, text + "\n")
    if args.json:
        write_atomic(Path(args.json), text + "\n")
    print(f"\nWritten: {out / PARITY_FILE}" + (f" and {args.json}" if args.json else ""))
    failed = [r for r in rows if r["within_target"] is False or r["status"] in {*FAILED, "no_reference"}]
    ref_failed = [r for r in records if r["backend"] == REFERENCE and r.get("status") != "ok"]
    return EXIT_FAILED_JOBS if failed or ref_failed else EXIT_OK
