"""The backend contract: what a plugin implements so the runner can train it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .controlled import initial_weights
from .spec import ACTIVATIONS, DTYPES, LOSSES, OPTIMIZERS, ModelSpec
from .values import coerce

Weights = list[tuple[np.ndarray, np.ndarray]]
#: The runner's callback after each natively trained epoch: ``epoch_end(epoch, took_s, running_loss) -> stop``.
EpochEnd = Callable[[int, float, "float | None"], bool]
#: The two timing forms of `Backend.fit_native`.
TIMINGS = ("per_epoch", "whole_call")
# The generic native loop's random stream (controlled mode uses 0 for weights and 1 for batches).
_NATIVE_STREAM = 2


@dataclass
class NativeFit:
    """What `Backend.fit_native` reports besides the per-epoch callbacks (returning None means ``NativeFit()``).

    ``timing`` is ``"per_epoch"`` (`epoch_end` was called after every epoch) or ``"whole_call"``
    (the framework has no per-epoch hook: `epoch_end` was never called, and ``train_time_s``,
    ``epochs_run`` and, where the framework exposes it, ``running_losses`` (one per epoch) say
    what happened). ``best_epoch`` (1-based), ``stopped_early`` and ``restored_best`` are set by
    a backend whose framework's own early stopping ran (`native_early_stopping` is not "runner").
    """

    timing: str = "per_epoch"
    train_time_s: float | None = None
    epochs_run: int | None = None
    running_losses: list[float] | None = None
    best_epoch: int | None = None
    stopped_early: bool | None = None
    restored_best: bool | None = None


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

    Native mode (``modes = ["native"]``): the backend trains with its framework's own idiomatic
    loop, its own weight initialisation and its own shuffling, all seeded from the job's seed
    through the framework's own seeding; the runner still owns the split, the preprocessing,
    the thread budget and every loss and metric, computed from `predict`. It is the optional
    method `fit_native`:

    ``fit_native(spec, seed, X, y, X_val, y_val, epoch_end) -> NativeFit | None``
        Build the model for `spec` itself (`build` is not called first) and train it for
        ``spec.epochs`` epochs on ``X, y`` (the data conventions above, in the spec's dtype).
        ``X_val, y_val`` is the runner's validation split: only for a framework's own early
        stopping (`native_early_stopping`), never to train on. Afterwards `predict` and
        `get_weights` answer for the trained model, as after `build` and `train_epoch`.
        One of two timing forms:

        * per epoch (``NativeFit.timing == "per_epoch"``, the default): after each epoch call
          ``epoch_end(epoch, took_s, running_loss)`` exactly once, in order: the 1-based epoch,
          its wall time (`sync`, then the clock, before the call: the runner evaluates the model
          inside the call, and that must not be in any epoch's interval) and the framework's
          running loss or None. It returns True when the runner's early stopping asks to stop
          (only with ``spec.patience > 0`` and ``native_early_stopping == "runner"``): then stop
          before the next epoch. It may raise (a diverged model): let the exception through.
        * whole call (``"whole_call"``), for a framework with no per-epoch hook: never call
          `epoch_end`; return ``NativeFit(timing="whole_call", train_time_s=..., epochs_run=...,
          running_losses=...)``. The record then holds the call's time, ``epoch_time_s`` =
          time / epochs, no first-epoch time, and per-epoch validation values as None (only
          the final model is evaluated). Never patch a framework to get a hook it has not.

        With ``spec.patience > 0`` the framework's own early stopping is used where it has one
        (`native_early_stopping` says which; the NativeFit reports its best epoch), else the
        runner's rule through `epoch_end`'s return value.

    The default `fit_native` is the generic native loop of a backend that has no framework
    besides NumPy: initial weights drawn by the runner's recipe from the backend's own stream
    of the seed (when it `accepts_weights`), a fresh permutation of the training set per epoch
    from that stream, then the ordinary `build` and `train_epoch`. So such a backend's native
    and controlled runs differ only by their random draws. A backend built on a framework has
    a native mode only by overriding `fit_native` (or by setting ``native = True`` to accept
    the generic loop); otherwise `skip_mode` gives ``"no native mode"`` for native jobs.
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
    #: Whether the backend implements ``batch_norm`` ("before"/"after"); off unless declared, so a plugin that
    #: says nothing declines batch-norm specs instead of silently training without it.
    supports_batch_norm: ClassVar[bool] = False
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
    #: Native mode (see the class docstring): None decides by `has_native`'s rule (an overridden
    #: `fit_native`, or no framework besides NumPy); True / False force it.
    native: ClassVar[bool | None] = None
    #: What the native loop does, in a few words (recorded with every native job).
    native_loop: ClassVar[str] = (
        "generic: build / train_epoch, the runner's initialisation recipe and a fresh permutation per epoch, "
        "both drawn from the backend's own stream of the seed"
    )
    #: Whose early stopping native mode uses with ``patience > 0``: "runner" (the runner's rule, through
    #: `epoch_end`), or a description of the framework's own.
    native_early_stopping: ClassVar[str] = "runner"

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            valid = ", ".join(sorted(self.options)) or "none"
            raise ValueError(
                f"backend {self.name!r} has no option {', '.join(sorted(unknown))}; valid options: {valid}"
            )
        merged = dict(self.options)
        for key, value in options.items():
            # options typed on a command line arrive as text; an experiment file's are typed already
            merged[key] = coerce(f"option {key}", value, self.options[key]) if isinstance(value, str) else value
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

    @classmethod
    def has_native(cls) -> bool:
        """Whether there is a native mode: `native` if set, else an own `fit_native` or no framework but NumPy."""
        if cls.native is not None:
            return bool(cls.native)
        if cls.fit_native is not Backend.fit_native:
            return True
        return set(cls.requires) <= {"numpy"}

    def skip_mode(self, spec: ModelSpec, mode: str) -> str | None:
        """Why this backend cannot run `spec` in `mode` ("controlled" or "native") beyond `skip`, or None.

        The default declines native mode for a backend without one (`has_native`).
        """
        if mode == "native" and not self.has_native():
            return (
                f"no native mode: {self.name} has no training loop of its framework's own "
                "(Backend.fit_native); run it in controlled mode"
            )
        return None

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
        if spec.batch_norm != "none" and not self.supports_batch_norm:
            return f"{self.name} does not support batch_norm {spec.batch_norm!r} (supports_batch_norm = False)"
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

    def fit_native(
        self,
        spec: ModelSpec,
        seed: int,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        epoch_end: EpochEnd,
    ) -> NativeFit | None:
        """Build and train `spec` natively (see the class docstring); this default is the generic loop.

        Initial weights by the runner's recipe (`initial_weights`) and per-epoch permutations,
        both from ``default_rng([seed, 2])``: another stream than controlled mode's, so the
        runs differ only by their draws; `build` gets a seed from that stream too (dropout).
        """
        if not self.has_native():
            raise NotImplementedError(f"{self.name} has no native mode")
        rng = np.random.default_rng([seed, _NATIVE_STREAM])
        # A seed of the runner's recipe above every job seed (<= 2**32 - 1): never a controlled run's weights.
        weights_seed, build_seed = 2**32 + int(rng.integers(2**62)), int(rng.integers(2**31))
        weights = initial_weights(spec, weights_seed) if self.accepts_weights else None
        self.build(spec, weights, build_seed)
        n, m = len(X), spec.batch_size
        for epoch in range(spec.epochs):
            order = rng.permutation(n)
            batches = [order[i : i + m] for i in range(0, n, m)]
            self.sync()
            t0 = time.perf_counter()
            running = self.train_epoch(X, y, batches)
            self.sync()
            if epoch_end(epoch + 1, time.perf_counter() - t0, running):
                break
        return None

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({opts})"


# Import name -> distribution names, where they differ.
_DIST_NAMES = {
    "sklearn": ("scikit-learn",),
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
}
