"""``run_bench.py list``: every backend and task, where it came from, and whether it can run here."""

from __future__ import annotations

import argparse
from typing import Any

from ..experiment import presets
from .common import EXIT_OK, add_plugin_arg, load_registry


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``list`` sub-command's arguments."""
    p = sub.add_parser("list", help="list backends and tasks, with availability")
    add_plugin_arg(p)
    return p


def cmd(args: argparse.Namespace) -> int:
    """Print every backend and task with where it came from and whether it can run here."""
    registry = load_registry(args.plugin)
    print("Backends:")
    for name, entry in sorted(registry.backends.items()):
        if entry.cls is None:
            state = f"error: {entry.error.splitlines()[0]}"
        else:
            missing = entry.cls.missing_requirements()
            if missing:
                state = f"not installed (cannot import {', '.join(missing)})"
            else:
                vers = ", ".join(f"{k} {v}" for k, v in entry.cls.versions().items())
                state = "available" + (f" ({vers})" if vers else "")
        opts = ""
        if entry.cls is not None and entry.cls.options:
            opts = "  options: " + ", ".join(f"{k}={v}" for k, v in entry.cls.options.items())
        print(f"  {name:<14} {state}  [{entry.source}]{opts}")
    print("Tasks:")
    for name, entry in sorted(registry.tasks.items()):
        if entry.cls is None:
            print(f"  {name:<14} error: {entry.error.splitlines()[0]}  [{entry.source}]")
            continue
        cls = entry.cls
        note = ""
        try:
            why = cls().unavailable()
            note = f"  UNAVAILABLE: {why}" if why else ""
        except Exception as exc:  # a task needing parameters (csv) cannot be probed without them
            note = f"  (needs parameters: {exc})" if cls.params else ""
        print(
            f"  {name:<14} {cls.kind:<10} target {cls.target_metric} {cls.target:g}  {cls.description}  "
            f"[{entry.source}]{note}"
        )
        if cls.params:
            print(f"  {'':<14} parameters: " + ", ".join(f"{k}={v}" for k, v in cls.params.items()))
    print("Executors:")
    print("  local          available (--jobs N: N workers at once, each pinned to cores of its own)")
    try:
        import importlib.metadata

        dask = f"available (distributed {importlib.metadata.version('distributed')})"
    except importlib.metadata.PackageNotFoundError:
        dask = "not installed (pip install 'mlpbench[dask]')"
    print(f"  dask           {dask}  (--executor dask [--scheduler ADDRESS | --scheduler-file FILE])")
    print("Experiment presets (run --config NAME):")
    for name, description in presets().items():
        print(f"  {name:<14} {description}")
    return EXIT_OK
