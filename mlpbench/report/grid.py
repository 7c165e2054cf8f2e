"""Grid points as the tables and figures show them: which settings a task swept, in which order, as what.

A job's record keeps its grid point (setting -> value, only the settings that applied to it) and the
runs table one ``grid_<setting>`` column per swept setting. A task's table groups its rows by the
point's *task-level* settings (spec fields, task parameters, threads): a swept backend option such as
``torch.compile`` is already part of the backend label (``torch[compile=true]``), so it makes separate
rows, not separate points. Values are compared as text (`value_text`), because the experiment file
says ``"0.1"`` where the task recorded ``0.1``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd

from ..choices import BackendChoice

MODE = "mode"  # a pseudo-setting: a leading column only when a task ran in more than one mode
HOST = "host"  # another: a leading column only when a task's records come from more than one machine
_PSEUDO = (MODE, HOST)


def value_text(value: Any) -> str:
    """One spelling per value: 16 and 16.0 are "16", 0.001 is "0.001", True is "true"; missing is ""."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "x".join(value_text(v) for v in value)
    if isinstance(value, (int, float)):
        f = float(value)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    text = str(value)
    try:
        f = float(text)
    except ValueError:
        return text
    return value_text(f) if math.isfinite(f) and text.strip().lower() not in ("nan", "inf", "-inf") else text


def file_safe(setting: str) -> str:
    """A setting's name in a file name: ``moons.noise`` -> ``moons_noise``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", setting).strip("_") or "setting"


def swept_settings(runs: pd.DataFrame, config: dict[str, Any] | None = None) -> list[str]:
    """Every swept setting with a ``grid_<setting>`` column, in the experiment's grid order.

    That order is the records' (each grid point lists its settings as the experiment did); config.json
    keeps its keys sorted, so only its value lists are used, by `ordered_values`.
    """
    return [c[len("grid_") :] for c in runs.columns if c.startswith("grid_")]


def applicable(runs: pd.DataFrame, settings: list[str]) -> list[str]:
    """The settings that applied to some job of `runs` (a task's jobs: ``moons.noise`` not on xor)."""
    return [s for s in settings if f"grid_{s}" in runs and runs[f"grid_{s}"].notna().any()]


def is_backend_option(setting: str, task: str) -> bool:
    """Whether a setting that applied to `task`'s jobs is a backend option (``torch.compile``).

    A dotted setting that applies to a task's jobs is either that task's parameter (``moons.noise`` on
    moons) or an option of the job's backend; nothing else can apply.
    """
    return "." in setting and setting.partition(".")[0] != task


def point_settings(runs: pd.DataFrame, task: str, config: dict[str, Any] | None) -> list[str]:
    """The columns that tell a task's grid points apart: task-level settings, then ``mode`` and ``host``.

    ``mode`` only when the task ran in more than one mode, ``host`` only when its records come from more
    than one machine: timings from different machines are not comparable, so their rows are ranked apart.
    """
    settings = [s for s in applicable(runs, swept_settings(runs, config)) if not is_backend_option(s, task)]
    for pseudo in _PSEUDO:
        if pseudo in runs and runs[pseudo].dropna().nunique() > 1:
            settings.append(pseudo)
    return settings


def column(setting: str) -> str:
    """The runs-table column of a setting."""
    return setting if setting in _PSEUDO else f"grid_{setting}"


def ordered_values(setting: str, values: list[Any], config: dict[str, Any] | None) -> list[str]:
    """The distinct values (as text) in the experiment's grid order; values it does not list follow."""
    seen = list(dict.fromkeys(value_text(v) for v in values if value_text(v) != ""))
    if setting == MODE:
        listed = [value_text(v) for v in (config or {}).get("modes") or []]
    elif setting == HOST:
        listed = []  # in the order the records came
    else:
        listed = [value_text(v) for v in ((config or {}).get("grid") or {}).get(setting) or []]
    return [v for v in listed if v in seen] + [v for v in seen if v not in listed]


def points_of(runs: pd.DataFrame, settings: list[str]) -> pd.Series:
    """Each job's point as a tuple of value texts (one per setting), aligned with `runs`."""
    if not settings:
        return pd.Series([()] * len(runs), index=runs.index, dtype=object)
    cols = [runs[column(s)] if column(s) in runs else pd.Series(None, index=runs.index) for s in settings]
    return pd.Series([tuple(value_text(c.loc[i]) for c in cols) for i in runs.index], index=runs.index, dtype=object)


def point_order(points: list[tuple[str, ...]], settings: list[str], orders: dict[str, list[str]]) -> list[tuple]:
    """The distinct points sorted by each setting's grid order (the plan's order)."""

    def key(point: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(
            orders[s].index(v) if v in orders[s] else len(orders[s]) for s, v in zip(settings, point, strict=True)
        )

    return sorted(dict.fromkeys(points), key=key)


def point_label(settings: list[str], point: tuple[str, ...]) -> str:
    """``hidden=64, batch_size=32`` (settings that did not apply to a row are left out)."""
    return ", ".join(f"{s}={v}" for s, v in zip(settings, point, strict=True) if v != "")


def without_option(backend: str, backend_name: Any, options: Any, setting: str) -> str:
    """A backend label with the swept option `setting` (``torch.compile``) taken out: ``torch``.

    The series a backend-option sweep draws: every ``torch[compile=...]`` job is one line over the option.
    """
    owner, _, name = setting.partition(".")
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except ValueError:
            options = {}
    if not isinstance(options, dict) or str(backend_name) != owner or name not in options:
        return str(backend)
    rest = tuple((k, str(v)) for k, v in options.items() if k != name)
    return BackendChoice(owner, rest).label


def numeric_positions(values: list[str]) -> list[float] | None:
    """Where each value sits on a numeric x axis, or None when the values are categories.

    Numbers are numbers; ``hidden`` widths of one layer ("16", "256") are placed at their width, and
    any multi-layer value ("64x64") makes the whole axis categorical in grid order.
    """
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def group_text(settings: list[str]) -> str:
    """How a table's rows are ranked, for its legend: "" or " within each grid point, mode and machine"."""
    names = (["grid point"] if any(s not in _PSEUDO for s in settings) else []) + [
        {MODE: "mode", HOST: "machine"}[s] for s in _PSEUDO if s in settings
    ]
    if not names:
        return ""
    return " within each " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1])
