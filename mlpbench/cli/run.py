"""``run_bench.py run``: fill an `Experiment` from an experiment file and flags, run it, summarise.

Flags given on the command line override the experiment file (``--config``); nothing but the
`Experiment` travels past this module.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from ..choices import DEFAULT_TASKS, expand_seeds, parse_backend_list
from ..experiment import EXECUTION_FIELDS, EXPERIMENT_FILE, Experiment, ExperimentError, load_experiment
from ..registry import discover
from ..session import execute, read_experiment
from ..status import FAILED
from .common import (
    EXIT_FAILED_JOBS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    PROG,
    UsageError,
    add_oversubscribe_arg,
    add_plugin_arg,
    add_progress_arg,
    key_value,
    parse_duration,
    positive_int,
    timestamped_dir,
    usage_errors,
)

_DEFAULTS = Experiment()


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``run`` sub-command's arguments (every default is the `Experiment` default, or the file's)."""
    run = sub.add_parser(
        "run",
        help="run a benchmark (the default command)",
        description="Run backends x tasks x grid points x seeds; results go to --out (default results/<timestamp>/). "
        "An experiment file (--config) describes a whole run; flags given here override it.",
    )
    what = run.add_argument_group("what to run")
    how = run.add_argument_group("how it runs")
    output = run.add_argument_group("results")
    csv = run.add_argument_group("the csv task (--tasks csv)")
    what.add_argument(
        "--config",
        metavar="FILE|PRESET",
        help="an experiment file (TOML) or a shipped preset "
        "(run_bench.py list shows them); e.g. --config DIR/experiment.toml re-runs a run's very jobs",
    )
    what.add_argument(
        "--backends",
        metavar="LIST",
        help="comma-separated backends, options in brackets: "
        "numpy,torch,keras[engine=jax] (default: every installed backend)",
    )
    what.add_argument("--tasks", metavar="LIST", help=f"comma-separated tasks (default: {','.join(DEFAULT_TASKS)})")
    what.add_argument(
        "--seeds",
        metavar="N|LIST",
        help=f"a count (3 -> seeds 0,1,2) or an explicit list (0,5,9); default {len(_DEFAULTS.seeds)}",
    )
    what.add_argument("--epochs", type=positive_int, help="override every task's epoch count")
    what.add_argument(
        "--quick",
        action="store_true",
        default=None,
        help="a fast complete run: 1 seed (unless "
        "--seeds is given) and half of each task's epochs (unless --epochs is given)",
    )
    what.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=key_value,
        metavar="FIELD=VALUE",
        help="set a ModelSpec field for every task, e.g. --set lr=0.01 --set hidden=128,64 (repeatable)",
    )
    what.add_argument(
        "--grid",
        action="append",
        type=key_value,
        metavar="SETTING=V1,V2,...",
        help="sweep a setting (repeatable; the plan is the product): a ModelSpec field "
        "(hidden=16,64,256, hidden=64x64,256x256, lr=1e-3,1e-2, optimizer=sgd,adam), a task parameter "
        "(moons.noise=0.1,0.3), threads=1,2, or a backend option (torch.compile=false,true)",
    )
    what.add_argument(
        "--modes",
        metavar="LIST",
        help="comma-separated: controlled (the runner owns initial weights and "
        "batch order: do the frameworks compute the same thing, how fast at best) and/or native (each "
        "framework's own idiomatic loop: what its users get); default controlled",
    )
    what.add_argument(
        "--task-param",
        action="append",
        type=key_value,
        metavar="TASK.KEY=VALUE",
        help="set a task parameter, e.g. --task-param moons.noise=0.3 (repeatable)",
    )
    how.add_argument(
        "--threads",
        type=positive_int,
        help=f"threads per worker for every framework and BLAS "
        f"(default {_DEFAULTS.threads}; at most this machine's cores unless --oversubscribe)",
    )
    add_oversubscribe_arg(how, default=None)
    how.add_argument(
        "--timeout",
        type=parse_duration,
        metavar="DURATION",
        help=f"per-job time limit, e.g. 90s or 10m (default {_DEFAULTS.timeout_s / 60:g}m)",
    )
    how.add_argument(
        "--executor",
        choices=("local", "dask"),
        help="where jobs run: local worker subprocesses "
        "(default), or a Dask cluster (--scheduler ADDRESS / --scheduler-file FILE, or a LocalCluster "
        "of --jobs workers started for the run)",
    )
    how.add_argument(
        "--jobs",
        type=positive_int,
        help="jobs at once (default 1, the cleanest timings); locally each worker is pinned to cores of its own",
    )
    how.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://host:8786")
    how.add_argument("--scheduler-file", metavar="FILE", help="a Dask scheduler file (dask scheduler --scheduler-file)")
    how.add_argument(
        "--no-references",
        dest="references",
        action="store_false",
        default=None,
        help="do not score the reference models (linear, gradient boosting) on the splits",
    )
    output.add_argument("--out", metavar="DIR", help="results directory (default results/<timestamp>)")
    output.add_argument(
        "--resume", metavar="DIR", help="continue the run in DIR: its own experiment.toml, skipping finished jobs"
    )
    add_progress_arg(output)
    csv.add_argument(
        "--csv-path", metavar="FILE", help="the csv task's file (with --tasks csv): one row per sample, a header row"
    )
    csv.add_argument(
        "--csv-target", metavar="COLUMN", help="the csv task's target column; every other column is a numeric feature"
    )
    csv.add_argument(
        "--csv-kind",
        choices=("auto", "binary", "multiclass", "regression"),
        help="the csv task's problem kind (default auto: from the target column)",
    )
    add_plugin_arg(what)
    run.set_defaults(plugin=None)
    return run


