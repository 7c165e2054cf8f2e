"""Finding backends and tasks: entry points (built-ins are registered like any plugin) and local files."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .backend import Backend
from .task import Task

BACKEND_GROUP = "mlpbench.backends"
TASK_GROUP = "mlpbench.tasks"


class PluginError(ValueError):
    """A plugin file or entry point that cannot be used; the message says why and what to do."""


@dataclass
class Entry:
    """One discovered backend or task class, or the reason it could not be loaded."""

    name: str
    kind: str  # "backend" or "task"
    source: str  # "built-in", "package <dist> <version>", or "file <path>"
    cls: type | None = None
    error: str | None = None  # import failure, with the last traceback lines


@dataclass
class Registry:
    """Every backend and task that can be named in a plan."""

    backends: dict[str, Entry] = field(default_factory=dict)
    tasks: dict[str, Entry] = field(default_factory=dict)
    plugin_files: tuple[str, ...] = ()

    def backend(self, name: str) -> type[Backend]:
        """The backend class called `name`; raises with the valid names or the import error."""
        return self._get(self.backends, name, "backend")

    def task(self, name: str) -> type[Task]:
        """The task class called `name`; raises with the valid names or the import error."""
        return self._get(self.tasks, name, "task")

    @staticmethod
    def _get(table: dict[str, Entry], name: str, kind: str) -> type:
        entry = table.get(name)
        if entry is None:
            raise PluginError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(sorted(table)) or 'none'}")
        if entry.cls is None:
            raise PluginError(f"{kind} {name!r} ({entry.source}) failed to load: {entry.error}")
        return entry.cls


_BUILTIN_DIST = "mlpbench"


def discover(plugin_files: list[str] | tuple[str, ...] = ()) -> Registry:
    """Load the entry points of both groups, then the classes defined in `plugin_files`.

    A broken entry point is kept with its error (so the suite can record it and go on);
    a plugin file named explicitly that is missing or defines nothing is an error.
    """
    reg = Registry(plugin_files=tuple(str(p) for p in plugin_files))
    for group, kind, table in ((BACKEND_GROUP, "backend", reg.backends), (TASK_GROUP, "task", reg.tasks)):
        for ep in importlib.metadata.entry_points(group=group):
            dist = getattr(ep, "dist", None)
            if dist is not None and dist.metadata["Name"] == _BUILTIN_DIST:
                source = "built-in"
            elif dist is not None:
                source = f"package {dist.metadata['Name']} {dist.version}"
            else:
                source = "entry point"
            entry = Entry(name=ep.name, kind=kind, source=source)
            try:
                entry.cls = ep.load()
                _check_class(entry.cls, kind, f"entry point {ep.value}")
            except Exception as exc:  # a broken third-party plugin must not stop the suite
                entry.cls = None
                entry.error = _short_error(exc)
            table.setdefault(ep.name, entry)
    for path in plugin_files:
        for entry in load_plugin_file(path):
            (reg.backends if entry.kind == "backend" else reg.tasks)[entry.name] = entry
    return reg


def load_plugin_file(path: str | Path) -> list[Entry]:
    """The Backend and Task subclasses defined in a Python file, as registry entries.

    Helper base classes are not registered: private ones (a name starting with ``_``),
    abstract ones and those without a `name`. A file that defines no other is an error.
    """
    p = Path(path)
    if not p.is_file():
        raise PluginError(f"--plugin {path}: no such file")
    if p.suffix != ".py":
        raise PluginError(f"--plugin {path}: expected a Python file ending in .py")
    module_name = f"mlpbench_plugin_{p.stem}_{abs(hash(str(p.resolve()))) % 10**8}"
    spec = importlib.util.spec_from_file_location(module_name, p)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise PluginError(f"--plugin {path}: importing it failed: {_short_error(exc)}") from exc
    entries, helpers = [], []
    for obj in vars(module).values():
        if not inspect.isclass(obj) or obj.__module__ != module_name:
            continue
        if issubclass(obj, Backend):
            kind = "backend"
        elif issubclass(obj, Task):
            kind = "task"
        else:
            continue
        if obj.__name__.startswith("_") or inspect.isabstract(obj) or not obj.name:
            helpers.append(obj.__name__)
            continue
        entries.append(Entry(name=obj.name, kind=kind, source=f"file {p}", cls=obj))
    if not entries:
        skipped = f"; not registered: {', '.join(helpers)} (private, abstract or without a `name`)" if helpers else ""
        raise PluginError(
            f"--plugin {path}: defines no Backend or Task subclass "
            f"(subclass mlpbench.Backend or mlpbench.Task and give it a `name`){skipped}"
        )
    return entries


def _check_class(cls: object, kind: str, where: str) -> None:
    base = Backend if kind == "backend" else Task
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise TypeError(f"{where} is not a subclass of mlpbench.{base.__name__}")


def _short_error(exc: BaseException) -> str:
    """The exception and the last three lines of its traceback."""
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    tail = "".join(tb).strip().splitlines()[-3:]
    return f"{type(exc).__name__}: {exc}" + ("\n" + "\n".join(tail) if len(tail) > 1 else "")
