"""Running an `Experiment` into a results directory: the one path the CLI and ``mlpbench.run`` share.

Everything that can be wrong with an experiment is found before the first job starts; the
directory gets ``experiment.toml`` (the resolved experiment, the only thing ``--resume`` reads),
``config.json`` (its machine-readable twin), ``env.json`` and then one record per finished job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import env as envmod
from . import references
from .experiment import EXPERIMENT_FILE, Experiment, ExperimentError
from .painter import Painter
from .plan import Job, make_plan
from .references import REFERENCES_FILE
from .registry import Registry, discover
from .runner import run_with_progress
from .store import CONFIG_FILE, ENV_FILE, TIMINGS_FILE, Results, ResultsStore, export_csv, load_results
from .worker import SplitCache


@dataclass
class Outcome:
    """What one execution did: where, which jobs, the new records, and whether a signal stopped it."""

    experiment: Experiment
    store: ResultsStore
    jobs: list[Job]
    records: list[dict[str, Any]] = field(default_factory=list)
    interrupted: str | None = None  # the signal's name
    report_error: str | None = None  # the reports could not be written (the results are intact)
    phases: dict[str, Any] = field(default_factory=dict)  # wall time per phase (timings.json)
    results: Results | None = None  # the whole directory once every job is in: exports, reports and summary read it

    def loaded(self) -> Results:
        """The results directory, as the run loaded it after its jobs (or loaded now)."""
        return self.results if self.results is not None else load_results(self.store.path)


def plan(
    experiment: Experiment,
    registry: Registry | None = None,
    keep_broken: bool = True,
    validated: Callable[[], object] | None = None,
    splits: SplitCache | None = None,
) -> tuple[Experiment, list[Job], Registry]:
    """Resolve and validate `experiment` and make its plan, without running anything.

    `validated` is called once the experiment is known to be valid, before its data is loaded;
    the splits loaded for the plan are shared into `splits` (see `plan.make_plan`).
    """
    if registry is None:
        registry = discover(experiment.plugins)
    resolved = experiment.resolved(registry, keep_broken)
    if validated is not None:
        validated()
    notes: list[str] = []
    jobs = make_plan(resolved, registry, notes=notes, splits=splits)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    return resolved, jobs, registry


def execute(
    experiment: Experiment,
    out: str | Path,
    resume: bool = False,
    progress: bool = False,
    execution: dict[str, Any] | None = None,
    argv: list[str] | None = None,
    before_report: Callable[[ResultsStore], None] | None = None,
    keep_broken: bool = True,
) -> Outcome:
    """Validate, plan and run `experiment` into `out` (or continue it there with `resume`).

    Raises ExperimentError (a ValueError) before any work for a bad experiment or directory.
    `before_report` adds derived files the report shows; `keep_broken` keeps a broken installed
    plugin in the default backend list (its jobs become error records).
    """
    store = ResultsStore(out)
    clock = Phases()
    # The report's drawing processes start once the experiment is valid, beside the loading and
    # fingerprinting of its data, and are ready before anything is measured: the report then does not
    # wait a second or two for them. The splits the plan loads stay in the run's split cache for its
    # local workers, so nothing loads them twice.
    with contextlib.closing(Painter()) as painter, tempfile.TemporaryDirectory(prefix="mlpbench-splits-") as split_dir:
        if resume:
            experiment = read_experiment(store.path)
        local = (execution or {}).get("executor", experiment.executor) != "dask"  # Dask workers load their own
        with clock("plan"):
            experiment, jobs, registry = plan(
                experiment,
                keep_broken=keep_broken,
                validated=painter.start,
                splits=SplitCache(split_dir) if local else None,
            )
        if execution:  # how a run executes (timeout, executor, jobs) does not change what it computes
            experiment = dataclasses.replace(experiment, **execution)
            experiment.validate(registry)
        if resume:
            _check_same_data(store, jobs)
        elif store.has_results() or (store.path / EXPERIMENT_FILE).exists():
            raise ExperimentError(
                f"{store.path} already holds results; use --resume {store.path} to continue it, or choose another --out"
            )
        store.create()
        moved = store.repair() if resume else 0
        if moved:
            print(
                f"warning: {moved} incomplete record(s) in {store.runs_path} (a run killed while writing) moved "
                f"to {store.runs_path}.incomplete; those jobs run again",
                file=sys.stderr,
            )
        if not resume:
            experiment.write(store.path)
            # The machine-readable twin of experiment.toml, with what was typed and how many jobs it made.
            store.write_json(CONFIG_FILE, {**experiment.to_dict(), "planned_jobs": len(jobs), "argv": argv or []})
        painter.wait_ready()  # nothing of its start runs beside the measurements that follow
        if not (store.path / ENV_FILE).exists():
            with clock("environment"):
                store.write_json(ENV_FILE, envmod.collect(experiment.threads, peak_threads={j.threads for j in jobs}))
        with deferred_signals():  # from here to the last derived file, Ctrl-C cannot leave half a file
            with clock("jobs"):
                if experiment.executor == "dask":
                    from .dask_executor import run_on_dask

                    records, interrupted = run_on_dask(registry, store, jobs, experiment, progress)
                else:
                    records, interrupted = run_with_progress(
                        registry, store, jobs, experiment.timeout_s, progress, experiment.jobs, split_dir
                    )
            outcome = Outcome(experiment, store, jobs, records, interrupted)
            if records and not interrupted:
                with clock("environment"):  # the peak again, now the machine has had the jobs' time to drift
                    env = store.read_json(ENV_FILE)
                    if (again := envmod.remeasure_peak(env)) is not env:
                        store.write_json(ENV_FILE, again)
            with clock("exports"):
                outcome.results = load_results(store.path)
                export_csv(store, outcome.results)
            if experiment.references and not interrupted and not (store.path / REFERENCES_FILE).exists():
                with clock("references"):
                    store.write_json(REFERENCES_FILE, references.compute(registry, jobs))
            try:
                with clock("reports"):
                    if before_report is not None:
                        before_report(store)
                    from .report import write_reports

                    write_reports(store.path, painter, outcome.results)
            except Exception as exc:  # the results are on disk; a broken report must not hide them
                outcome.report_error = f"{type(exc).__name__}: {exc}"
        outcome.phases = clock.breakdown(records)
        store.write_json(TIMINGS_FILE, outcome.phases)
        return outcome


class Phases:
    """Wall time of each phase of a run, so the harness's own cost is a measured figure."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.start = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def breakdown(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The phases, and within the jobs the timed training and the framework imports of this run."""
        wall = time.perf_counter() - self.start
        training = sum(r.get("train_time_s") or 0.0 for r in records)
        # Jobs of one worker share its start-up: count each worker's import once.
        starts = {
            (r.get("backend"), r.get("threads"), r["worker_import_s"]) for r in records if r.get("worker_import_s")
        }
        imports = sum(s for _, _, s in starts)
        evaluation = sum(r.get("eval_s") or 0.0 for r in records)
        return {
            "wall_s": wall,
            "phases_s": self.seconds,
            "training_s": training,
            "imports_s": imports,
            "evaluation_s": evaluation,
            "overhead_ratio": wall / (training + imports) if training + imports > 0 else None,
        }