#: Flags of how a run executes (they may differ when resuming) and their Experiment fields.
_EXECUTION_FLAGS = (
    ("timeout", "timeout_s"),
    ("executor", "executor"),
    ("jobs", "jobs"),
    ("scheduler", "scheduler"),
    ("scheduler_file", "scheduler_file"),
    ("references", "references"),
)
#: Experiment fields as flags, for messages.
_FLAGS = {"overrides": "--set", "task_params": "--task-param", "plugins": "--plugin", "timeout_s": "--timeout"}


def experiment_from_args(args: argparse.Namespace) -> Experiment:
    """The experiment the flags describe: the --config file (or the defaults), then each flag given."""
    exp = load_experiment(args.config) if args.config else Experiment()
    changes: dict[str, Any] = {}
    if args.backends is not None:
        changes["backends"] = [c.label for c in parse_backend_list(args.backends)]
    if args.tasks is not None:
        changes["tasks"] = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if args.modes is not None:
        changes["modes"] = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.seeds is not None:
        changes["seeds"] = expand_seeds(args.seeds)
    elif args.quick:
        changes["seeds"] = [0]
    if args.quick:
        changes["quick"] = True
    overrides = dict(exp.overrides)
    for key, value in args.overrides or []:
        overrides[key] = value
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    changes["overrides"] = overrides
    grid = dict(exp.grid)
    for key, values in args.grid or []:
        grid[key] = [v.strip() for v in values.split(",") if v.strip()]
    changes["grid"] = grid
    tasks = changes.get("tasks", exp.tasks)
    params = {t: dict(p) for t, p in exp.task_params.items()}
    for key, value in args.task_param or []:
        if "." not in key:
            raise UsageError(f"--task-param {key}={value}: expected TASK.KEY=VALUE, e.g. moons.noise=0.3")
        task, param = key.split(".", 1)
        if task not in tasks:
            raise UsageError(f"--task-param {key}: task {task!r} is not in --tasks ({', '.join(tasks)})")
        params.setdefault(task, {})[param] = value
    csv = {"path": args.csv_path, "target": args.csv_target, "kind": args.csv_kind}
    csv = {k: v for k, v in csv.items() if v is not None}
    if csv:
        if "csv" not in tasks:
            raise UsageError("--csv-path, --csv-target and --csv-kind set the csv task: add csv to --tasks")
        params.setdefault("csv", {}).update(csv)
    changes["task_params"] = params
    for flag, name in (("threads", "threads"), ("oversubscribe", "oversubscribe"), *_EXECUTION_FLAGS):
        if getattr(args, flag) is not None:
            changes[name] = getattr(args, flag)
    if args.plugin:
        changes["plugins"] = [*exp.plugins, *args.plugin]
    return dataclasses.replace(exp, **changes)


