"""mlpbench: train the same multilayer perceptron on several backends and compare them.

import mlpbench
results = mlpbench.run(mlpbench.Experiment(backends=["numpy", "torch"], tasks=["digits"],
                                           grid={"hidden": [16, 64, 256]}))
results.runs.groupby(["backend", "grid_hidden"])["epoch_time_s"].median()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .backend import Backend, NativeFit, Weights
from .experiment import Experiment, ExperimentError
from .spec import ModelSpec
from .task import Split, Task

if TYPE_CHECKING:
    from pathlib import Path

    from .store import Results

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "Experiment",
    "ExperimentError",
    "ModelSpec",
    "NativeFit",
    "Split",
    "Task",
    "Weights",
    "load_results",
    "resume",
    "run",
    "__version__",
]


def load_results(path: str | Path) -> Results:
    """Load a results directory as pandas tables; see `mlpbench.store.load_results`."""
    from .store import load_results as _load

    return _load(path)


def run(experiment: Experiment, out: str | Path | None = None, progress: bool = False) -> Results:
    """Run an experiment into `out` (default results/<timestamp>) and return its results; see `mlpbench.session.run`."""
    from .session import run as _run

    return _run(experiment, out, progress)


def resume(directory: str | Path, progress: bool = False) -> Results:
    """Run what is missing from a results directory, by its own experiment.toml; see `mlpbench.session.resume`."""
    from .session import resume as _resume

    return _resume(directory, progress)
