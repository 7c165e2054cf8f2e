"""``run_bench.py run``: plan backends x tasks x seeds, run them in workers, store, report and summarise."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import env as envmod
from ..plan import DEFAULT_TASKS, expand_seeds, make_plan
from ..registry import Registry
from ..runner import DEFAULT_TIMEOUT_S, run_with_progress
from ..status import FAILED
from ..store import CONFIG_FILE, ENV_FILE, ResultsStore, export_csv
from .common import (
    DEFAULT_THREADS,
    EXIT_FAILED_JOBS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    PROG,
    UsageError,
    add_plugin_arg,
    after_run,
    backend_choices,
    key_value,
    load_registry,
    parse_duration,
    positive_int,
    timestamped_dir,
    usage_errors,
)

DEFAULT_SEEDS = "3"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``run`` sub-command's arguments."""
    run = sub.add_parser(
        "run", help="run a benchmark (the default command)",
        description="Run backends x tasks x seeds; results go to --out (default results/<timestamp>/).",
    )  # fmt: skip
    run.add_argument("--backends", default=None, metavar="LIST",
                     help="comma-separated backends, options in brackets: numpy,torch,keras[engine=jax] "
                          "(default: every installed backend)")  # fmt: skip
    run.add_argument("--tasks", default=",".join(DEFAULT_TASKS), metavar="LIST",
                     help=f"comma-separated tasks (default: {','.join(DEFAULT_TASKS)})")  # fmt: skip
    run.add_argument("--seeds", default=DEFAULT_SEEDS, metavar="N|LIST",
                     help="a count (3 -> seeds 0,1,2) or an explicit list (0,5,9); default 3")  # fmt: skip
    run.add_argument("--epochs", type=positive_int, default=None, help="override every task's epoch count")
    run.add_argument("--quick", action="store_true",
                     help="a fast complete run: 1 seed (unless --seeds is given) and half of each task's epochs "
                          "(unless --epochs is given); every backend and task still runs")  # fmt: skip
    run.add_argument("--set", dest="overrides", action="append", default=[], type=key_value, metavar="FIELD=VALUE",
                     help="override a ModelSpec field for every task, e.g. --set lr=0.01 --set hidden=128,64 "
                          "(repeatable)")  # fmt: skip
    run.add_argument("--task-param", action="append", default=[], type=key_value, metavar="TASK.KEY=VALUE",
                     help="set a task parameter, e.g. --task-param moons.noise=0.3 (repeatable)")
    run.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                     help=f"threads per worker for every framework and BLAS (default {DEFAULT_THREADS})")  # fmt: skip
    run.add_argument("--timeout", type=parse_duration, default=DEFAULT_TIMEOUT_S, metavar="DURATION",
                     help=f"per-job time limit, e.g. 90s or 10m (default {DEFAULT_TIMEOUT_S / 60:g}m)")  # fmt: skip
    run.add_argument("--out", default=None, metavar="DIR", help="results directory (default results/<timestamp>)")
    run.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR, skipping finished jobs")
    run.add_argument("--no-progress", action="store_true", help="no live progress display, one line per job")
    run.add_argument("--csv-path", default=None, metavar="FILE",
                     help="the csv task's file (with --tasks csv): one row per sample, a header row")  # fmt: skip
    run.add_argument("--csv-target", default=None, metavar="COLUMN",
                     help="the csv task's target column; every other column is a numeric feature")
    run.add_argument("--csv-kind", default=None, choices=("auto", "binary", "multiclass", "regression"),
                     help="the csv task's problem kind (default auto: from the target column)")  # fmt: skip
    add_plugin_arg(run)
    return run


