"""The conformance kit: the backend contract, checked in-process, for built-in and third-party backends.

    from mlpbench.testing import check_backend
    check_backend(MyBackend)                    # raises ConformanceError at the first broken rule

    from mlpbench.testing import parametrize_backend_checks
    @parametrize_backend_checks(MyBackend)      # one pytest test per check
    def test_conformance(check):
        check()

Every check builds small networks on data it makes itself and compares what the backend
does with the NumPy reference backend (the built-in ``numpy``), which is exact by
construction. Only what the backend declares is checked: a loss it does not list is not
trained, a float32-only backend is compared in float32 with a looser tolerance (and the
check says so). The kit imports no framework itself: it calls ``prepare(threads=1)`` once
per backend class and options, as a worker does, after putting the backend's
``worker_env`` into ``os.environ``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import Backend, Weights
from ..controlled import batch_order, initial_weights
from ..spec import ACTIVATIONS, DTYPES, LOSSES, OPTIMIZERS, ModelSpec

#: Learning rates the XOR check uses when a backend cannot run the task's default optimizer (adam).
_XOR_LR = {"sgd": 0.5, "momentum": 0.1, "nesterov": 0.1, "adam": 0.05}
_N_SAMPLES, _BATCH = 37, 8  # 37 = four batches of 8 and a smaller last one of 5


class ConformanceError(AssertionError):
    """A backend breaks the contract; the message names the check and what differed."""


class CheckSkipped(Exception):
    """A check that does not apply here: a capability the backend does not declare, or a missing module."""


Check = Callable[[], "str | None"]  # runs one check; returns a note (or None); raises on failure


@dataclass(frozen=True)
class Tolerances:
    """How close to the NumPy reference a backend must stay."""

    rtol: float = 1e-6  # float64: max |w - w_ref| <= rtol * max |w_ref| per layer, after one epoch
    float32_rtol: float = 1e-4  # the same, for backends that declare no float64
    xor_epochs: int = 2000  # the most epochs the XOR check trains before giving up


# ------------------------------------------------------------------- public API
def backend_checks(
    backend_cls: type[Backend],
    *,
    rtol: float = 1e-6,
    float32_rtol: float = 1e-4,
    xor_epochs: int = 2000,
    **options: Any,
) -> list[tuple[str, Check]]:
    """``(check id, callable)`` pairs for `backend_cls` with `options`, in the order `check_backend` runs them.

    Which checks exist depends on the class's declared capabilities (one training
    check per declared loss, activation and optimizer). Each callable takes no
    argument, raises `ConformanceError` on a failure and `CheckSkipped` when it does
    not apply, and returns a note or None.
    """
    kit = _Kit(backend_cls, options, Tolerances(rtol, float32_rtol, xor_epochs))
    return kit.checks()


def check_backend(
    backend_cls: type[Backend],
    *,
    rtol: float = 1e-6,
    float32_rtol: float = 1e-4,
    xor_epochs: int = 2000,
    known_differences: dict[str, str] | None = None,
    **options: Any,
) -> list[str]:
    """Run every check on `backend_cls` (built with `options`); raise `ConformanceError` at the first failure.

    `known_differences` maps check ids to the documented reason they fail (a framework
    difference that cannot be removed): those checks must fail, and their measured
    difference is reported; one that passes is an error (the entry is stale). Returns
    one line per check: ``ok``, ``ok (note)``, ``skipped: reason`` or ``known difference``.
    A backend whose `requires` cannot be imported raises RuntimeError: nothing can be checked.
    """
    missing = backend_cls.missing_requirements()
    if missing:
        raise RuntimeError(f"cannot check backend {backend_cls.name!r}: cannot import {', '.join(missing)}")
    pairs = backend_checks(backend_cls, rtol=rtol, float32_rtol=float32_rtol, xor_epochs=xor_epochs, **options)
    known = _validate_known(pairs, known_differences)
    report = []
    for check_id, check in pairs:
        try:
            note = _call(check, backend_cls.name, check_id)
        except CheckSkipped as exc:
            report.append(f"{check_id}: skipped: {exc}")
            continue
        except ConformanceError as exc:
            if check_id not in known:
                raise
            report.append(f"{check_id}: known difference ({known[check_id]}): {exc}")
            continue
        if check_id in known:
            raise ConformanceError(f"[{backend_cls.name} {check_id}] passes, but known_differences says it fails "
                                   f"({known[check_id]}): remove the entry")  # fmt: skip
        report.append(f"{check_id}: ok" + (f" ({note})" if note else ""))
    return report


def parametrize_backend_checks(
    backend_cls: type[Backend], *, known_differences: dict[str, str] | None = None, **kwargs: Any
) -> Any:
    """A pytest decorator: the test receives ``check`` and calls it; one test per check, ids like ``parity[loss=mse]``.

    Checks that do not apply (and every check when the backend's modules are missing)
    are reported as skipped with the reason; `known_differences` become strict xfails.
    """
    import pytest

    return pytest.mark.parametrize("check", pytest_params(backend_cls, known_differences=known_differences, **kwargs))


def pytest_params(
    backend_cls: type[Backend], *, known_differences: dict[str, str] | None = None, prefix: str = "", **kwargs: Any
) -> list[Any]:
    """The checks as ``pytest.param`` objects (ids ``prefix + check id``), for your own parametrize."""
    import pytest

    pairs = backend_checks(backend_cls, **kwargs)
    known = _validate_known(pairs, known_differences)
    params = []
    for check_id, fn in pairs:
        marks = ()
        if check_id in known:
            marks = pytest.mark.xfail(strict=True, raises=ConformanceError, reason=known[check_id])
        params.append(pytest.param(_as_pytest(fn, backend_cls.name, check_id), id=prefix + check_id, marks=marks))
    return params


def _as_pytest(check: Check, backend: str, check_id: str) -> Check:
    """`CheckSkipped` becomes ``pytest.skip``; any other exception from the backend a `ConformanceError`."""

    def run() -> str | None:
        import pytest

        try:
            return _call(check, backend, check_id)
        except CheckSkipped as exc:
            pytest.skip(str(exc))

    run.__name__ = getattr(check, "__name__", "check")
    return run


def _call(check: Check, backend: str, check_id: str) -> str | None:
    """Run a check; an exception from inside the backend becomes a ConformanceError naming the check."""
    try:
        return check()
    except (CheckSkipped, ConformanceError):
        raise
    except Exception as exc:
        raise ConformanceError(f"[{backend} {check_id}] raised {type(exc).__name__}: {exc}") from exc


def _validate_known(pairs: list[tuple[str, Check]], known: dict[str, str] | None) -> dict[str, str]:
    known = dict(known or {})
    ids = {cid for cid, _ in pairs}
    unknown = sorted(set(known) - ids)
    if unknown:
        raise ValueError(f"known_differences names no check of this backend: {', '.join(unknown)}; "
                         f"check ids: {', '.join(cid for cid, _ in pairs)}")  # fmt: skip
    return known


# --------------------------------------------------------------------- helpers
_PREPARED: dict[tuple, Backend] = {}  # one prepared instance per class and options, as in a worker
_REGISTRY: list = []


def _registry() -> Any:
    if not _REGISTRY:
        from ..registry import discover

        _REGISTRY.append(discover())
    return _REGISTRY[0]


def reference_backend() -> Backend:
    """A fresh NumPy reference backend (the built-in ``numpy`` entry point)."""
    ref = _registry().backend("numpy")()
    ref.prepare(threads=1)
    return ref


def make_data(spec: ModelSpec, n: int = _N_SAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs and targets that follow the data conventions for `spec`'s loss."""
    rng = np.random.default_rng([seed, 7])
    X = np.ascontiguousarray(rng.standard_normal((n, spec.n_inputs)), dtype=spec.dtype)
    if spec.loss == "cross_entropy":
        y = rng.permutation(np.arange(n) % spec.n_outputs).astype(np.int64)  # every class present
    elif spec.loss == "binary_cross_entropy":
        y = rng.permutation(np.arange(n) % 2).astype(np.int64)
    else:
        y = np.ascontiguousarray(rng.standard_normal((n, spec.n_outputs)), dtype=spec.dtype)
    return X, y


def _fail(backend: str, check: str, message: str) -> ConformanceError:
    return ConformanceError(f"[{backend} {check}] {message}")


def _relative_error(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """(max |got - want|, max |want|), both as floats."""
    got64, want64 = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got64 - want64), initial=0.0)), float(np.max(np.abs(want64), initial=0.0))