@contextlib.contextmanager
def deferred_signals() -> Iterator[list[str]]:
    """SIGINT and SIGTERM are noted, not acted on, while the results files are written.

    The runner installs its own handler while jobs run (a signal stops the run and saves what is
    finished); this one absorbs the second and third Ctrl-C of an impatient user during the writing
    of CSV exports and reports that follows, which would otherwise leave a truncated file.
    """
    seen: list[str] = []

    def note(signum: int, frame: object) -> None:
        if not seen:
            print("(writing the results files; they are complete in a moment)", file=sys.stderr)
        seen.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield seen
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def read_experiment(directory: str | Path) -> Experiment:
    """The experiment a results directory was made by: its ``experiment.toml``, and nothing else."""
    path = Path(directory)
    if not path.is_dir():
        raise ExperimentError(f"--resume {directory}: no results there to resume (no such directory)")
    file = path / EXPERIMENT_FILE
    if not file.exists():
        raise ExperimentError(
            f"--resume {directory}: it has no {EXPERIMENT_FILE}, so its plan is unknown and nothing was run "
            "(a directory from an older mlpbench, or the file was deleted). Start a new run with --out, or "
            f"restore {file}"
        )
    return Experiment.from_toml(file)


def _check_same_data(store: ResultsStore, jobs: list[Job]) -> None:
    """Refuse to resume on data that differs from the data the stored records were trained on."""
    planned = {_data_key(j.task, j.task_params, j.seed): j for j in jobs}
    for record in store.records():
        job = planned.get(_data_key(record.get("task"), record.get("task_params") or {}, record.get("seed")))
        old = record.get("data_fingerprint")
        if job is None or not old or not job.data_fingerprint or old == job.data_fingerprint:
            continue
        where = f" (file {job.task_params['path']})" if "path" in job.task_params else ""
        raise ExperimentError(
            f"--resume {store.path}: the data of task {job.task!r}{where} changed since this run started: its records "
            f"were trained on data with fingerprint {old}, the data now has {job.data_fingerprint}. Resuming would "
            "mix two data sets; nothing was run. Restore the original data, or start a new run with --out"
        )


def _data_key(task: Any, params: dict[str, Any], seed: Any) -> str:
    import json

    return json.dumps([task, params, seed], sort_keys=True, default=str)


def run(experiment: Experiment, out: str | Path | None = None, progress: bool = False) -> Results:
    """Run `experiment` from Python (a notebook, a script) and return its results as pandas tables.

    The same guarantees as ``run_bench.py run``: validated before any work (ExperimentError),
    every finished job on disk at once, ``experiment.toml`` to reproduce it, reports written.
    `out` defaults to a new timestamped directory under results/.
    """
    from .store import timestamped_dir

    outcome = execute(experiment, out or timestamped_dir(), progress=progress)
    if outcome.interrupted:
        raise KeyboardInterrupt(
            f"interrupted by {outcome.interrupted}; finished jobs are in {outcome.store.path} "
            f"(continue with mlpbench.resume({str(outcome.store.path)!r}))"
        )
    return outcome.loaded()


def resume(directory: str | Path, progress: bool = False) -> Results:
    """Run what is missing from the results directory `directory` (its own experiment.toml) and load it."""
    outcome = execute(Experiment(), directory, resume=True, progress=progress)
    return outcome.loaded()
