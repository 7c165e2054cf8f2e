"""report.html: the report as one self-contained page, rendered from ``templates/report.html.j2``.

The page's CSS and script are package files (``static/report.css``, ``static/report.js``) inlined
into it, and its figures are data URIs, so it works offline as a single file. Its
Content-Security-Policy forbids every fetch and every script but its own (allowed by hash).

The template runs with autoescape on, and every value is escaped with `html.escape` on output
(`_escaped`), the same entities report.md uses: no string from the results reaches the page as markup.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
from collections.abc import Collection
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from .. import __version__
from ..scaling import TASK as SCALING_TASK
from ..status import FAILED, FINISHED, Status
from .facts import (
    PARITY_COLUMNS,
    SCALING_COLUMNS,
    backend_facts,
    machine_facts,
    parity_cells,
    reason,
    run_facts,
    scaling_cells,
)
from .grid import group_text
from .machines import MACHINE_COLUMNS, MACHINES_NOTE, hosts, machine_rows
from .model import SCALING_FIGURE, Figure, Report, TaskSection, slug
from .modes import MODES_NOTE, ModesSection
from .modes import cells as mode_cells
from .modes import headers as mode_headers
from .references import REFERENCES_NOTE, ReferenceTable
from .references import cells as reference_cells
from .references import headers as reference_headers
from .sweep import SweepSection, best_metric_text, cell_text, fastest_text
from .tables import COLUMN_NOTES

TEMPLATE = "report.html.j2"
_PACKAGE = __package__ or "mlpbench.report"


def _escaped(value: Any) -> Any:
    """Every value the template prints, escaped as `html.escape` does (markup built by the template stays)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,
        finalize=_escaped,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@functools.cache
def static_text(name: str) -> str:
    """A file of the package's ``static/`` folder (the page's CSS and script)."""
    return resources.files(_PACKAGE).joinpath("static", name).read_text(encoding="utf-8")