def _resolve_plan(args: argparse.Namespace, registry: Registry) -> tuple[list, dict[str, Any]]:
    backends = backend_choices(args.backends, registry)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise UsageError("no task to run: name at least one with --tasks")
    overrides = dict(args.overrides)
    if args.epochs is not None:
        overrides["epochs"] = str(args.epochs)
    task_params: dict[str, dict[str, str]] = {}
    for key, value in args.task_param:
        if "." not in key:
            raise UsageError(f"--task-param {key}={value}: expected TASK.KEY=VALUE, e.g. moons.noise=0.3")
        task, param = key.split(".", 1)
        if task not in tasks:
            raise UsageError(f"--task-param {key}: task {task!r} is not in --tasks ({', '.join(tasks)})")
        task_params.setdefault(task, {})[param] = value
    csv = {"path": getattr(args, "csv_path", None), "target": getattr(args, "csv_target", None),
           "kind": getattr(args, "csv_kind", None)}  # fmt: skip
    csv = {k: v for k, v in csv.items() if v is not None}
    if csv:
        if "csv" not in tasks:
            raise UsageError("--csv-path, --csv-target and --csv-kind set the csv task: add csv to --tasks")
        if "path" in csv:  # absolute, so the job id and --resume do not depend on the working directory
            csv["path"] = str(Path(csv["path"]).expanduser().absolute())
        task_params.setdefault("csv", {}).update(csv)
    with usage_errors():
        quick = getattr(args, "quick", False)
        seeds = expand_seeds("1" if quick and args.seeds == DEFAULT_SEEDS else args.seeds)
        if quick and "epochs" not in overrides:
            jobs = []
            for t in tasks:  # half of each task's own epoch count: one plan per task
                epochs = registry.task(t)(**task_params.get(t, {})).spec().epochs
                quick_overrides = {**overrides, "epochs": str(max(2, (epochs + 1) // 2))}
                jobs += make_plan(registry, backends, [t], seeds, quick_overrides, task_params)
        else:
            jobs = make_plan(registry, backends, tasks, seeds, overrides, task_params)
    config = {
        "backends": [b.label for b in backends], "tasks": tasks, "seeds": seeds, "overrides": overrides,
        "task_params": task_params, "threads": args.threads, "timeout_s": args.timeout,
        "plugins": list(args.plugin), "argv": sys.argv[1:], "quick": bool(getattr(args, "quick", False)),
    }  # fmt: skip
    return jobs, config


def _results_dir(args: argparse.Namespace) -> ResultsStore:
    if args.resume and args.out and Path(args.out).resolve() != Path(args.resume).resolve():
        raise UsageError("give either --out DIR or --resume DIR, not both")
    if args.resume:
        store = ResultsStore(args.resume)
        if not store.runs_path.exists():
            raise UsageError(f"--resume {args.resume}: no results there to resume (no runs.jsonl)")
        return store
    path = args.out or str(timestamped_dir())
    store = ResultsStore(path)
    if store.has_results():
        raise UsageError(f"{path} already holds results; use --resume {path} to continue it, or choose another --out")
    return store


# Options that do not define the plan: they are not saved for --resume and may differ when resuming.
_NOT_PLAN = ("command", "out", "resume", "no_progress", "timeout")


def _plan_args(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    """The command-line options that define the plan, as saved in config.json for --resume."""
    saved = {}
    for key, value in vars(args).items():
        if key in _NOT_PLAN:
            continue
        try:
            saved[key] = _plan_value(key, value)
        except (TypeError, ValueError):
            continue
    saved["backends"] = ",".join(config["backends"])  # resolved: "every installed backend" may change
    return saved


def _plan_value(key: str, value: Any) -> Any:
    """An option's value as saved in config.json: plain JSON, file names absolute."""
    if key == "plugin":
        return [str(Path(p).expanduser().absolute()) for p in value]
    if key == "csv_path" and value:
        return str(Path(value).expanduser().absolute())
    return json.loads(json.dumps(value))


def _resume_args(args: argparse.Namespace) -> argparse.Namespace:
    """The options of the run being resumed; options given now must agree with them."""
    saved = ResultsStore(args.resume).read_json(CONFIG_FILE).get("args")
    if not isinstance(saved, dict):
        return args  # written before the options were saved: plan from the command line
    from . import build_parser

    defaults = vars(build_parser().parse_args(["run"]))
    differ = []
    for key, value in vars(args).items():
        if key in _NOT_PLAN or key not in saved or value == defaults.get(key):
            continue
        if _plan_value(key, value) != saved[key]:
            differ.append(f"--{key.replace('_', '-')} (saved: {saved[key]!r}, given: {value!r})")
    if differ:
        raise UsageError(f"--resume {args.resume} continues the saved plan, but {'; '.join(differ)}; "
                         "leave these out to continue, or start a new run with --out")  # fmt: skip
    return argparse.Namespace(**{**vars(args), **saved})


def cmd(args: argparse.Namespace) -> int:
    """Plan, run, store and summarise."""
    if args.resume:
        if not ResultsStore(args.resume).runs_path.exists():
            raise UsageError(f"--resume {args.resume}: no results there to resume (no runs.jsonl)")
        args = _resume_args(args)
    registry = load_registry(args.plugin)
    jobs, config = _resolve_plan(args, registry)
    store = _results_dir(args)
    with usage_errors():
        store.create()
    if args.resume:
        saved = store.read_json(CONFIG_FILE)
        if saved:
            config = {**saved, "resumed": True}
        moved = store.repair()
        if moved:
            print(f"warning: {moved} incomplete record(s) in {store.runs_path} (a run killed while writing) moved "
                  f"to {store.runs_path}.incomplete; those jobs run again", file=sys.stderr)  # fmt: skip
    else:
        config["args"] = _plan_args(args, config)
    store.write_json(CONFIG_FILE, config)
    if not (store.path / ENV_FILE).exists():
        store.write_json(ENV_FILE, envmod.collect(args.threads))

    records, interrupted = run_with_progress(registry, store, jobs, args.threads, args.timeout, not args.no_progress)
    export_csv(store)
    after_run(store.path)
    from ..summary import print_summary

    print_summary(store)
    if interrupted:
        print(f"\nInterrupted by {interrupted}. Every finished job is saved in {store.path}.\n"
              f"Continue with: python {PROG} run --resume {store.path}", file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    print(f"\nResults: {store.path}")
    bad = [r for r in records if r.get("status") in FAILED]
    return EXIT_FAILED_JOBS if bad else EXIT_OK
