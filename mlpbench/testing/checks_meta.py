"""Checks of what the class declares: its metadata, that its module imports lazily, and `skip`."""

from __future__ import annotations

import json
import subprocess
import sys

from ..backend import Backend
from ..spec import ACTIVATIONS, DTYPES, LOSSES, OPTIMIZERS, ModelSpec
from .core import CAPABILITIES, CheckSkipped, declares_batch_norm
from .run import KitRun


def check_metadata(run: KitRun) -> str | None:
    """Class attributes are well-formed and the class can be built with its default options."""
    cls, c = run.cls, "metadata"
    if not isinstance(cls.name, str) or not cls.name.strip() or cls.name != cls.name.strip():
        raise run.fail(c, f"`name` must be a non-empty string without surrounding spaces, got {cls.name!r}")
    if any(ch in cls.name for ch in ",[]= "):
        raise run.fail(c, f"`name` {cls.name!r} contains one of , [ ] = or a space, which --backends cannot parse")
    if not isinstance(cls.requires, tuple) or not all(isinstance(m, str) and m for m in cls.requires):
        raise run.fail(c, f"`requires` must be a tuple of module names, got {cls.requires!r}")
    for attr, values in CAPABILITIES.items():
        value = getattr(cls, attr)
        if not isinstance(value, tuple) or not value:
            raise run.fail(c, f"`{attr}` must be a non-empty tuple, got {value!r}")
        unknown = [v for v in value if v not in values]
        if unknown:
            raise run.fail(c, f"`{attr}` lists unknown value(s) {unknown}; known: {', '.join(values)}")
    if not isinstance(cls.devices, tuple) or not cls.devices or not all(isinstance(d, str) for d in cls.devices):
        raise run.fail(c, f"`devices` must be a non-empty tuple of strings, got {cls.devices!r}")
    for attr in ("supports_dropout", "supports_l2", "accepts_weights"):
        if not isinstance(getattr(cls, attr), bool):
            raise run.fail(c, f"`{attr}` must be True or False, got {getattr(cls, attr)!r}")
    if not isinstance(getattr(cls, "supports_batch_norm", False), bool):
        raise run.fail(c, f"`supports_batch_norm` must be True or False, got {cls.supports_batch_norm!r}")
    if not isinstance(cls.options, dict) or not all(isinstance(k, str) for k in cls.options):
        raise run.fail(c, f"`options` must be a dict of option name -> default, got {cls.options!r}")
    _check_parity_attributes(run, cls)
    if cls.native is not None and not isinstance(cls.native, bool):
        raise run.fail(c, f"`native` must be None, True or False, got {cls.native!r}")
    for attr in ("native_loop", "native_early_stopping"):
        if not isinstance(getattr(cls, attr), str) or not getattr(cls, attr).strip():
            raise run.fail(c, f"`{attr}` must be a non-empty string, got {getattr(cls, attr)!r}")
    try:
        backend = cls(**run.options)
    except Exception as exc:
        raise run.fail(c, f"{cls.__name__}(**{run.options!r}) raised {type(exc).__name__}: {exc}") from exc
    env = cls.worker_env(dict(run.options))
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise run.fail(c, f"worker_env() must return a dict of str -> str, got {env!r}")
    versions = cls.versions()
    if not isinstance(versions, dict):
        raise run.fail(c, f"versions() must return a dict, got {versions!r}")
    repr(backend)
    return None


def _check_parity_attributes(run: KitRun, cls: type[Backend]) -> None:
    target = cls.parity_target
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float) or target <= 0):
        raise run.fail("metadata", f"`parity_target` must be a positive number or None, got {target!r}")
    for attr in ("parity_notes", "parity_mapping"):
        value = getattr(cls, attr)
        if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
            raise run.fail("metadata", f"`{attr}` must be a dict of optimizer (or '*') -> text, got {value!r}")
        unknown = [k for k in value if k not in ("*", "batch_norm") and k not in OPTIMIZERS]
        if unknown:
            keys = ", ".join(("'*'", *OPTIMIZERS, "batch_norm"))
            raise run.fail("metadata", f"`{attr}` has unknown key(s) {unknown}; the keys are {keys}")


