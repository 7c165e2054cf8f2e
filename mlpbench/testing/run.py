"""`KitRun`: one run of the kit over one backend class and its options, and everything that run owns.

The checks (``checks_*.py``) are functions of a `KitRun`: they take the prepared backend,
the registry, the tolerances and the base spec from it. Nothing is kept between runs:
each `backend_checks` call makes its own `KitRun`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..backend import Backend, Weights
from ..controlled import initial_weights
from ..registry import Registry, discover
from ..spec import ModelSpec
from .core import CheckSkipped, ConformanceError, Tolerances, known
from .data import BATCH, reference_backend


class KitRun:
    """The checks' shared state for one backend class: its prepared instance and the registry, made on first use."""

    def __init__(self, cls: type[Backend], options: dict[str, Any], tol: Tolerances) -> None:
        self.cls, self.options, self.tol = cls, dict(options), tol
        self.name = cls.name or cls.__name__
        self._backend: Backend | None = None
        self._registry: Registry | None = None
        self.cache: dict[str, Any] = {}  # results several checks of this run share (the native xor job)

    def fail(self, check: str, message: str) -> ConformanceError:
        return ConformanceError(f"[{self.name} {check}] {message}")

    @property
    def registry(self) -> Registry:
        """The installed backends and tasks (the NumPy reference and the xor task come from there)."""
        if self._registry is None:
            self._registry = discover()
        return self._registry

    def reference(self) -> Backend:
        """A fresh, prepared NumPy reference backend."""
        return reference_backend(self.registry)

    def backend(self) -> Backend:
        """The prepared instance: created and prepared on first use, then reused like a worker's.

        As a worker does, the backend's `worker_env` goes into ``os.environ`` first, and
        `prepare` runs with one thread.
        """
        if self._backend is None:
            missing = self.cls.missing_requirements()
            if missing:
                raise CheckSkipped(f"{self.name} is not installed here: cannot import {', '.join(missing)}")
            os.environ.update(self.cls.worker_env(dict(self.options)))
            backend = self.cls(**self.options)
            backend.prepare(threads=1)
            self._backend = backend
        return self._backend

    def base_spec(self, **changes: Any) -> tuple[ModelSpec, str | None]:
        """A small two-hidden-layer spec inside the declared capabilities, float64 when declared; and a note."""
        note = None
        dtypes = known(self.cls, "dtypes")
        if "dtype" not in changes:
            if "float64" in dtypes:
                changes["dtype"] = "float64"
            elif dtypes:
                changes["dtype"] = dtypes[0]
                note = f"in {dtypes[0]} with rtol {self.tol.float32_rtol:g}: the backend declares no float64"
        losses = known(self.cls, "losses")
        loss = changes.pop("loss", None) or ("cross_entropy" if "cross_entropy" in losses else losses[0])
        n_outputs = {"cross_entropy": 3, "binary_cross_entropy": 1}.get(loss, 2)
        acts = known(self.cls, "activations")
        opts = known(self.cls, "optimizers")
        spec = ModelSpec(
            n_inputs=5,
            n_outputs=changes.pop("n_outputs", n_outputs),
            hidden=(6, 4),
            loss=loss,
            activation="tanh" if "tanh" in acts else acts[0],
            optimizer="sgd" if "sgd" in opts else opts[0],
            lr=0.1,
            batch_size=BATCH,
            epochs=1,
        ).replace(**changes)
        return spec, note

    def runnable(self, spec: ModelSpec) -> Backend:
        """The prepared backend, or CheckSkipped when its `skip` declines `spec`."""
        backend = self.backend()
        reason = backend.skip(spec)
        if reason is not None:
            raise CheckSkipped(f"skip() declines {spec!r}: {reason}")
        return backend

    def build(self, backend: Backend, spec: ModelSpec, seed: int = 0, biases: bool = False) -> Weights:
        """Build as the runner does; return the weights the model starts from.

        With `biases`, the runner's weights get non-zero biases (its own are zero), so that
        a check can see what training does to them.
        """
        weights = initial_weights(spec, seed) if backend.accepts_weights else None
        if weights is not None and biases:
            rng = np.random.default_rng([seed, 11])
            weights = [(W, rng.uniform(-0.5, 0.5, b.shape).astype(b.dtype)) for W, b in weights]
        backend.build(spec, weights, seed)
        if weights is None:
            weights = [(np.array(W, dtype=spec.dtype), np.array(b, dtype=spec.dtype)) for W, b in backend.get_weights()]
        return weights
