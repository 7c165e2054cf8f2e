"""The backend contract: what a plugin implements so the runner can train it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from .spec import ACTIVATIONS, DTYPES, LOSSES, OPTIMIZERS, ModelSpec

Weights = list[tuple[np.ndarray, np.ndarray]]


class Backend(ABC):
    """A framework that trains a `ModelSpec`.

    Subclasses set the class attributes below and implement `build`, `train_epoch`,
    `predict` and `get_weights`. NumPy arrays cross the boundary both ways; a backend
    converts inside. A backend module must import its framework lazily (inside
    `prepare` or `build`), so that listing and planning never import it.

    Data conventions: ``X`` is ``(n, n_inputs)`` in the spec's dtype. ``y`` is an
    integer label vector ``(n,)`` for classification (cross_entropy and
    binary_cross_entropy) and ``(n, n_outputs)`` floats for regression.

    The spec: build what its fields say. ``spec.extra`` is a free-form dict of notes that a
    task's `spec()` may attach (``--set`` cannot change it); it travels with the spec
    (`ModelSpec.to_dict`, so keep it JSON-able) but takes no part in the spec's equality or
    hash: two specs that differ only there describe the same network and training. A
    backend may ignore it and must not train differently because of it.

    Devices: ``devices`` lists the values the backend's ``device`` option accepts, and
    `skip` turns a job whose ``device`` option is not among them into a reason. The
    default ``("cpu",)`` is right for a CPU-only backend: it needs no ``device`` option
    (`skip` then reads ``"cpu"``); one that runs elsewhere declares e.g.
    ``("cpu", "cuda")`` and an option ``device`` with its default.

    Parity (``run_bench.py parity`` and the conformance kit, both against the NumPy
    backend, the reference, which declares none of these):

    ``parity_target``
        The largest relative difference from the NumPy reference (``max|a-b| / max|numpy|``
        over the per-epoch loss and the final weights, float64) the backend promises where
        the spec maps exactly onto the framework; None: the rows are measured, not checked.
    ``parity_notes``
        Optimizer name (or ``"*"`` for every optimizer) -> why the framework's rule differs
        from the spec's, where it cannot be mapped exactly. Those rows get no target and
        print the note; the conformance kit treats that optimizer's ``parity[optimizer=...]``
        check as a known difference (it must fail; an xfail in the pytest helpers) with the
        note as the reason.
    ``parity_mapping``
        Optimizer name (or ``"*"``) -> how a rule that differs is mapped exactly onto the
        spec (e.g. a rescaled hyper-parameter). Printed as a note; the target still applies.

    The parity table prefixes each note with the backend's name.
    """

    #: Identity of the backend (the entry-point name for registered plugins).
    name: ClassVar[str] = ""
    #: Modules that must be importable; missing ones make every job "not_installed".
    requires: ClassVar[tuple[str, ...]] = ()
    #: Capabilities; `skip` turns anything outside them into a reason.
    activations: ClassVar[tuple[str, ...]] = ACTIVATIONS
    losses: ClassVar[tuple[str, ...]] = LOSSES
    optimizers: ClassVar[tuple[str, ...]] = OPTIMIZERS
    dtypes: ClassVar[tuple[str, ...]] = DTYPES
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    supports_dropout: ClassVar[bool] = True
    supports_l2: ClassVar[bool] = True
    #: Whether `build` uses the runner's initial weights (controlled mode).
    accepts_weights: ClassVar[bool] = True
    #: Backend options and their defaults, set with ``--backends name[key=value]``.
    options: ClassVar[dict[str, Any]] = {}
    #: Parity with the NumPy reference (see the class docstring): the target where the spec maps
    #: exactly (None: not checked), the rules that differ (no target) and those mapped exactly.
    parity_target: ClassVar[float | None] = None
    parity_notes: ClassVar[dict[str, str]] = {}
    parity_mapping: ClassVar[dict[str, str]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            valid = ", ".join(sorted(self.options)) or "none"
            raise ValueError(
                f"backend {self.name!r} has no option {', '.join(sorted(unknown))}; valid options: {valid}"
            )
        merged = dict(self.options)
        for key, value in options.items():
            merged[key] = _coerce_option(key, value, self.options[key])
        self.config = merged
        self.threads: int | None = None

    # ----------------------------------------------------------------- metadata
    @classmethod
    def missing_requirements(cls) -> list[str]:
        """Modules from `requires` that cannot be imported here."""
        missing = []
        for module in cls.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(module)
        return missing

    @classmethod
    def versions(cls) -> dict[str, str]:
        """Installed versions of the required distributions (read without importing them)."""
        out = {}
        for module in cls.requires:
            for dist in _DIST_NAMES.get(module, (module,)):
                try:
                    out[module] = importlib.metadata.version(dist)
                    break
                except importlib.metadata.PackageNotFoundError:
                    continue
        return out

    @classmethod
    def worker_env(cls, options: dict[str, Any]) -> dict[str, str]:
        """Environment variables the worker must have before anything is imported."""
        return {}

    def skip(self, spec: ModelSpec) -> str | None:
        """Why this backend cannot run `spec`, or None when it can."""
        checks = (
            ("activation", spec.activation, self.activations),
            ("loss", spec.loss, self.losses),
            ("optimizer", spec.optimizer, self.optimizers),
            ("dtype", spec.dtype, self.dtypes),
        )
        for what, value, supported in checks:
            if value not in supported:
                return f"{self.name} does not support {what} {value!r} (supported: {', '.join(supported)})"
        if spec.dropout and not self.supports_dropout:
            return f"{self.name} does not support dropout"
        if spec.l2 and not self.supports_l2:
            return f"{self.name} does not support l2"
        device = self.config.get("device", "cpu")
        if device not in self.devices:
            return f"{self.name} does not support device {device!r} (supported: {', '.join(self.devices)})"
        return None

    # ---------------------------------------------------------------- lifecycle
    def prepare(self, threads: int) -> None:
        """Import the framework and apply the thread budget; called once per worker process.

        The thread environment variables are already set when this runs.
        """
        self.threads = threads

    @abstractmethod
    def build(self, spec: ModelSpec, weights: Weights | None, seed: int) -> None:
        """Create the model for `spec`, starting from `weights` (``(W, b)`` pairs, W ``(fan_in, fan_out)``)."""

    @abstractmethod
    def train_epoch(self, X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> float:
        """Train one epoch over the given batch index arrays, in order; return the epoch's mean loss."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` (two columns for binary) or values ``(n, n_outputs)``."""

    @abstractmethod
    def get_weights(self) -> Weights:
        """The current ``(W, b)`` pairs as NumPy arrays."""

    def sync(self) -> None:
        """Wait for queued device work (GPU backends); called before a clock is read."""

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({opts})"


# Import name -> distribution names, where they differ.
_DIST_NAMES = {
    "sklearn": ("scikit-learn",),
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
}


def _coerce_option(key: str, value: Any, default: Any) -> Any:
    """Options typed on a command line arrive as text: convert to the default's type."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    if isinstance(default, bool):
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"option {key}={value!r}: expected true or false")
    try:
        return type(default)(value)
    except ValueError:
        raise ValueError(f"option {key}={value!r}: expected {type(default).__name__}") from None
