"""What every command shares: exit statuses, argument types, usage errors, the registry, results directories."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..choices import BackendChoice, default_backends, parse_backend_list
from ..registry import PluginError, Registry, discover
from ..store import timestamped_dir  # noqa: F401 - one place builds results/<timestamp>, re-exported here

EXIT_OK, EXIT_FAILED_JOBS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_THREADS = 1  # measured: small MLPs run fastest single-threaded on this class of machine (docs/performance)
PROG = "run_bench.py"


class UsageError(Exception):
    """Bad input: printed as one clear message, exit status 2."""


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """Turn the library's ValueError / PluginError (bad names, values, files) into a UsageError."""
    try:
        yield
    except (ValueError, PluginError) as exc:
        raise UsageError(str(exc)) from exc


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    t = text.strip().lower()
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; use e.g. 90s, 10m or 1h") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a timeout must be a positive, finite duration")
    return value


def positive_int(text: str) -> int:
    """An argument type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def key_value(text: str) -> tuple[str, str]:
    """An argument type: ``KEY=VALUE``."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def add_plugin_arg(p: Any) -> None:
    """The ``--plugin FILE`` option every command that loads backends or tasks takes (`p`: a parser or a group)."""
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="FILE",
        help="load Backend/Task classes from a local Python file (repeatable)",
    )


def add_oversubscribe_arg(p: Any, default: bool | None) -> None:
    """The ``--oversubscribe`` option of every command that trains (`p`: a parser or a group; `default` None
    when an experiment file's value stands unless the flag is given)."""
    p.add_argument(
        "--oversubscribe",
        action="store_true",
        default=default,
        help="allow more threads than this machine has cores (timings are then not meaningful)",
    )


def add_progress_arg(p: Any) -> None:
    """The ``--no-progress`` option of every command that trains (`p`: a parser or a group)."""
    p.add_argument("--no-progress", action="store_true", help="no live progress display, one line per job")


def load_registry(plugin_files: list[str]) -> Registry:
    """Every backend and task, with the plugin files; a bad plugin file is a usage error."""
    with usage_errors():
        return discover(plugin_files)


def backend_choices(text: str | None, registry: Registry, keep_broken: bool = True) -> list[BackendChoice]:
    """The backends named by --backends, or `default_backends` when it is not given.

    Unknown names are the registry's error (raised when the plan is made).
    """
    if text is None:
        return parse_backend_list(",".join(default_backends(registry, keep_broken)))
    with usage_errors():
        choices = parse_backend_list(text)
    if not choices:
        raise UsageError("no backend to run: name at least one with --backends")
    return choices


def after_run(path: Path) -> None:
    """Write the reports of a finished (or interrupted) run; a failure here never loses results."""
    from ..report import write_reports

    try:
        _md, html_path = write_reports(path)
        print(f"Report: {html_path}")
    except Exception as exc:  # the results are already on disk; a broken report must not hide them
        print(
            f"warning: the report could not be written ({type(exc).__name__}: {exc}); the results in "
            f"{path} are intact. Retry with: python {PROG} report {path}",
            file=sys.stderr,
        )
