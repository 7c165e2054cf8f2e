"""The kit's entry points: the list of checks for a backend class, running them, and the pytest glue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backend import Backend
from . import checks_behaviour, checks_meta, checks_native, checks_training, checks_weights
from .core import Check, CheckSkipped, ConformanceError, Tolerances, declares_batch_norm, known
from .run import KitRun


def backend_checks(
    backend_cls: type[Backend], *, tolerances: Tolerances | None = None, **kwargs: Any
) -> list[tuple[str, Check]]:
    """``(check id, callable)`` pairs for `backend_cls`, in the order `check_backend` runs them.

    `kwargs` named like a `Tolerances` field (``rtol``, ``float32_rtol``, ``xor_epochs``)
    change `tolerances` (default `Tolerances()`); the others are the backend's options.
    Which checks exist depends on the class's declared capabilities (one training check
    per declared loss, activation and optimizer; the batch-norm checks with
    ``supports_batch_norm = True``). Each callable takes no argument, raises
    `ConformanceError` on a failure and `CheckSkipped` when it does not apply, and returns
    a note or None. The callables share one prepared backend instance.
    """
    tol, options = Tolerances.split(tolerances, kwargs)
    return _checks(KitRun(backend_cls, options, tol))


def check_backend(
    backend_cls: type[Backend], *, known_differences: dict[str, str] | None = None, **kwargs: Any
) -> list[str]:
    """Run every check on `backend_cls`; raise `ConformanceError` at the first failure.

    `kwargs` are those of `backend_checks` (tolerances and backend options).
    `known_differences` maps check ids to the documented reason they fail (a framework
    difference that cannot be removed); the class's `parity_notes` add their optimizers'
    ``parity[optimizer=...]`` checks. Those checks must fail, and their measured
    difference is reported; one that passes is an error (the entry is stale). Returns
    one line per check: ``ok``, ``ok (note)``, ``skipped: reason`` or ``known difference``.
    A backend whose `requires` cannot be imported raises RuntimeError: nothing can be checked.
    """
    missing = backend_cls.missing_requirements()
    if missing:
        raise RuntimeError(f"cannot check backend {backend_cls.name!r}: cannot import {', '.join(missing)}")
    pairs = backend_checks(backend_cls, **kwargs)
    known_ = known_differences_of(backend_cls, pairs, known_differences)
    report = []
    for check_id, check in pairs:
        try:
            note = _call(check, backend_cls.name, check_id)
        except CheckSkipped as exc:
            report.append(f"{check_id}: skipped: {exc}")
            continue
        except ConformanceError as exc:
            if check_id not in known_:
                raise
            report.append(f"{check_id}: known difference ({known_[check_id]}): {exc}")
            continue
        if check_id in known_:
            raise ConformanceError(
                f"[{backend_cls.name} {check_id}] passes, but known_differences says it fails "
                f"({known_[check_id]}): remove the entry"
            )
        report.append(f"{check_id}: ok" + (f" ({note})" if note else ""))
    return report


def parametrize_backend_checks(
    backend_cls: type[Backend], *, known_differences: dict[str, str] | None = None, **kwargs: Any
) -> Any:
    """A pytest decorator: the test receives ``check`` and calls it; one test per check, ids like ``parity[loss=mse]``.

    Checks that do not apply (and every check when the backend's modules are missing)
    are reported as skipped with the reason; known differences (`known_differences` and
    the class's `parity_notes`) become strict xfails.
    """
    import pytest

    return pytest.mark.parametrize("check", pytest_params(backend_cls, known_differences=known_differences, **kwargs))


def pytest_params(
    backend_cls: type[Backend], *, known_differences: dict[str, str] | None = None, prefix: str = "", **kwargs: Any
) -> list[Any]:
    """The checks as ``pytest.param`` objects (ids ``prefix + check id``), for your own parametrize."""
    import pytest

    pairs = backend_checks(backend_cls, **kwargs)
    known_ = known_differences_of(backend_cls, pairs, known_differences)
    params = []
    for check_id, fn in pairs:
        marks = ()
        if check_id in known_:
            marks = pytest.mark.xfail(strict=True, raises=ConformanceError, reason=known_[check_id])
        params.append(pytest.param(_as_pytest(fn, backend_cls.name, check_id), id=prefix + check_id, marks=marks))
    return params


def known_differences_of(
    cls: type[Backend], pairs: list[tuple[str, Check]], given: dict[str, str] | None
) -> dict[str, str]:
    """Check id -> reason: the class's `parity_notes` (optimizer or "*" -> note), then `given` (which must name checks).

    A note for an optimizer marks its ``parity[optimizer=...]`` check, "*" every one of
    them; sgd has none (it is the optimizer of the other parity checks). A note under
    ``"batch_norm"`` marks ``parity[batch_norm_running]`` (the running statistics; the
    other batch-norm checks keep them at 0 and 1 and must pass).
    """
    ids = [cid for cid, _ in pairs]
    unknown = sorted(set(given or {}) - set(ids))
    if unknown:
        raise ValueError(
            f"known_differences names no check of this backend: {', '.join(unknown)}; check ids: {', '.join(ids)}"
        )
    notes = getattr(cls, "parity_notes", None)
    declared = {}
    for optimizer, note in (notes if isinstance(notes, dict) else {}).items():  # malformed: the metadata check says
        if optimizer == "batch_norm":
            if "parity[batch_norm_running]" in ids:
                declared["parity[batch_norm_running]"] = note
            continue
        for opt in known(cls, "optimizers") if optimizer == "*" else (optimizer,):
            if f"parity[optimizer={opt}]" in ids:
                declared[f"parity[optimizer={opt}]"] = note
    return {**declared, **(given or {})}


def _checks(run: KitRun) -> list[tuple[str, Check]]:
    cls = run.cls
    out: list[tuple[str, Check]] = [
        ("metadata", _bind(checks_meta.check_metadata, run)),
        ("lazy_import", _bind(checks_meta.check_lazy_import, run)),
        ("skip", _bind(checks_meta.check_skip, run)),
    ]
    for dtype in known(cls, "dtypes"):
        out.append((f"initial_weights[{dtype}]", _bind(checks_weights.check_initial_weights, run, dtype)))
    for loss in known(cls, "losses"):
        out.append((f"predict[{loss}]", _bind(checks_weights.check_predict, run, loss)))
    parity: list[tuple[str, dict[str, Any]]] = []
    parity += [(f"parity[loss={loss}]", {"loss": loss}) for loss in known(cls, "losses")]
    parity += [(f"parity[activation={act}]", {"activation": act}) for act in known(cls, "activations")]
    stateful = [opt for opt in known(cls, "optimizers") if opt != "sgd"]  # two epochs, so their state is used
    parity += [(f"parity[optimizer={opt}]", {"optimizer": opt, "epochs": 2}) for opt in stateful]
    if getattr(cls, "supports_l2", False):
        parity.append(("parity[l2]", {"l2": 0.01}))
    if declares_batch_norm(cls):
        # Batch statistics in training, gamma and beta trained, the running statistics used by predict: with
        # bn_momentum 0 they stay at 0 and 1, so these must match whichever running variance a framework keeps...
        parity += [(f"parity[batch_norm={bn}]", {"batch_norm": bn, "bn_momentum": 0.0}) for bn in ("before", "after")]
        # ...and this one checks the running statistics themselves (PyTorch's rule, unbiased variance).
        parity.append(("parity[batch_norm_running]", {"batch_norm": "after", "bn_momentum": 0.3, "epochs": 2}))
    out += [(cid, _bind(checks_training.check_parity, run, cid, **changes)) for cid, changes in parity]
    if declares_batch_norm(cls):
        out.append(("batch_norm_predict", _bind(checks_behaviour.check_batch_norm_predict, run)))
    out += [
        ("given_batches", _bind(checks_training.check_given_batches, run)),
        ("deterministic", _bind(checks_behaviour.check_deterministic, run)),
        ("learns_xor", _bind(checks_behaviour.check_learns_xor, run)),
        ("native_learns_xor", _bind(checks_native.check_native_learns_xor, run)),
        ("native_timing", _bind(checks_native.check_native_timing, run)),
    ]
    return out


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


def _bind(fn: Callable[..., str | None], *args: Any, **kwargs: Any) -> Check:
    def check() -> str | None:
        return fn(*args, **kwargs)

    check.__name__ = fn.__name__
    check.__doc__ = fn.__doc__
    return check
