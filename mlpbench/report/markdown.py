"""report.md: the report as GitHub Markdown, its figures linked as PNG files next to it."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..scaling import TASK as SCALING_TASK
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
from .format import code_span, md_text
from .grid import group_text
from .machines import MACHINE_COLUMNS, MACHINES_NOTE, hosts, machine_rows
from .model import SCALING_FIGURE, Figure, Report, TaskSection
from .modes import MODES_NOTE, ModesSection
from .modes import cells as mode_cells
from .modes import headers as mode_headers
from .references import REFERENCES_NOTE, ReferenceTable
from .references import cells as reference_cells
from .references import headers as reference_headers
from .sweep import SweepSection, best_metric_text, cell_text, fastest_text
from .tables import COLUMN_NOTES, Column

_BACKEND_KEYS = ("backend", "implementation", "options", "versions", "jobs")


def md_table(headers: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A GitHub Markdown table; cells must already be escaped."""
    align = align or ["l"] * len(headers)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _kv_table(facts: list[tuple[str, str]]) -> str:
    return md_table(["", ""], [[f"**{md_text(k)}**", md_text(v)] for k, v in facts])


def _md_cell(col: Column, row: dict[str, Any]) -> str:
    value = col.fmt(row.get(col.key))
    if col.key in row.get("best", set()):
        value = f"**{value}**"
    detail = col.detail(row) if col.detail else ""
    return md_text(value).replace(r"\*\*", "**") + (f" ({md_text(detail)})" if detail else "")


def _bold(text: str, best: bool) -> str:
    return f"**{md_text(text)}**" if best else md_text(text)


def _figures(report: Report, figures: list[Figure]) -> list[str]:
    out = []
    for f in figures:
        rel = f.path.relative_to(report.path).as_posix()
        out += [f"![{md_text(f.title)}]({rel})", "", f"*{md_text(f.caption)}*", ""]
    return out


def _task(report: Report, s: TaskSection) -> list[str]:
    out = [f"## Task: {md_text(s.task)}", ""]
    if s.setup:
        out += [md_text(s.setup), ""]
    headers = [md_text(k) for k in s.settings] + ["backend"] + [md_text(c.header) for c in s.columns]
    rows = [
        [md_text(v) for v in r["point"]] + [md_text(r["backend"])] + [_md_cell(c, r) for c in s.columns] for r in s.rows
    ]
    align = ["l"] * (len(s.settings) + 1) + ["l" if c.key == "jobs" else "r" for c in s.columns]
    out += [md_table(headers, rows, align), ""]
    where = group_text(s.settings)
    out += [
        f"Bold: best value of the column{where} (ties included; in epoch ms every backend whose confidence "
        "interval overlaps the fastest one's). Medians over seeds; ok jobs only.",
        "",
    ]
    if s.stopping:
        out += [md_text(s.stopping_heading), ""] + [f"- {md_text(line)}" for line in s.stopping] + [""]
    return out + _figures(report, s.figures)


def _references(t: ReferenceTable) -> list[str]:
    out = [f"## References: {md_text(t.task)}", "", f"*{md_text(REFERENCES_NOTE)}*", ""]
    if t.rows:
        rows = [[md_text(c) for c in reference_cells(t, r)] for r in t.rows]
        align = ["l"] * (len(rows[0]) - 2) + ["r", "r"]
        out += [md_table([md_text(h) for h in reference_headers(t)], rows, align), ""]
    if t.errors:
        out += ["Not scored: " + md_text("; ".join(t.errors)), ""]
    return out + ([md_text(t.comparison), ""] if t.comparison else [])


def _modes(report: Report, m: ModesSection) -> list[str]:
    out = [f"## Native vs controlled: {md_text(m.task)}", ""]
    rows = [[md_text(c) for c in mode_cells(p)] for p in m.pairs]
    align = ["l"] * (len(m.settings) + 1) + ["r"] * 5
    out += [md_table([md_text(h) for h in mode_headers(m)], rows, align), "", md_text(MODES_NOTE), ""]
    if m.loops:
        out += ["What native runs:", ""] + [f"- {md_text(line)}" for line in m.loops] + [""]
    return out + (_figures(report, [m.figure]) if m.figure else [])


def _machines(report: Report) -> list[str]:
    rows = machine_rows(report.records, report.results.env or {})
    if not rows:
        return []
    table = md_table(MACHINE_COLUMNS, [[md_text(c) for c in r] for r in rows], ["l", "l", "r", "r", "l"])
    return [md_text(MACHINES_NOTE.format(n=len(hosts(report.records)))), "", table, ""]