def cmd(args: argparse.Namespace) -> int:
    """Fill the experiment, run it (or resume it), print the summary; exit 1 when a job failed."""
    if args.resume:
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise UsageError("give either --out DIR or --resume DIR, not both")
        with usage_errors():
            _check_resume_flags(args)
        experiment, out = Experiment(), Path(args.resume)
    else:
        with usage_errors():
            experiment = experiment_from_args(args)
        out = Path(args.out) if args.out else timestamped_dir()
    try:
        execution = {name: getattr(args, flag) for flag, name in _EXECUTION_FLAGS if getattr(args, flag) is not None}
        if execution.get("scheduler_file"):
            execution["scheduler_file"] = str(Path(execution["scheduler_file"]).expanduser().absolute())
        outcome = execute(
            experiment,
            out,
            resume=bool(args.resume),
            progress=not args.no_progress,
            execution=execution if args.resume else None,
            argv=sys.argv[1:],
        )
    except (ExperimentError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if outcome.report_error:
        print(
            f"warning: the report could not be written ({outcome.report_error}); the results in "
            f"{out} are intact. Retry with: python {PROG} report {out}",
            file=sys.stderr,
        )
    else:
        print(f"Report: {out / 'report.html'}")
    from ..summary import print_summary

    print_summary(outcome.store, results=outcome.loaded())
    if outcome.interrupted:
        print(
            f"\nInterrupted by {outcome.interrupted}. Every finished job is saved in {out}.\n"
            f"Continue with: python {PROG} run --resume {out}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    phases = outcome.phases
    if phases.get("overhead_ratio"):
        steps = ", ".join(f"{k} {v:.1f}" for k, v in phases["phases_s"].items())
        print(
            f"\nWall time {phases['wall_s']:.1f} s ({steps}); timed training {phases['training_s']:.1f} s, "
            f"framework imports {phases['imports_s']:.1f} s ({phases['overhead_ratio']:.2f}x); untimed evaluation "
            f"between epochs {phases['evaluation_s']:.1f} s"
        )
    print(f"\nResults: {out}")
    return EXIT_FAILED_JOBS if any(r.get("status") in FAILED for r in outcome.records) else EXIT_OK


def _check_resume_flags(args: argparse.Namespace) -> None:
    """With --resume, flags that define the plan must agree with the saved experiment (or be left out)."""
    if args.config:
        raise UsageError(f"--resume {args.resume} continues its own experiment.toml: leave out --config")
    saved = read_experiment(args.resume)
    given = experiment_from_args(
        argparse.Namespace(**{**vars(args), "config": str(Path(args.resume) / EXPERIMENT_FILE)})
    )
    registry = discover(given.plugins)
    before, after = saved.to_dict(), given.resolved(registry).to_dict()
    differ = []
    for key in before:
        if key not in EXECUTION_FIELDS and before.get(key) != after.get(key):
            flag = _FLAGS.get(key, f"--{key.replace('_', '-')}")
            differ.append(f"{flag} (saved: {_shown(before.get(key))!r}, given: {_shown(after.get(key))!r})")
    if differ:
        raise UsageError(
            f"--resume {args.resume} continues the saved plan ({EXPERIMENT_FILE}), but {'; '.join(differ)}; "
            "leave these out to continue, or start a new run with --out"
        )


def _shown(value: Any) -> Any:
    """A list of names as typed on the command line: ['xor', 'digits'] -> 'xor,digits'."""
    if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
        return ",".join(map(str, value))
    return value
