"""The task contract: a data set, its split, a default network and a quality target."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .metrics import METRICS_BY_KIND
from .spec import ModelSpec
from .values import coerce


@dataclass
class Split:
    """Train / validation / test arrays, already preprocessed (fitted on train only).

    ``X_*`` are float64 ``(n, n_features)``; ``y_*`` are integer labels ``(n,)`` for
    classification and float64 ``(n, n_outputs)`` for regression.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    def __repr__(self) -> str:
        return (
            f"Split(train={len(self.X_train)}, val={len(self.X_val)}, test={len(self.X_test)}, "
            f"features={self.X_train.shape[1]})"
        )


class Task(ABC):
    """A benchmark problem. Subclasses set the class attributes and implement `load` and `spec`."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "multiclass"  # "binary", "multiclass" or "regression" (the keys of METRICS_BY_KIND)
    #: Target for time-to-target: the metric and the value to reach on validation data.
    target_metric: ClassVar[str] = "accuracy"
    target: ClassVar[float] = 0.9
    #: Task parameters and their defaults (``--task-param key=value`` on the command line).
    params: ClassVar[dict[str, Any]] = {}
    description: ClassVar[str] = ""
    #: Whether the runner builds the split once, before any worker starts, and shares it with
    #: every worker. False for synthetic data that is cheaper to regenerate than to copy.
    share_split: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.params)
        if unknown:
            valid = ", ".join(sorted(self.params)) or "none"
            raise ValueError(f"task {self.name!r} has no parameter {', '.join(sorted(unknown))}; valid: {valid}")
        self.config = {
            **self.params,
            **{k: coerce(f"task {self.name}: parameter {k}", v, self.params[k]) for k, v in params.items()},
        }

    @property
    def metrics(self) -> tuple[str, ...]:
        """Names of the test metrics reported for this task's kind."""
        return METRICS_BY_KIND[self.kind]

    def unavailable(self) -> str | None:
        """Why the data cannot be had here (e.g. a download that is impossible), or None."""
        return None

    def validate(self) -> None:
        """Check the task's parameters and inputs before any work starts; raise ValueError."""

    @abstractmethod
    def load(self, seed: int) -> Split:
        """The preprocessed split for `seed`."""

    @abstractmethod
    def spec(self) -> ModelSpec:
        """The default network and training for this task."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config.items())})"