def _sweep(report: Report, w: SweepSection) -> list[str]:
    out = [f"## Sweep: {md_text(w.task)}", ""]
    metric = w.metric or "metric"
    headers = [md_text(k) for k in w.settings]
    headers += [md_text(f"{b} ms") for b in w.backends] + ["fastest"]
    headers += [md_text(f"{b} {metric}") for b in w.backends] + [md_text(f"best {metric}")]
    rows = []
    for row in w.rows:
        cells = [md_text(v) for v in row.values]
        cells += [_bold(*cell_text(row, b, "epoch_ms")) for b in w.backends] + [md_text(fastest_text(row))]
        cells += [_bold(*cell_text(row, b, "metric")) for b in w.backends]
        cells.append(md_text(best_metric_text(row, len(w.backends))))
        rows.append(cells)
    align = ["l"] * len(w.settings) + ["r"] * len(w.backends) + ["l"] + ["r"] * len(w.backends) + ["l"]
    out += [md_table(headers, rows, align), ""]
    out += [
        "One row per grid point. *ms*: epoch ms (median of the steady-state epochs); *fastest*: the lowest "
        "median, with the backends whose 95% interval overlaps it as ties. Bold: best at that point.",
        "",
    ]
    return out + _figures(report, w.figures)


def _profile(report: Report) -> list[str]:
    p = report.profile
    if p is None:
        return []
    out = ["## Across tasks: performance profiles", ""]
    out += [f"- {md_text(line)}" for line in p.lines] + [""]
    return out + (_figures(report, [p.figure]) if p.figure else [])


def _parity(report: Report) -> list[str]:
    out = ["## Parity between backends", ""]
    if report.parity:
        rows = [[md_text(c) for c in parity_cells(r)] for r in report.parity]
        out.append(md_table([h for _, h in PARITY_COLUMNS], rows, ["l", "l", "l", "r", "r", "r", "l", "l"]))
    else:
        out.append("parity.json holds no entries.")
    return out + [""]


def _scaling(report: Report) -> list[str]:
    out = ["## Scaling: epoch time against work", ""]
    if (report.path / SCALING_FIGURE).is_file():
        out += [f"![epoch time against work]({SCALING_FIGURE})", ""]
    rows = [[md_text(c) for c in scaling_cells(r)] for r in report.scaling or []]
    return out + [md_table(SCALING_COLUMNS, rows, ["l"] + ["r"] * (len(SCALING_COLUMNS) - 1)), ""]


def _problems(report: Report) -> list[str]:
    out = ["## Jobs that did not finish", ""]
    if report.problems:
        keys = ("backend", "task", "seed", "status")
        rows = [[md_text(r.get(k)) for k in keys] + [md_text(reason(r))] for r in report.problems]
        out.append(md_table([*keys, "reason"], rows))
    else:
        out.append("None: every job finished with status ok.")
    return out


def render_markdown(report: Report) -> str:
    """report.md: tables, figures linked as PNG files next to it."""
    out = [f"# mlpbench report: {md_text(report.path.name)}", ""]
    out += ["## What ran", "", _kv_table(run_facts(report)), ""]
    backends = [[md_text(f[k]) for k in _BACKEND_KEYS] for f in backend_facts(report)]
    out += [md_table(list(_BACKEND_KEYS), backends), ""]
    out += ["## Machine", "", _kv_table(machine_facts(report)), ""] + _machines(report)
    glance = report.glance
    if glance:
        out += ["## At a glance", ""] + [f"- {md_text(g)}" for g in glance] + [""]
    if report.sections:
        out += ["## Reading the tables", ""] + [f"- **{md_text(k)}**: {md_text(v)}" for k, v in COLUMN_NOTES] + [""]
    scaling_shown = False
    for s in report.sections:
        out += _task(report, s)
        if s.references is not None:
            out += _references(s.references)
        if s.modes is not None:
            out += _modes(report, s.modes)
        if s.sweep is not None:
            out += _sweep(report, s.sweep)
        if s.task == SCALING_TASK and report.scaling:  # the scaling analysis sits beside its task's sweep
            out += _scaling(report)
            scaling_shown = True
    out += _profile(report)
    if report.parity is not None:
        out += _parity(report)
    if report.scaling and not scaling_shown:
        out += _scaling(report)
    out += _problems(report)
    out += [
        "",
        f"<sub>Generated by mlpbench {__version__} from the stored results; "
        f"re-render with `python run_bench.py report {code_span(report.path)}`.</sub>",
        "",
    ]
    return "\n".join(out)
