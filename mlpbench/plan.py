"""Planning: the jobs an `Experiment` is made of, and the identity that names each one.

The plan is backends x tasks x grid points x modes x seeds. A grid dimension applies only
where it means something: ``moons.noise`` to the moons task, ``torch.compile`` to the torch
backend, so no job is run twice under two names. A job's id is a digest of everything that
determines its result, the data's fingerprint included, so ``--resume`` and a re-run from
``experiment.toml`` find the same jobs, and changed data never passes for the old.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .choices import BackendChoice
from .registry import Registry
from .task import Split, Task

if TYPE_CHECKING:
    from .experiment import Experiment
    from .worker.splits import SplitCache


@dataclass
class Job:
    """One training run: a backend with options on a task with parameters, a resolved spec, a seed."""

    backend: str  # label, with options: "torch[compile=true]"
    backend_name: str
    backend_options: dict[str, str]
    task: str
    task_params: dict[str, Any]
    seed: int
    spec: dict[str, Any]
    threads: int = 1
    mode: str = "controlled"
    grid_point: dict[str, Any] = field(default_factory=dict)  # this job's point of the experiment's grid
    data_fingerprint: str | None = None  # of the task's split for this seed; None where it cannot be loaded
    return_weights: bool = False
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            identity = [
                self.backend_name,
                self.backend_options,
                self.task,
                self.task_params,
                self.seed,
                self.spec,
                self.threads,
                self.mode,
                self.grid_point,
                self.data_fingerprint,
            ]
            digest = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]
            self.id = f"{self.backend}/{self.task}/seed={self.seed}/{digest}"

    def to_message(self) -> dict[str, Any]:
        """The job as sent to a worker."""
        return asdict(self)


def data_fingerprint(split: Split) -> str:
    """A digest of a split's arrays (shapes, dtypes and bytes): equal fingerprints mean identical data."""
    h = hashlib.sha256()
    for name, array in vars(split).items():
        a = np.ascontiguousarray(array)
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def make_plan(
    experiment: Experiment,
    registry: Registry,
    fingerprints: bool = True,
    notes: list[str] | None = None,
    splits: SplitCache | None = None,
) -> list[Job]:
    """Every job of `experiment` (already validated), in the order they run.

    Raises ValueError (or PluginError) naming the task, grid point and field when a combination
    makes no valid spec or task. With `fingerprints`, each task's split is loaded once per seed
    to fingerprint its data (a task that cannot be loaded gets None; its jobs record why), and
    what the data shows about the plan (a batch larger than the training set) goes to `notes`.
    The splits loaded for that are shared into `splits`, the run's split cache, so that the run
    does not load them a second time for its workers.
    """
    from .experiment import ExperimentError, grid_key_kind, spec_value

    choices = experiment.backend_choices()
    prints: dict[str, tuple[str | None, int | None]] = {}
    jobs = []
    for task_name in experiment.tasks:
        base_params = dict(experiment.task_params.get(task_name, {}))
        for choice in choices:
            dims = []
            for key, values in experiment.grid.items():
                kind, owner = grid_key_kind(key, choices, experiment.tasks)
                if (kind == "task" and owner != task_name) or (kind == "backend" and owner != choice.name):
                    continue
                dims.append((key, kind, values))
            for combo in itertools.product(*(values for _, _, values in dims)):
                point = {key: value for (key, _, _), value in zip(dims, combo)}
                params, options = dict(base_params), dict(choice.options)
                overrides = dict(experiment.overrides)
                threads = experiment.threads
                for (key, kind, _), value in zip(dims, combo):
                    if kind == "spec":
                        overrides[key] = value
                    elif kind == "task":
                        params[key.partition(".")[2]] = value
                    elif kind == "backend":
                        options[key.partition(".")[2]] = _option_text(value)
                    elif kind == "threads":
                        threads = int(value)
                where = f"task {task_name}" + (f" at grid point {_point_text(point)}" if point else "")
                try:
                    task = registry.task(task_name)(**params)
                    task.validate()
                    spec = task.spec()
                    changes = {k: spec_value(k, v) for k, v in overrides.items()}
                    if experiment.quick and "epochs" not in changes:
                        changes["epochs"] = max(2, (spec.epochs + 1) // 2)
                    spec = spec.replace(**changes)
                except ExperimentError:
                    raise
                except ValueError as exc:
                    raise ExperimentError(f"{where}: {exc}") from None
                params = {k: task.config[k] for k in params}  # as converted by the task: "0.3" is 0.3
                for key, kind, _ in dims:  # the point as its values were used: one spelling per value
                    if kind == "task":
                        point[key] = task.config[key.partition(".")[2]]
                    elif kind == "backend":
                        point[key] = options[key.partition(".")[2]]
                    elif kind == "threads":
                        point[key] = threads
                backend = BackendChoice(choice.name, tuple(options.items()))
                if backend.options != choice.options:
                    entry = registry.backends.get(choice.name)
                    if entry is not None and entry.cls is not None:
                        try:
                            entry.cls(**dict(backend.options))
                        except ValueError as exc:
                            raise ExperimentError(f"grid point {_point_text(point)}: {exc}") from None
                for mode in experiment.modes:
                    for seed in experiment.seeds:
                        fp, n_train = _fingerprint(task, seed, prints, splits) if fingerprints else (None, None)
                        if notes is not None and n_train is not None and spec.batch_size > n_train:
                            note = (
                                f"task {task_name}{' at ' + _point_text(point) if point else ''}: batch_size "
                                f"{spec.batch_size} is larger than the training set ({n_train} samples); every "
                                "epoch is one full batch"
                            )
                            if note not in notes:
                                notes.append(note)
                        jobs.append(
                            Job(
                                backend=backend.label,
                                backend_name=backend.name,
                                backend_options=dict(backend.options),
                                task=task_name,
                                task_params=_plain(params),
                                seed=seed,
                                spec=spec.to_dict(),
                                threads=threads,
                                mode=mode,
                                grid_point=_plain(point),
                                data_fingerprint=fp,
                            )
                        )
    return jobs


def _fingerprint(
    task: Task, seed: int, cache: dict[str, tuple[str | None, int | None]], splits: SplitCache | None = None
) -> tuple[str | None, int | None]:
    """The data fingerprint of a task's split for `seed` and its training-set size (None, None: not loadable)."""
    key = json.dumps([task.name, task.config, seed], sort_keys=True, default=str)
    if key not in cache:
        try:
            if task.unavailable():
                cache[key] = (None, None)
            else:
                shared = splits.share(task, seed) if splits is not None and task.share_split else None
                split = task.load(seed) if shared is None else shared
                cache[key] = (data_fingerprint(split), len(split.X_train))
        except Exception:  # noqa: BLE001 - the worker loads it again and records the error with the job
            cache[key] = (None, None)
    return cache[key]


def _option_text(value: Any) -> str:
    """A backend option as it is written in a label: ``true``, not ``True``."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _point_text(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """JSON-plain values (tuples as lists), so a job compares equal to its stored record."""
    return json.loads(json.dumps(d, default=str))