def content_security_policy(script: str) -> str:
    """No network fetch, no script but `script` (by its hash), whatever the results contain."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _head(columns: list[tuple[str, str, str]]) -> list[dict[str, str]]:
    return [{"text": text, "cls": cls, "tip": tip} for text, cls, tip in columns]


def _plain(names: list[str], numeric: Collection[str] = ()) -> list[dict[str, str]]:
    return _head([(n, "num" if n in numeric else "", "") for n in names])


def _figure(f: Figure, task: str) -> dict[str, str]:
    return {"src": _data_uri(f.path), "alt": f"{task}: {f.title}", "title": f.title, "caption": f.caption}


def _section(s: TaskSection, palette: dict[str, str], report: Report) -> dict[str, Any]:
    columns = [(k, "", "grid point") for k in s.settings] + [("backend", "", "")]
    columns += [(c.header, "" if c.key == "jobs" else "num", c.tip) for c in s.columns]
    rows = []
    for r in s.rows:
        cells = []
        for c in s.columns:
            best = c.key in r.get("best", set())
            cls = ("" if c.key == "jobs" else "num") + (" best" if best else "")
            detail = c.detail(r) if c.detail else ""
            cells.append({"value": c.fmt(r.get(c.key)), "best": best, "detail": detail, "cls": cls.strip()})
        colour = palette.get(r["backend"], "#888")
        rows.append({"lead": list(r["point"]), "backend": r["backend"], "colour": colour, "cells": cells})
    return {
        "task": s.task,
        "slug": slug(s.task),
        "setup": s.setup,
        "ranked": group_text(s.settings),
        "columns": _head(columns),
        "rows": rows,
        "figures": [_figure(f, s.task) for f in s.figures],
        "stopping": {"heading": s.stopping_heading, "lines": s.stopping} if s.stopping else None,
        "references": _references(s.references) if s.references is not None else None,
        "modes": _modes(s.modes) if s.modes is not None else None,
        "sweep": _sweep(s.sweep) if s.sweep is not None else None,
        "scaling": _scaling(report) if s.task == SCALING_TASK else None,
    }


def _text_cells(texts: list[str], numeric: Collection[int]) -> list[dict[str, Any]]:
    return [{"text": t, "cls": "num" if i in numeric else "", "best": False} for i, t in enumerate(texts)]


def _references(t: ReferenceTable) -> dict[str, Any]:
    names = reference_headers(t)
    numeric = {len(names) - 2, len(names) - 1}
    return {
        "slug": slug(t.task),
        "task": t.task,
        "note": REFERENCES_NOTE,
        "columns": _head([(h, "num" if i in numeric else "", "") for i, h in enumerate(names)]),
        "rows": [_text_cells(reference_cells(t, r), numeric) for r in t.rows],
        "errors": t.errors,
        "comparison": t.comparison,
    }


def _modes(m: ModesSection) -> dict[str, Any]:
    names = mode_headers(m)
    numeric = set(range(len(m.settings) + 1, len(names)))
    return {
        "slug": slug(m.task),
        "task": m.task,
        "note": MODES_NOTE,
        "columns": _head([(h, "num" if i in numeric else "", "") for i, h in enumerate(names)]),
        "rows": [_text_cells(mode_cells(p), numeric) for p in m.pairs],
        "loops": m.loops,
        "figure": _figure(m.figure, m.task) if m.figure else None,
    }


def _machines(report: Report) -> dict[str, Any] | None:
    rows = machine_rows(report.records, report.results.env or {})
    if not rows:
        return None
    return {
        "note": MACHINES_NOTE.format(n=len(hosts(report.records))),
        "columns": _plain(MACHINE_COLUMNS, set(MACHINE_COLUMNS[2:4])),
        "rows": [_text_cells(r, {2, 3}) for r in rows],
    }


def _sweep(w: SweepSection) -> dict[str, Any]:
    metric = w.metric or "metric"
    columns = [(k, "", "grid point") for k in w.settings]
    columns += [(f"{b} ms", "num", "epoch ms: median of the steady-state epochs") for b in w.backends]
    columns += [("fastest", "", "lowest median epoch time; ties: overlapping 95% intervals")]
    columns += [(f"{b} {metric}", "num", "test metric, median over seeds") for b in w.backends]
    columns += [(f"best {metric}", "", "")]
    rows = []
    for row in w.rows:
        cells = [{"text": v, "cls": "", "best": False} for v in row.values]
        for key in ("epoch_ms", "metric"):
            for b in w.backends:
                text, best = cell_text(row, b, key)
                cells.append({"text": text, "cls": "num best" if best else "num", "best": best})
            who = fastest_text(row) if key == "epoch_ms" else best_metric_text(row, len(w.backends))
            cells.append({"text": who, "cls": "", "best": False})
        rows.append(cells)
    return {
        "slug": slug(w.task),
        "task": w.task,
        "columns": _head(columns),
        "rows": rows,
        "figures": [_figure(f, w.task) for f in w.figures],
    }


def _profile(report: Report) -> dict[str, Any] | None:
    p = report.profile
    if p is None:
        return None
    return {"lines": p.lines, "figure": _figure(p.figure, "across tasks") if p.figure else None}


def _parity(report: Report) -> dict[str, Any] | None:
    if report.parity is None:
        return None
    numeric = {k for k, _ in PARITY_COLUMNS if k.startswith("max_") or k == "target"}
    rows = [
        [
            {"text": v, "cls": "num" if k in numeric else "", "alarm": k == "within_target" and v == "NO"}
            for (k, _), v in zip(PARITY_COLUMNS, parity_cells(r), strict=True)
        ]
        for r in report.parity
    ]
    return {"columns": _head([(h, "num" if k in numeric else "", "") for k, h in PARITY_COLUMNS]), "rows": rows}


def _scaling(report: Report) -> dict[str, Any] | None:
    if not report.scaling:
        return None
    picture = report.path / SCALING_FIGURE
    figure = {"src": _data_uri(picture), "alt": "epoch time against work", "title": ""} if picture.is_file() else None
    rows = [
        [{"text": c, "cls": "" if i == 0 else "num", "best": False} for i, c in enumerate(scaling_cells(r))]
        for r in report.scaling
    ]
    return {"figure": figure, "columns": _plain(SCALING_COLUMNS, set(SCALING_COLUMNS[1:])), "rows": rows}


def _status_kind(status: Any) -> str:
    """The CSS class of a status badge: ``failed`` (something went wrong), ``not-run`` (skipped and the like)."""
    if status in FAILED:
        return "failed"
    return "not-run" if status in FINISHED and status != Status.OK else ""


def _problems(report: Report) -> list[dict[str, Any]]:
    return [
        {
            "backend": r.get("backend"),
            "task": r.get("task"),
            "seed": r.get("seed"),
            "status": r.get("status"),
            "status_class": re.sub(r"[^a-z_]", "", str(r.get("status"))),
            "kind": _status_kind(r.get("status")),
            "reason": reason(r),
            "traceback": r.get("traceback") or "",
        }
        for r in report.problems
    ]


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def render_html(report: Report) -> str:
    """report.html: one self-contained page (inline CSS, figures as data URIs, no external resource)."""
    from . import figures as figs

    palette = figs.colours(report.backends)
    runs = report.results.runs
    n_ok = int((runs["status"] == Status.OK).sum()) if len(runs) else 0
    chips = [_counted(len(report.backends), "backend"), _counted(len(report.tasks), "task")]
    toc = [("run", "What ran"), ("machine", "Machine")]
    for s in report.sections:
        toc.append((f"task-{slug(s.task)}", s.task))
        if s.modes is not None:
            toc.append((f"modes-{slug(s.task)}", f"{s.task} modes"))
        if s.sweep is not None:
            toc.append((f"sweep-{slug(s.task)}", f"{s.task} sweep"))
    if report.profile is not None:
        toc.append(("profile", "Performance profiles"))
    if report.parity is not None:
        toc.append(("parity", "Parity"))
    toc.append(("problems", "Did not finish"))
    facts = backend_facts(report)
    for f in facts:
        f["colour"] = palette.get(f["backend"], "#888")
    script = static_text("report.js")
    template = _environment().get_template(TEMPLATE)
    return template.render(
        name=report.path.name,
        path=str(report.path),
        version=__version__,
        backends=report.backends,
        tasks=report.tasks,
        chips=[*chips, f"{len(runs)} jobs", f"{n_ok} ok"],
        n_bad=len(report.problems),
        toc=toc,
        run_facts=run_facts(report),
        backend_columns=_plain(["backend", "implementation", "options", "versions", "jobs"]),
        backend_facts=facts,
        machine_facts=machine_facts(report),
        machines=_machines(report),
        glance=report.glance,
        notes=COLUMN_NOTES,
        sections=[_section(s, palette, report) for s in report.sections],
        profile=_profile(report),
        parity=_parity(report),
        scaling=None if SCALING_TASK in report.tasks else _scaling(report),
        problem_columns=_plain(["backend", "task", "seed", "status", "reason"], {"seed"}),
        problems=_problems(report),
        csp=Markup(content_security_policy(script)),  # fixed text and base64: nothing to escape
        css=Markup(static_text("report.css")),
        script=Markup(script),
    )
