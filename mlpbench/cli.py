"""Command line: ``python run_bench.py [run|list|...]``. Bad input stops before any work with exit status 2."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from . import env as envmod
from .parity import add_parity_parser, cmd_parity
from .registry import PluginError, Registry, discover
from .report import cmd_report, write_reports
from .runner import DEFAULT_TIMEOUT_S, expand_seeds, make_plan, parse_backend_list, run_with_progress
from .scaling import add_parser as add_scaling_parser
from .scaling import cmd_scaling
from .store import CONFIG_FILE, ENV_FILE, ResultsStore, export_csv

DEFAULT_TASKS = "xor,digits,diabetes"
DEFAULT_SEEDS = "3"
DEFAULT_THREADS = 1  # measured: small MLPs run fastest single-threaded on this class of machine (README)
EXIT_OK, EXIT_FAILED_JOBS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
BAD_STATUSES = ("error", "crashed", "timeout", "diverged")


class UsageError(Exception):
    """Bad input: printed as one clear message, exit status 2."""


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    t = text.strip().lower()
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; use e.g. 90s, 10m or 1h") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a timeout must be a positive, finite duration")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _add_plugin_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="FILE",
                   help="load Backend/Task classes from a local Python file (repeatable)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="run_bench.py",
        description="Train the same MLP on several backends and compare accuracy, loss curves, time and memory. "
        "Without a command, runs the default suite (every installed backend on xor, digits, diabetes, 3 seeds).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run a benchmark (the default command)",
        description="Run backends x tasks x seeds; results go to --out (default results/<timestamp>/).",
    )  # fmt: skip
    run.add_argument("--backends", default=None, metavar="LIST",
                     help="comma-separated backends, options in brackets: numpy,torch,keras[engine=jax] "
                          "(default: every installed backend)")  # fmt: skip
    run.add_argument("--tasks", default=DEFAULT_TASKS, metavar="LIST",
                     help=f"comma-separated tasks (default: {DEFAULT_TASKS})")  # fmt: skip
    run.add_argument("--seeds", default=DEFAULT_SEEDS, metavar="N|LIST",
                     help="a count (3 -> seeds 0,1,2) or an explicit list (0,5,9); default 3")  # fmt: skip
    run.add_argument("--epochs", type=_positive_int, default=None, help="override every task's epoch count")
    run.add_argument("--quick", action="store_true",
                     help="a fast complete run: 1 seed (unless --seeds is given) and half of each task's epochs "
                          "(unless --epochs is given); every backend and task still runs")  # fmt: skip
    run.add_argument("--set", dest="overrides", action="append", default=[], type=_key_value, metavar="FIELD=VALUE",
                     help="override a ModelSpec field for every task, e.g. --set lr=0.01 --set hidden=128,64 "
                          "(repeatable)")  # fmt: skip
    run.add_argument("--task-param", action="append", default=[], type=_key_value, metavar="TASK.KEY=VALUE",
                     help="set a task parameter, e.g. --task-param moons.noise=0.3 (repeatable)")
    run.add_argument("--threads", type=_positive_int, default=DEFAULT_THREADS,
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
    _add_plugin_arg(run)

    lst = sub.add_parser("list", help="list backends and tasks, with availability")
    _add_plugin_arg(lst)
    add_parity_parser(sub)
    add_scaling_parser(sub)

    rep = sub.add_parser("report", help="render report.md and report.html of a results directory again",
                         description="Render DIR/report.md, DIR/report.html and DIR/figures/ from the stored "
                                     "results alone (runs.jsonl, env.json, config.json, parity.json).")  # fmt: skip
    rep.add_argument("dir", metavar="DIR", help="a results directory written by `run`")
    rep.add_argument("--open", action="store_true", help="open report.html in the default web browser")
    return parser


# ----------------------------------------------------------------------------- run
def backend_choices(text: str | None, registry: Registry, keep_broken: bool = True) -> list:
    """The backends named by --backends, or every installed one when it is not given.

    With `keep_broken`, an installed plugin whose import fails stays in the default list, so its
    jobs are recorded as errors instead of silently left out.
    """
    if text is None:
        names = [n for n, e in sorted(registry.backends.items())
                 if (e.cls is None and keep_broken)
                 or (e.cls is not None and not e.cls.missing_requirements())]  # fmt: skip
        return parse_backend_list(",".join(names))
    try:
        return parse_backend_list(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _resolve_plan(args: argparse.Namespace, registry: Registry) -> tuple[list, dict[str, Any]]:
    backends = backend_choices(args.backends, registry)
    if not backends:
        raise UsageError("no backend to run: name at least one with --backends")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise UsageError("no task to run: name at least one with --tasks")
    for b in backends:
        if b.name not in registry.backends:
            raise UsageError(f"unknown backend {b.name!r}; valid backends: {', '.join(sorted(registry.backends))}")
    for t in tasks:
        if t not in registry.tasks:
            raise UsageError(f"unknown task {t!r}; valid tasks: {', '.join(sorted(registry.tasks))}")
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
    try:
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
    except (ValueError, PluginError) as exc:
        raise UsageError(str(exc)) from exc
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
    path = args.out or str(Path("results") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
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


def cmd_run(args: argparse.Namespace) -> int:
    """Plan, run, store and summarise."""
    if args.resume:
        if not ResultsStore(args.resume).runs_path.exists():
            raise UsageError(f"--resume {args.resume}: no results there to resume (no runs.jsonl)")
        args = _resume_args(args)
    try:
        registry = discover(args.plugin)
    except PluginError as exc:
        raise UsageError(str(exc)) from exc
    jobs, config = _resolve_plan(args, registry)
    store = _results_dir(args)
    try:
        store.create()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
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
    _after_run(store)
    from .summary import print_summary

    print_summary(store)
    if interrupted:
        print(f"\nInterrupted by {interrupted}. Every finished job is saved in {store.path}.\n"
              f"Continue with: python run_bench.py run --resume {store.path}", file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    print(f"\nResults: {store.path}")
    bad = [r for r in records if r.get("status") in BAD_STATUSES]
    return EXIT_FAILED_JOBS if bad else EXIT_OK


def _after_run(store: ResultsStore) -> None:
    """Hook for what follows every run (reports); a failure here never loses results."""
    try:
        _md, html_path = write_reports(store.path)
        print(f"Report: {html_path}")
    except Exception as exc:  # the results are already on disk; a broken report must not hide them
        print(f"warning: the report could not be written ({type(exc).__name__}: {exc}); the results in "
              f"{store.path} are intact. Retry with: python run_bench.py report {store.path}", file=sys.stderr)


# ---------------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    """Print every backend and task with where it came from and whether it can run here."""
    try:
        registry = discover(args.plugin)
    except PluginError as exc:
        raise UsageError(str(exc)) from exc
    print("Backends:")
    for name, entry in sorted(registry.backends.items()):
        if entry.cls is None:
            state = f"error: {entry.error.splitlines()[0]}"
        else:
            missing = entry.cls.missing_requirements()
            if missing:
                state = f"not installed (cannot import {', '.join(missing)})"
            else:
                vers = ", ".join(f"{k} {v}" for k, v in entry.cls.versions().items())
                state = "available" + (f" ({vers})" if vers else "")
        opts = ""
        if entry.cls is not None and entry.cls.options:
            opts = "  options: " + ", ".join(f"{k}={v}" for k, v in entry.cls.options.items())
        print(f"  {name:<14} {state}  [{entry.source}]{opts}")
    print("Tasks:")
    for name, entry in sorted(registry.tasks.items()):
        if entry.cls is None:
            print(f"  {name:<14} error: {entry.error.splitlines()[0]}  [{entry.source}]")
            continue
        cls = entry.cls
        note = ""
        try:
            why = cls().unavailable()
            note = f"  UNAVAILABLE: {why}" if why else ""
        except Exception as exc:  # a task needing parameters (csv) cannot be probed without them
            note = f"  (needs parameters: {exc})" if cls.params else ""
        print(f"  {name:<14} {cls.kind:<10} target {cls.target_metric} {cls.target:g}  {cls.description}  "
              f"[{entry.source}]{note}")  # fmt: skip
    return EXIT_OK


COMMANDS = {"run": cmd_run, "list": cmd_list, "parity": cmd_parity, "report": cmd_report, "scaling": cmd_scaling}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # `run_bench.py list | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except UsageError as exc:
        print(f"run_bench.py {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