class _Kit:
    """The checks for one backend class and its options."""

    def __init__(self, cls: type[Backend], options: dict[str, Any], tol: Tolerances) -> None:
        self.cls, self.options, self.tol = cls, dict(options), tol
        self.name = cls.name or cls.__name__

    # ------------------------------------------------------------ plumbing
    def checks(self) -> list[tuple[str, Check]]:
        cls = self.cls
        out: list[tuple[str, Check]] = [("metadata", self.check_metadata), ("lazy_import", self.check_lazy_import),
                                         ("skip", self.check_skip)]  # fmt: skip
        for dtype in _known(cls, "dtypes", DTYPES):
            out.append((f"initial_weights[{dtype}]", _bind(self.check_initial_weights, dtype)))
        for loss in _known(cls, "losses", LOSSES):
            out.append((f"predict[{loss}]", _bind(self.check_predict, loss)))
        for loss in _known(cls, "losses", LOSSES):
            out.append((f"parity[loss={loss}]", _bind(self.check_parity, loss=loss)))
        for act in _known(cls, "activations", ACTIVATIONS):
            out.append((f"parity[activation={act}]", _bind(self.check_parity, activation=act)))
        for opt in _known(cls, "optimizers", OPTIMIZERS):
            if opt != "sgd":
                out.append((f"parity[optimizer={opt}]", _bind(self.check_parity, optimizer=opt, epochs=2)))
        if getattr(cls, "supports_l2", False):
            out.append(("parity[l2]", _bind(self.check_parity, l2=0.01)))
        out += [("given_batches", self.check_given_batches), ("deterministic", self.check_deterministic),
                ("learns_xor", self.check_learns_xor)]  # fmt: skip
        return out

    def fail(self, check: str, message: str) -> ConformanceError:
        return _fail(self.name, check, message)

    def backend(self) -> Backend:
        """The prepared instance (created and prepared on first use, then reused like a worker's)."""
        key = (self.cls, tuple(sorted((k, repr(v)) for k, v in self.options.items())))
        if key not in _PREPARED:
            missing = self.cls.missing_requirements()
            if missing:
                raise CheckSkipped(f"{self.name} is not installed here: cannot import {', '.join(missing)}")
            os.environ.update(self.cls.worker_env(dict(self.options)))
            backend = self.cls(**self.options)
            backend.prepare(threads=1)
            _PREPARED[key] = backend
        return _PREPARED[key]

    def base_spec(self, check: str, **changes: Any) -> tuple[ModelSpec, str | None]:
        """A small two-hidden-layer spec inside the declared capabilities, float64 when declared."""
        cls = self.cls
        note = None
        dtypes = _known(cls, "dtypes", DTYPES)
        if "dtype" not in changes:
            if "float64" in dtypes:
                changes["dtype"] = "float64"
            elif dtypes:
                changes["dtype"] = dtypes[0]
                note = f"in {dtypes[0]} with rtol {self.tol.float32_rtol:g}: the backend declares no float64"
        losses = _known(cls, "losses", LOSSES)
        loss = changes.pop("loss", None) or ("cross_entropy" if "cross_entropy" in losses else losses[0])
        n_outputs = {"cross_entropy": 3, "binary_cross_entropy": 1}.get(loss, 2)
        acts = _known(cls, "activations", ACTIVATIONS)
        opts = _known(cls, "optimizers", OPTIMIZERS)
        spec = ModelSpec(
            n_inputs=5, n_outputs=changes.pop("n_outputs", n_outputs), hidden=(6, 4), loss=loss,
            activation="tanh" if "tanh" in acts else acts[0], optimizer="sgd" if "sgd" in opts else opts[0],
            lr=0.1, batch_size=_BATCH, epochs=1,
        ).replace(**changes)  # fmt: skip
        return spec, note

    def runnable(self, check: str, spec: ModelSpec) -> Backend:
        """The prepared backend, or CheckSkipped when its `skip` declines `spec`."""
        backend = self.backend()
        reason = backend.skip(spec)
        if reason is not None:
            raise CheckSkipped(f"skip() declines {spec!r}: {reason}")
        return backend

    def build(self, backend: Backend, spec: ModelSpec, seed: int = 0) -> Weights:
        """Build as the runner does; return the weights the model starts from."""
        weights = initial_weights(spec, seed) if backend.accepts_weights else None
        backend.build(spec, weights, seed)
        if weights is None:
            weights = [(np.array(W, dtype=spec.dtype), np.array(b, dtype=spec.dtype)) for W, b in backend.get_weights()]
        return weights

    def rtol(self, spec: ModelSpec) -> float:
        return self.tol.rtol if spec.dtype == "float64" else max(self.tol.rtol, self.tol.float32_rtol)

    # -------------------------------------------------------------- checks
    def check_metadata(self) -> str | None:
        """Class attributes are well-formed and the class can be built with its default options."""
        cls, c = self.cls, "metadata"
        if not isinstance(cls.name, str) or not cls.name.strip() or cls.name != cls.name.strip():
            raise self.fail(c, f"`name` must be a non-empty string without surrounding spaces, got {cls.name!r}")
        if any(ch in cls.name for ch in ",[]= "):
            raise self.fail(c, f"`name` {cls.name!r} contains one of , [ ] = or a space, which --backends cannot parse")
        if not isinstance(cls.requires, tuple) or not all(isinstance(m, str) and m for m in cls.requires):
            raise self.fail(c, f"`requires` must be a tuple of module names, got {cls.requires!r}")
        for attr, known in (("activations", ACTIVATIONS), ("losses", LOSSES), ("optimizers", OPTIMIZERS),
                            ("dtypes", DTYPES)):  # fmt: skip
            value = getattr(cls, attr)
            if not isinstance(value, tuple) or not value:
                raise self.fail(c, f"`{attr}` must be a non-empty tuple, got {value!r}")
            unknown = [v for v in value if v not in known]
            if unknown:
                raise self.fail(c, f"`{attr}` lists unknown value(s) {unknown}; known: {', '.join(known)}")
        if not isinstance(cls.devices, tuple) or not cls.devices or not all(isinstance(d, str) for d in cls.devices):
            raise self.fail(c, f"`devices` must be a non-empty tuple of strings, got {cls.devices!r}")
        for attr in ("supports_dropout", "supports_l2", "accepts_weights"):
            if not isinstance(getattr(cls, attr), bool):
                raise self.fail(c, f"`{attr}` must be True or False, got {getattr(cls, attr)!r}")
        if not isinstance(cls.options, dict) or not all(isinstance(k, str) for k in cls.options):
            raise self.fail(c, f"`options` must be a dict of option name -> default, got {cls.options!r}")
        try:
            backend = cls(**self.options)
        except Exception as exc:
            raise self.fail(c, f"{cls.__name__}(**{self.options!r}) raised {type(exc).__name__}: {exc}") from exc
        env = cls.worker_env(dict(self.options))
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise self.fail(c, f"worker_env() must return a dict of str -> str, got {env!r}")
        versions = cls.versions()
        if not isinstance(versions, dict):
            raise self.fail(c, f"versions() must return a dict, got {versions!r}")
        repr(backend)
        return None

    def check_lazy_import(self) -> str | None:
        """Importing the backend's module imports none of its frameworks (listing and planning must stay cheap)."""
        frameworks = [m for m in self.cls.requires if m != "numpy"]
        if not frameworks:
            raise CheckSkipped("the backend requires no framework besides numpy")
        module = sys.modules.get(self.cls.__module__)
        path = getattr(module, "__file__", None)
        code = (
            "import importlib, importlib.util, json, sys\n"
            "import mlpbench\n"
            "before = set(sys.modules)\n"
            f"name, path = {self.cls.__module__!r}, {path!r}\n"
            "if name.startswith('mlpbench_plugin_') and path:\n"
            "    spec = importlib.util.spec_from_file_location(name, path)\n"
            "    m = importlib.util.module_from_spec(spec); sys.modules[name] = m; spec.loader.exec_module(m)\n"
            "else:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted(set(sys.modules) - before)))\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise self.fail("lazy_import", f"importing {self.cls.__module__} in a fresh process failed:\n"
                            f"{proc.stderr.strip()[-2000:]}")  # fmt: skip
        loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
        eager = [m for m in frameworks if m in loaded]
        if eager:
            raise self.fail(
                "lazy_import",
                f"importing {self.cls.__module__} imports {', '.join(eager)}: import "
                "the framework inside prepare() or build(), so that `list` and planning never load it",
            )
        return None

    def check_skip(self) -> str | None:
        """skip() returns None for specs inside the declared capabilities and a reason (not an exception) outside."""
        c = "skip"
        cls = self.cls
        backend = self.backend()
        base, _ = self.base_spec(c)
        inside: list[ModelSpec] = [base]
        inside += [base.replace(activation=a) for a in cls.activations]
        inside += [self.base_spec(c, loss=loss, dtype=base.dtype)[0] for loss in cls.losses]
        inside += [base.replace(optimizer=o) for o in cls.optimizers]
        inside += [base.replace(dtype=d) for d in cls.dtypes]
        if cls.supports_dropout:
            inside.append(base.replace(dropout=0.2))
        if cls.supports_l2:
            inside.append(base.replace(l2=0.01))
        for spec in inside:
            reason = self._ask_skip(backend, spec)
            if reason is not None:
                raise self.fail(c, f"skip() declines {spec!r}, which is inside the declared capabilities: {reason!r}")
        outside: list[ModelSpec] = []
        outside += [base.replace(activation=a) for a in ACTIVATIONS if a not in cls.activations]
        outside += [self.base_spec(c, loss=loss, dtype=base.dtype)[0] for loss in LOSSES if loss not in cls.losses]
        outside += [base.replace(optimizer=o) for o in OPTIMIZERS if o not in cls.optimizers]
        outside += [base.replace(dtype=d) for d in DTYPES if d not in cls.dtypes]
        if not cls.supports_dropout:
            outside.append(base.replace(dropout=0.2))
        if not cls.supports_l2:
            outside.append(base.replace(l2=0.01))
        for spec in outside:
            reason = self._ask_skip(backend, spec)
            if not isinstance(reason, str) or not reason:
                raise self.fail(c, f"skip() returned {reason!r} for {spec!r}, which is outside the declared "
                                "capabilities; it must return the reason as a string")  # fmt: skip
        return None

    def _ask_skip(self, backend: Backend, spec: ModelSpec) -> str | None:
        try:
            return backend.skip(spec)
        except Exception as exc:
            raise self.fail("skip", f"skip({spec!r}) raised {type(exc).__name__}: {exc}; it must return a reason "
                            "string (or None), never raise") from exc  # fmt: skip

    def check_initial_weights(self, dtype: str) -> str | None:
        """build() starts from the runner's weights: get_weights() returns them unchanged, as copies."""
        c = f"initial_weights[{dtype}]"
        spec, _ = self.base_spec(c, dtype=dtype)
        backend = self.runnable(c, spec)
        if not backend.accepts_weights:
            backend.build(spec, None, 0)
            self._check_shapes(c, spec, backend.get_weights())
            return "accepts_weights is False: only the shapes were checked"
        given = initial_weights(spec, 0)
        backend.build(spec, [(W.copy(), b.copy()) for W, b in given], 0)
        got = backend.get_weights()
        self._check_shapes(c, spec, got)
        for i, ((W, b), (W0, b0)) in enumerate(zip(got, given, strict=True)):
            for what, a, a0 in (("W", W, W0), ("b", b, b0)):
                if not np.array_equal(np.asarray(a, dtype=np.float64), a0.astype(np.float64)):
                    err, _ = _relative_error(a, a0)
                    raise self.fail(
                        c,
                        f"layer {i} {what} from get_weights() right after build() differs from "
                        f"the weights given to build() by up to {err:.3g}; they must be the same values",
                    )
        # The arrays handed out must not be the live parameters: training must not change them.
        X, y = make_data(spec)
        backend.train_epoch(X, y, batch_order(len(X), spec.batch_size, 0, 0))
        backend.sync()
        for i, ((W, b), (W0, b0)) in enumerate(zip(got, given, strict=True)):
            if not (np.array_equal(np.asarray(W, dtype=np.float64), W0.astype(np.float64))
                    and np.array_equal(np.asarray(b, dtype=np.float64), b0.astype(np.float64))):  # fmt: skip
                raise self.fail(c, f"the arrays get_weights() returned before training changed when the model trained "
                                f"(layer {i}); return copies, not views of the live parameters")  # fmt: skip
        return None

    def _check_shapes(self, c: str, spec: ModelSpec, weights: Any) -> None:
        sizes = spec.layer_sizes
        expected = [((a, b), (b,)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        try:
            shapes = [(np.shape(W), np.shape(b)) for W, b in weights]
        except (TypeError, ValueError) as exc:
            got = type(weights).__name__
            raise self.fail(c, f"get_weights() must return a list of (W, b) pairs, got {got}") from exc
        if shapes != expected:
            raise self.fail(c, f"get_weights() shapes {shapes} for layer sizes {sizes}; expected {expected} "
                            "(W shaped (fan_in, fan_out), b shaped (fan_out,))")  # fmt: skip
        for W, b in weights:
            if not isinstance(W, np.ndarray) or not isinstance(b, np.ndarray):
                raise self.fail(c, f"get_weights() must return NumPy arrays, got {type(W).__name__}, "
                                f"{type(b).__name__}")  # fmt: skip

    def check_predict(self, loss: str) -> str | None:
        """predict() shapes, dtype, probabilities; inference is deterministic and leaves the inputs alone."""
        c = f"predict[{loss}]"
        variants = [{}] if loss in ("cross_entropy", "binary_cross_entropy") else [{"n_outputs": 1}, {"n_outputs": 2}]
        notes = []
        for dtype in _known(self.cls, "dtypes", DTYPES):
            for extra in variants:
                spec, _ = self.base_spec(c, loss=loss, dtype=dtype, **extra)
                try:
                    backend = self.runnable(c, spec)
                except CheckSkipped as exc:
                    notes.append(str(exc))
                    continue
                if self.cls.supports_dropout and backend.skip(spec.replace(dropout=0.5)) is None:
                    spec = spec.replace(dropout=0.5)  # predict must not drop units
                self.build(backend, spec)
                X, y = make_data(spec, n=7)
                X_before = X.copy()
                p = backend.predict(X)
                self._check_prediction(c, spec, p, len(X))
                if not np.array_equal(X, X_before):
                    raise self.fail(c, "predict() modified its input X")
                p2 = backend.predict(X)
                if not np.array_equal(p, p2):
                    err, _ = _relative_error(p2, p)
                    raise self.fail(c, f"two predict() calls on the same X differ by up to {err:.3g} ({spec!r}); "
                                    "inference must be deterministic (dropout off)")  # fmt: skip
        if len(notes) == len(_known(self.cls, "dtypes", DTYPES)) * len(variants):
            raise CheckSkipped("; ".join(notes))
        return "; ".join(notes) or None

    def _check_prediction(self, c: str, spec: ModelSpec, p: Any, n: int) -> None:
        if not isinstance(p, np.ndarray):
            raise self.fail(c, f"predict() must return a NumPy array, got {type(p).__name__}")
        width = 2 if spec.loss == "binary_cross_entropy" else spec.n_outputs
        if p.shape != (n, width):
            what = {"cross_entropy": "class probabilities (n, n_classes)",
                    "binary_cross_entropy": "two columns [1-p, p]"}.get(spec.loss, "values (n, n_outputs)")  # fmt: skip
            raise self.fail(c, f"predict() returned shape {p.shape} for {n} samples of {spec!r}; expected "
                            f"{(n, width)}: {what}")  # fmt: skip
        if p.dtype != np.dtype(spec.dtype):
            raise self.fail(c, f"predict() returned {p.dtype} for a {spec.dtype} spec; return the spec's dtype")
        if not np.all(np.isfinite(p)):
            raise self.fail(c, f"predict() returned non-finite values for {spec!r}")
        if spec.is_classifier:
            atol = 1e-12 if spec.dtype == "float64" else 1e-6
            if p.min() < 0 or p.max() > 1:
                raise self.fail(c, f"probabilities outside [0, 1]: min {p.min():.6g}, max {p.max():.6g}")
            sums = p.sum(axis=1, dtype=np.float64)
            worst = float(np.max(np.abs(sums - 1.0)))
            if worst > 10 * atol * width:
                off = sums[np.argmax(np.abs(sums - 1.0))] - 1.0
                raise self.fail(c, f"probability rows must sum to 1; the worst row sums to 1 {off:+.3g}")

    def check_parity(self, epochs: int = 1, **changes: Any) -> str | None:
        """One epoch (two for stateful optimizers) from the same weights on the same batches matches the reference."""
        label = ",".join(f"{k}={v}" for k, v in changes.items())
        c = f"parity[{label}]"
        spec, note = self.base_spec(c, **changes)
        if spec.optimizer == "adam":
            spec = spec.replace(lr=0.01)
        backend = self.runnable(c, spec)
        X, y = make_data(spec)
        batches = [batch_order(len(X), spec.batch_size, 0, e) for e in range(epochs)]
        msg = self._compare_training(c, backend, spec, X, y, batches, check_loss=not spec.l2)
        notes = [n for n in (note, msg) if n]
        return "; ".join(notes) or None

    def _compare_training(self, c: str, backend: Backend, spec: ModelSpec, X: np.ndarray, y: np.ndarray,
                          epochs: list[list[np.ndarray]], check_loss: bool = True) -> str | None:  # fmt: skip
        weights = self.build(backend, spec)
        ref = reference_backend()
        ref.build(spec, [(W.copy(), b.copy()) for W, b in weights], 0)
        X_before, y_before = X.copy(), y.copy()
        rtol = self.rtol(spec)
        note = None
        losses = []
        for batches in epochs:
            loss = backend.train_epoch(X, y, [np.array(i) for i in batches])
            backend.sync()
            losses.append((loss, ref.train_epoch(X, y, batches)))
            if not (np.array_equal(X, X_before) and np.array_equal(y, y_before)):
                raise self.fail(c, "train_epoch() modified its input X or y")
        got, want = backend.get_weights(), ref.get_weights()
        self._check_shapes(c, spec, got)
        for i, ((W, b), (Wr, br), (W0, b0)) in enumerate(zip(got, want, weights, strict=True)):
            scale = max(float(np.max(np.abs(Wr))), float(np.max(np.abs(br), initial=0.0)))
            for what, a, r, a0 in (("W", W, Wr, W0), ("b", b, br, b0)):
                err, _ = _relative_error(a, r)
                if err > rtol * scale:
                    moved, _ = _relative_error(r, a0)
                    raise self.fail(c, f"after {len(epochs)} epoch(s) of {spec!r} on the same batches from the same "
                                    f"weights, layer {i} {what} differs from the NumPy reference by up to {err:.3g} "
                                    f"(allowed {rtol:g} x {scale:.3g}); training moved the reference's {what} by "
                                    f"{moved:.3g}")  # fmt: skip
        p, p_ref = backend.predict(X), ref.predict(X)
        err, scale = _relative_error(p, p_ref)
        if err > rtol * max(scale, 1.0):
            raise self.fail(c, f"predictions after training differ from the NumPy reference by up to {err:.3g}")
        # The weights agree, so a loss that does not is the value reported, not the training.
        for e, (loss, ref_loss) in enumerate(losses):
            if loss is None:
                note = "train_epoch() returned no loss"
                continue
            if not check_loss:
                continue
            try:
                value = float(loss)
            except (TypeError, ValueError) as exc:
                what = f"train_epoch() must return the epoch's mean loss as a number, got {loss!r}"
                raise self.fail(c, what) from exc
            if not abs(value - ref_loss) <= rtol * max(abs(ref_loss), 1e-12):
                raise self.fail(c, f"epoch {e + 1}: train_epoch() returned loss {value:.10g}, the NumPy reference "
                                f"{ref_loss:.10g} (relative difference {abs(value - ref_loss) / abs(ref_loss):.3g}, "
                                f"allowed {rtol:g}) for {spec!r}; it is the mean over the epoch's samples of the "
                                "per-sample loss, each batch's loss taken before its update")  # fmt: skip
        return note

    def check_given_batches(self) -> str | None:
        """train_epoch() trains on exactly the given batches, in order: not a permutation of its own."""
        c = "given_batches"
        spec, note = self.base_spec(c)
        backend = self.runnable(c, spec)
        X, y = make_data(spec)
        idx = np.random.default_rng(3).permutation(len(X))
        # Fewer than half the samples, one batch twice, a last batch of one sample. The sizes keep the
        # runner's shape (equal batches, a smaller last one) so that fit()-based loops can follow them.
        batches = [idx[0:8], idx[0:8], idx[20:28], idx[30:31]]
        self._compare_training(c, backend, spec, X, y, [batches])
        return note

    def check_deterministic(self) -> str | None:
        """Two builds with the same seed and the same training give identical predictions (dropout included)."""
        c = "deterministic"
        spec, _ = self.base_spec(c, dtype=_known(self.cls, "dtypes", DTYPES)[0])
        note = None
        if self.cls.supports_dropout:
            spec = spec.replace(dropout=0.2)
            note = "with dropout 0.2"
        backend = self.runnable(c, spec)
        X, y = make_data(spec)
        runs = []
        for _ in range(2):
            self.build(backend, spec, seed=5)
            for e in range(3):
                backend.train_epoch(X, y, batch_order(len(X), spec.batch_size, 5, e))
            backend.sync()
            runs.append(backend.predict(X))
        if not np.array_equal(runs[0], runs[1]):
            err, _ = _relative_error(runs[1], runs[0])
            raise self.fail(c, f"two runs with seed 5 of {spec!r} (build, 3 epochs, predict) differ by up to "
                            f"{err:.3g}; seed every random choice (dropout masks too) from build()'s seed")  # fmt: skip
        return note

    def check_learns_xor(self) -> str | None:
        """The xor task's default network reaches 4/4 correct (optimizer or dtype adapted when not declared)."""
        c = "learns_xor"
        task = _registry().task("xor")()
        spec = task.spec()
        backend = self.backend()
        notes = []
        if backend.skip(spec) is not None:
            cls = self.cls
            changes: dict[str, Any] = {}
            if spec.optimizer not in cls.optimizers:
                opt = next(o for o in ("adam", "sgd", "momentum", "nesterov") if o in cls.optimizers)
                changes.update(optimizer=opt, lr=_XOR_LR[opt])
            if spec.activation not in cls.activations:
                changes["activation"] = cls.activations[0]
            if spec.dtype not in cls.dtypes:
                changes["dtype"] = cls.dtypes[0]
            if spec.loss not in cls.losses and "cross_entropy" in cls.losses:
                changes.update(loss="cross_entropy", n_outputs=2)
            spec = spec.replace(**changes)
            notes.append("the default spec adapted to the declared capabilities: "
                         + ", ".join(f"{k}={v}" for k, v in changes.items()))  # fmt: skip
        backend = self.runnable(c, spec)
        split = task.load(0)
        X = np.ascontiguousarray(split.X_train, dtype=spec.dtype)
        y = split.y_train
        self.build(backend, spec, seed=0)
        epoch, correct, p = 0, 0, None
        while epoch < max(self.tol.xor_epochs, spec.epochs):
            for _ in range(spec.epochs):
                backend.train_epoch(X, y, batch_order(len(X), spec.batch_size, 0, epoch))
                epoch += 1
            backend.sync()
            p = backend.predict(X)
            correct = int(np.sum(np.argmax(p, axis=1) == y))
            if correct == len(y):
                break
        if correct != len(y):
            raise self.fail(c, f"{correct}/4 XOR points correct after {epoch} epochs of {spec!r}; "
                            f"predicted probabilities {np.round(p, 3).tolist()}")  # fmt: skip
        notes.append(f"4/4 after {epoch} epochs")
        return "; ".join(notes)


def _known(cls: type[Backend], attr: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """The declared values of a capability that the kit knows (unknown ones fail the metadata check)."""
    value = getattr(cls, attr, ())
    return tuple(v for v in value if v in known) if isinstance(value, tuple) else ()


def _bind(fn: Callable[..., str | None], *args: Any, **kwargs: Any) -> Check:
    def check() -> str | None:
        return fn(*args, **kwargs)

    check.__name__ = fn.__name__
    check.__doc__ = fn.__doc__
    return check


__all__ = ["CheckSkipped", "ConformanceError", "Tolerances", "backend_checks", "check_backend", "make_data",
           "parametrize_backend_checks", "pytest_params", "reference_backend"]  # fmt: skip
