"""mlpbench: train the same multilayer perceptron on several backends and compare them."""

from __future__ import annotations

from .backend import Backend, Weights
from .spec import ModelSpec
from .task import Split, Task

__version__ = "0.1.0"

__all__ = ["Backend", "ModelSpec", "Split", "Task", "Weights", "load_results", "__version__"]


def load_results(path):  # noqa: ANN001, ANN201 - thin lazy re-export, typed in store.py
    """Load a results directory; see `mlpbench.store.load_results`."""
    from .store import load_results as _load

    return _load(path)
