"""`Experiment`: the one description of a run, read from TOML or filled by the command line.

The CLI and experiment files only fill an `Experiment`; `validate` checks it as a whole
before any work starts, and `resolved` pins what "the default" meant on this machine (the
installed backends, absolute file names), so that the ``experiment.toml`` every results
directory keeps re-runs the very same jobs anywhere.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from .choices import DEFAULT_TASKS, BackendChoice, default_backends, parse_backend_list
from .files import write_atomic
from .registry import PluginError, Registry
from .spec import ModelSpec, parse_field

EXPERIMENT_FILE = "experiment.toml"
MODES = ("controlled", "native")
EXECUTORS = ("local", "dask")
#: How a run executes, not what it computes: these may differ when a run is resumed.
EXECUTION_FIELDS = ("timeout_s", "executor", "jobs", "scheduler", "scheduler_file", "references")
MAX_SEED = 2**32 - 1  # what every framework's seeding accepts (NumPy's legacy seeding, torch.manual_seed)
#: Grid keys that are neither a ModelSpec field nor TASK.PARAM / BACKEND.OPTION.
RUN_SETTINGS = ("threads",)
#: Spec fields that belong to the task's data and cannot be set or swept.
FIXED_FIELDS = ("n_inputs", "n_outputs", "extra")


class ExperimentError(ValueError):
    """An experiment that cannot run as written; the message names the field and what is allowed."""


@dataclass
class Experiment:
    """What to train, on what, how often, and how to execute it.

    Every field is a key of an experiment file (``run --config FILE.toml``) of the same name.
    """

    backends: list[str] | None = None  # labels with options, "keras[engine=jax]"; None: every installed backend
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    task_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # {"moons": {"noise": 0.3}}
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    overrides: dict[str, Any] = field(default_factory=dict)  # ModelSpec fields for every task: {"lr": 0.01}
    grid: dict[str, list[Any]] = field(default_factory=dict)  # swept settings, see `grid_key_kind`
    modes: list[str] = field(default_factory=lambda: ["controlled"])  # controlled: the runner owns weights, batches
    threads: int = 1  # threads per worker, for every framework and BLAS
    oversubscribe: bool = False  # allow more threads than this machine has cores
    timeout_s: float = 600.0  # per job
    executor: str = "local"  # where jobs run
    jobs: int = 1  # jobs at once (local: pinned to disjoint cores; dask: workers of a LocalCluster)
    scheduler: str | None = None  # dask: address of an existing scheduler (tcp://host:8786); None: a LocalCluster
    scheduler_file: str | None = None  # dask: a scheduler file written by `dask scheduler --scheduler-file`
    quick: bool = False  # half of each task's own epochs (unless epochs is set or swept)
    references: bool = True  # score a linear model and gradient boosting on the same splits, for the report
    plugins: list[str] = field(default_factory=list)  # Python files with Backend / Task classes
    name: str = ""  # a preset's or a file's name, for the report
    description: str = ""

    # ------------------------------------------------------------------ files
    @classmethod
    def from_toml(cls, path: str | Path) -> Experiment:
        """Read an experiment file; unknown keys and wrongly typed values raise ExperimentError naming both."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ExperimentError(f"{p}: cannot read the experiment file: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ExperimentError(f"{p}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source=str(p), base=p.parent)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "experiment", base: Path | None = None) -> Experiment:
        """An experiment from plain data (a parsed TOML file); relative file names are taken from `base`."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ExperimentError(
                f"{source}: unknown key {', '.join(map(repr, unknown))}; valid keys: {', '.join(names)}"
            )
        values = {}
        for key, value in data.items():
            values[key] = _check_type(source, key, value)
        if "seeds" in values and isinstance(values["seeds"], int):
            values["seeds"] = list(range(values["seeds"]))
        if base is not None:
            if "plugins" in values:
                values["plugins"] = [str((base / p).expanduser()) for p in values["plugins"]]
            csv = values.get("task_params", {}).get("csv", {})
            if isinstance(csv.get("path"), str):
                csv["path"] = str((base / csv["path"]).expanduser())
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain data with one key per field (None left out: TOML has no null)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def to_toml(self) -> str:
        """The experiment file that reproduces this experiment."""
        header = (
            "# mlpbench experiment: `python run_bench.py run --config THIS_FILE --out DIR` runs these jobs again.\n"
        )
        return header + tomli_w.dumps(self.to_dict())

    def write(self, directory: str | Path) -> Path:
        """Write ``experiment.toml`` into `directory` atomically; return its path."""
        path = Path(directory) / EXPERIMENT_FILE
        write_atomic(path, self.to_toml())
        return path

    # ------------------------------------------------------------- validation
    def backend_choices(self) -> list[BackendChoice]:
        """The backends as parsed choices (name and options)."""
        return parse_backend_list(",".join(self.backends or []))

    def resolved(self, registry: Registry, keep_broken: bool = True) -> Experiment:
        """A validated copy with the default backend list filled in and file names absolute."""
        exp = dataclasses.replace(self)
        if exp.backends is None:
            exp.backends = default_backends(registry, keep_broken)
        exp.plugins = [str(Path(p).expanduser().absolute()) for p in exp.plugins]
        csv = exp.task_params.get("csv")
        if csv and isinstance(csv.get("path"), str):
            exp.task_params = {
                **exp.task_params,
                "csv": {**csv, "path": str(Path(csv["path"]).expanduser().absolute())},
            }
        exp.validate(registry)
        exp.overrides = {k: canonical_spec_value(k, v) for k, v in exp.overrides.items()}
        choices = exp.backend_choices()
        grid = {}
        for key, values in exp.grid.items():
            kind, _ = grid_key_kind(key, choices, exp.tasks)
            if kind == "spec":
                grid[key] = [canonical_spec_value(key, v) for v in values]
            elif kind == "threads":
                grid[key] = [int(v) for v in values]
            else:
                grid[key] = list(values)
        exp.grid = grid
        return exp

    def validate(self, registry: Registry) -> None:
        """Check every value before any work starts; raise ExperimentError naming the field and what is allowed."""
        try:
            choices = self.backend_choices()
        except ValueError as exc:
            raise ExperimentError(f"backends: {exc}") from None
        if not choices:
            raise ExperimentError("backends: no backend to run: name at least one")
        for choice in choices:
            entry = registry.backends.get(choice.name)
            if entry is not None and entry.cls is None:
                continue  # a broken installed plugin: its jobs are recorded as errors
            try:
                registry.backend(choice.name)(**dict(choice.options))
            except (ValueError, PluginError) as exc:
                raise ExperimentError(str(exc)) from None
        if not self.tasks:
            raise ExperimentError("tasks: no task to run: name at least one")
        if len(set(self.tasks)) != len(self.tasks):
            raise ExperimentError(f"tasks: {self.tasks}: a task is named twice")
        for task in self.tasks:
            try:
                registry.task(task)
            except PluginError as exc:
                raise ExperimentError(str(exc)) from None
        for task in self.task_params:
            if task not in self.tasks:
                raise ExperimentError(f"task_params: task {task!r} is not in tasks ({', '.join(self.tasks)})")
        if not self.seeds:
            raise ExperimentError("seeds: at least one seed")
        for s in self.seeds:
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
                raise ExperimentError(f"seeds: {s!r}: every seed must be an integer in [0, {MAX_SEED}]")
        if len(set(self.seeds)) != len(self.seeds):
            raise ExperimentError(f"seeds: {self.seeds}: seeds must be distinct")
        self._check_threads("threads", self.threads)
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, (int, float)):
            raise ExperimentError(f"timeout_s: {self.timeout_s!r}: expected a number of seconds")
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ExperimentError(f"timeout_s: {self.timeout_s!r}: a timeout must be a positive, finite duration")
        for mode in self.modes:
            if mode not in MODES:
                raise ExperimentError(f"modes: {mode!r}: allowed modes are {', '.join(MODES)}")
        if not self.modes or len(set(self.modes)) != len(self.modes):
            raise ExperimentError(f"modes: {self.modes}: name each mode once, at least one")
        if self.executor not in EXECUTORS:
            raise ExperimentError(f"executor: {self.executor!r}: allowed executors are {', '.join(EXECUTORS)}")
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise ExperimentError(f"jobs: {self.jobs!r}: must be an integer >= 1")
        if (self.scheduler or self.scheduler_file) and self.executor != "dask":
            raise ExperimentError("scheduler / scheduler_file: only with executor dask (--executor dask)")
        if self.scheduler and self.scheduler_file:
            raise ExperimentError("scheduler and scheduler_file: give one address, not both")
        if self.executor == "dask":
            import importlib.util

            if importlib.util.find_spec("distributed") is None:
                raise ExperimentError(
                    "executor dask: dask.distributed is not installed here; pip install 'mlpbench[dask]' "
                    "(or dask[distributed])"
                )
        most = max([self.threads, *(int(v) for v in self.grid.get("threads", []) if str(v).isdigit())])
        if self.jobs > 1 and self.jobs * most > (os.cpu_count() or 1) and not self.oversubscribe:
            raise ExperimentError(
                f"jobs: {self.jobs} jobs at once with {most} thread(s) each need {self.jobs * most} cores; this "
                f"machine has {os.cpu_count()}. Use fewer --jobs or --threads, or --oversubscribe (timings are then "
                "not meaningful)"
            )
        _check_overrides("overrides", self.overrides)
        for key, values in self.grid.items():
            kind, owner = grid_key_kind(key, choices, self.tasks)
            if not isinstance(values, list) or not values:
                raise ExperimentError(f"grid: {key}: expected a non-empty list of values")
            if len({_freeze(v) for v in values}) != len(values):
                raise ExperimentError(f"grid: {key}={values}: a value is listed twice")
            if kind == "spec" and key in self.overrides:
                raise ExperimentError(f"grid: {key} is also set in overrides (--set); set it or sweep it, not both")
            for v in values:
                if kind == "spec":
                    _check_overrides(f"grid: {key}", {key: v})
                elif kind == "threads":
                    self._check_threads(f"grid: {key}", v)
        # Every combination must make a valid spec and task: the plan is built to find out (and thrown away).
        from .plan import make_plan

        try:
            make_plan(self, registry, fingerprints=False)
        except PluginError as exc:
            raise ExperimentError(str(exc)) from None
        except ExperimentError:
            raise
        except ValueError as exc:
            raise ExperimentError(str(exc)) from None

    def _check_threads(self, where: str, value: Any) -> None:
        from .values import coerce

        try:
            n = coerce(where, value, 1)
        except ValueError as exc:
            raise ExperimentError(str(exc)) from None
        if n < 1:
            raise ExperimentError(f"{where}: {value!r}: at least 1 thread")
        cores = os.cpu_count() or 1
        if n > cores and not self.oversubscribe:
            raise ExperimentError(
                f"{where}: {n} threads but this machine has {cores} cores; oversubscribed timings are "
                "meaningless (one framework was measured 300x slower). Use at most "
                f"{cores}, or allow it explicitly with --oversubscribe (oversubscribe = true)"
            )


def grid_key_kind(key: str, backends: list[BackendChoice], tasks: list[str]) -> tuple[str, str | None]:
    """What a grid key sweeps: ("spec", None), ("threads", None), ("task", TASK) or ("backend", BACKEND)."""
    if key in RUN_SETTINGS:
        return key, None
    if "." in key:
        owner, _, name = key.partition(".")
        if owner in tasks:
            return "task", owner
        if owner in {b.name for b in backends}:
            return "backend", owner
        raise ExperimentError(
            f"grid: {key}: {owner!r} is neither a task of this run ({', '.join(tasks)}) nor one of its "
            f"backends ({', '.join(b.name for b in backends)}); sweep TASK.PARAM or BACKEND.OPTION"
        )
    fields = sorted(f.name for f in dataclasses.fields(ModelSpec) if f.name not in FIXED_FIELDS)
    if key in fields:
        return "spec", None
    raise ExperimentError(
        f"grid: unknown setting {key!r}; sweep a ModelSpec field ({', '.join(fields)}), threads, "
        "TASK.PARAM (moons.noise) or BACKEND.OPTION (torch.compile)"
    )


def _check_overrides(where: str, overrides: dict[str, Any]) -> None:
    fields = {f.name for f in dataclasses.fields(ModelSpec)} - set(FIXED_FIELDS)
    for key, value in overrides.items():
        if key not in fields:
            raise ExperimentError(
                f"{where}: unknown ModelSpec field {key!r}; valid fields: {', '.join(sorted(fields))}"
            )
        try:
            parsed = parse_field(key, _as_text(key, value))
        except ValueError as exc:
            raise ExperimentError(str(exc)) from None
        if isinstance(parsed, float) and not math.isfinite(parsed):
            raise ExperimentError(f"{where}: ModelSpec.{key} = {value!r}: must be a finite number")


def _as_text(key: str, value: Any) -> Any:
    """A value from a file in the form `parse_field` reads: hidden as a list of ints becomes "64,32"."""
    if key == "hidden" and isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def spec_value(key: str, value: Any) -> Any:
    """A spec setting from the command line or a file, as the ModelSpec field takes it."""
    return parse_field(key, _as_text(key, value))


def canonical_spec_value(key: str, value: Any) -> Any:
    """A spec setting as an experiment file stores it: typed numbers, ``hidden`` as "64" or "64x64".

    One spelling per value, so ``--grid hidden=16`` and ``hidden = [16]`` in a file are the same job.
    """
    parsed = spec_value(key, value)
    if isinstance(parsed, tuple):
        return "x".join(str(v) for v in parsed)
    return parsed


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


_SCALAR = (str, int, float, bool)
_TYPES: dict[str, tuple[str, Any]] = {
    "backends": ("a list of backend names", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "tasks": ("a list of task names", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "task_params": (
        "a table of tables: [task_params.moons] noise = 0.3",
        lambda v: (
            isinstance(v, dict)
            and all(isinstance(t, dict) and all(isinstance(x, _SCALAR) for x in t.values()) for t in v.values())
        ),
    ),
    "seeds": (
        "a count (3) or a list of integers ([0, 5, 9])",
        lambda v: (
            (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
            or (isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v))
        ),
    ),
    "overrides": (
        "a table of ModelSpec fields: [overrides] lr = 0.01",
        lambda v: isinstance(v, dict) and all(isinstance(x, (*_SCALAR, list)) for x in v.values()),
    ),
    "grid": (
        'a table of lists: [grid] hidden = [16, 64] and "moons.noise" = [0.1, 0.3]',
        lambda v: isinstance(v, dict) and all(isinstance(x, list) for x in v.values()),
    ),
    "modes": ("a list of modes", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "threads": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "oversubscribe": ("true or false", lambda v: isinstance(v, bool)),
    "timeout_s": ("a number of seconds", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "executor": ("a string", lambda v: isinstance(v, str)),
    "jobs": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "scheduler": ("an address like tcp://host:8786", lambda v: isinstance(v, str)),
    "scheduler_file": ("a file name", lambda v: isinstance(v, str)),
    "quick": ("true or false", lambda v: isinstance(v, bool)),
    "references": ("true or false", lambda v: isinstance(v, bool)),
    "plugins": ("a list of file names", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "name": ("a string", lambda v: isinstance(v, str)),
    "description": ("a string", lambda v: isinstance(v, str)),
}


def _check_type(source: str, key: str, value: Any) -> Any:
    expected, ok = _TYPES[key]
    if not ok(value):
        raise ExperimentError(f"{source}: key {key!r} = {value!r}: expected {expected}")
    if key == "timeout_s":
        return float(value)
    return value


# ------------------------------------------------------------------ presets
def presets() -> dict[str, str]:
    """The shipped experiments: name -> description."""
    out = {}
    for entry in sorted(resources.files("mlpbench").joinpath("presets").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            out[entry.name[: -len(".toml")]] = str(data.get("description", ""))
    return out


def load_experiment(name_or_path: str) -> Experiment:
    """An experiment file, or a shipped preset by name (``default``, ``scaling``, ``sweep-width``)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return Experiment.from_toml(path)
    preset = resources.files("mlpbench").joinpath("presets", f"{name_or_path}.toml")
    if preset.is_file():
        data = tomllib.loads(preset.read_text(encoding="utf-8"))
        return Experiment.from_dict(data, source=f"preset {name_or_path}")
    if path.suffix == ".toml" or os.sep in name_or_path:
        raise ExperimentError(f"--config {name_or_path}: no such file")
    raise ExperimentError(
        f"--config {name_or_path}: neither a file nor a preset; presets: {', '.join(presets())} "
        "(run_bench.py list shows them)"
    )