def check_lazy_import(run: KitRun) -> str | None:
    """Importing the backend's module imports none of its frameworks (listing and planning must stay cheap)."""
    cls = run.cls
    frameworks = [m for m in cls.requires if m != "numpy"]
    if not frameworks:
        raise CheckSkipped("the backend requires no framework besides numpy")
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    code = (
        "import importlib, importlib.util, json, sys\n"
        "import mlpbench\n"
        "before = set(sys.modules)\n"
        f"name, path = {cls.__module__!r}, {path!r}\n"
        "if name.startswith('mlpbench_plugin_') and path:\n"
        "    spec = importlib.util.spec_from_file_location(name, path)\n"
        "    m = importlib.util.module_from_spec(spec); sys.modules[name] = m; spec.loader.exec_module(m)\n"
        "else:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise run.fail(
            "lazy_import",
            f"importing {cls.__module__} in a fresh process failed:\n{proc.stderr.strip()[-2000:]}",
        )
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    eager = [m for m in frameworks if m in loaded]
    if eager:
        raise run.fail(
            "lazy_import",
            f"importing {cls.__module__} imports {', '.join(eager)}: import "
            "the framework inside prepare() or build(), so that `list` and planning never load it",
        )
    return None


def check_skip(run: KitRun) -> str | None:
    """skip() returns None for specs inside the declared capabilities and a reason (not an exception) outside."""
    c, cls = "skip", run.cls
    backend = run.backend()
    base, _ = run.base_spec()
    inside: list[ModelSpec] = [base]
    inside += [base.replace(activation=a) for a in cls.activations]
    inside += [run.base_spec(loss=loss, dtype=base.dtype)[0] for loss in cls.losses]
    inside += [base.replace(optimizer=o) for o in cls.optimizers]
    inside += [base.replace(dtype=d) for d in cls.dtypes]
    if cls.supports_dropout:
        inside.append(base.replace(dropout=0.2))
    if cls.supports_l2:
        inside.append(base.replace(l2=0.01))
    batch_norm = declares_batch_norm(cls)
    bn_specs = [base.replace(batch_norm=bn) for bn in ("before", "after")]
    if batch_norm:
        inside += bn_specs
    for spec in inside:
        reason = _ask_skip(run, backend, spec)
        if reason is not None:
            raise run.fail(c, f"skip() declines {spec!r}, which is inside the declared capabilities: {reason!r}")
    outside: list[ModelSpec] = []
    outside += [base.replace(activation=a) for a in ACTIVATIONS if a not in cls.activations]
    outside += [run.base_spec(loss=loss, dtype=base.dtype)[0] for loss in LOSSES if loss not in cls.losses]
    outside += [base.replace(optimizer=o) for o in OPTIMIZERS if o not in cls.optimizers]
    outside += [base.replace(dtype=d) for d in DTYPES if d not in cls.dtypes]
    if not cls.supports_dropout:
        outside.append(base.replace(dropout=0.2))
    if not cls.supports_l2:
        outside.append(base.replace(l2=0.01))
    if not batch_norm:
        outside += bn_specs
    for spec in outside:
        reason = _ask_skip(run, backend, spec)
        if not isinstance(reason, str) or not reason:
            raise run.fail(
                c,
                f"skip() returned {reason!r} for {spec!r}, which is outside the declared "
                "capabilities; it must return the reason as a string",
            )
    return None


def _ask_skip(run: KitRun, backend: Backend, spec: ModelSpec) -> str | None:
    try:
        return backend.skip(spec)
    except Exception as exc:
        raise run.fail(
            "skip",
            f"skip({spec!r}) raised {type(exc).__name__}: {exc}; it must return a reason string (or None), never raise",
        ) from exc
