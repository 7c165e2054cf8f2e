"""What ``compare`` shows: the terminal table, compare.md, compare.html and the ratio figure.

The numbers come from `mlpbench.compare` (a `Comparison` per pair of runs); this module only turns them
into text and a picture. compare.html is one self-contained page like report.html: the same escaping,
the same style sheet, the figures as data URIs, and a Content-Security-Policy that forbids every fetch.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from ..compare import EPOCH, Comparison, Group, Measure
from .format import DASH, fmt_g, md_text
from .markdown import md_table

RATIO_CAPTION = (
    "Ratio B / A of the medians with its bootstrap 95% interval (log scale), per backend, task and grid point. "
    "Red: significantly higher (slower, more memory), green: significantly lower, grey: no significant change "
    "(or no test possible)."
)
_VERDICT_COLOURS = {
    "slower": "#D55E00",
    "more memory": "#D55E00",
    "worse": "#D55E00",
    "faster": "#009E73",
    "less memory": "#009E73",
    "better": "#009E73",
}


def value_text(m: Measure, which: str) -> str:
    """Run A's or B's median of a measure, in the measure's unit."""
    side = m.change.a if which == "a" else m.change.b
    if not side.n or not math.isfinite(side.median):
        return DASH
    unit = f" {m.unit}" if m.unit else ""
    digits = 4 if m.change.kind == "difference" else 3
    return f"{fmt_g(side.median * m.scale, digits)}{unit} (n={side.n})"


def change_text(m: Measure) -> str:
    """``×1.50 (1.37–1.65)`` for a ratio, ``+0.0100 (−0.0020–0.0300)`` for a difference; no interval: the estimate."""
    c = m.change
    if not math.isfinite(c.estimate):
        return DASH
    if c.kind == "ratio":
        text = f"×{_ratio(c.estimate)}"
        ci = f" ({_ratio(c.low)}–{_ratio(c.high)})" if math.isfinite(c.low) else ""
    else:
        text = f"{c.estimate:+.4f}"
        ci = f" ({c.low:+.4f} to {c.high:+.4f})" if math.isfinite(c.low) else ""
    return text + ci


def _ratio(x: float) -> str:
    return f"{x:.2f}" if 0.01 <= x < 100 else f"{x:.3g}"


def p_text(m: Measure) -> str:
    """The Mann–Whitney p-value, or a dash when no test was made."""
    p = m.change.p_value
    return DASH if not math.isfinite(p) else (f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}")


def group_rows(comparison: Comparison) -> list[dict[str, str]]:
    """One row per group and measure (one row for a group that could not be measured), as display strings."""
    rows = []
    for g in comparison.groups:
        base = {"backend": g.names["backend"], "task": g.names["task"], "point": g.names["point"] or DASH}
        if g.problem:
            rows.append(
                {
                    **base,
                    "measure": DASH,
                    "a": DASH,
                    "b": DASH,
                    "change": DASH,
                    "p": DASH,
                    "verdict": "not compared",
                    "note": g.problem,
                }
            )
            continue
        for m in g.measures:
            rows.append(
                {
                    **base,
                    "measure": m.name,
                    "a": value_text(m, "a"),
                    "b": value_text(m, "b"),
                    "change": change_text(m),
                    "p": p_text(m),
                    "verdict": m.verdict,
                    "note": m.note,
                }
            )
    return rows


def tally(comparison: Comparison) -> list[str]:
    """Per measure, how many groups got each verdict: ``epoch time: 2 slower, 10 no significant change``."""
    by_measure: dict[str, Counter[str]] = {}
    for g in comparison.groups:
        for m in g.measures:
            by_measure.setdefault(m.name, Counter())[m.verdict] += 1
    return [f"{name}: " + ", ".join(f"{n} {v}" for v, n in c.most_common()) for name, c in by_measure.items()]


COLUMNS = [
    ("backend", "backend"),
    ("task", "task"),
    ("point", "grid point"),
    ("measure", "measure"),
    ("a", "A"),
    ("b", "B"),
    ("change", "B/A or B−A (95% CI)"),
    ("p", "p"),
    ("verdict", "verdict"),
    ("note", "note"),
]


def significance_note(comparison: Comparison) -> str:
    """How to read a verdict: the test, the level and the interval."""
    return (
        f"A change is significant when the two-sided Mann–Whitney U p-value is below α = {comparison.alpha:g} and "
        "the bootstrap 95% interval of the ratio B / A of the medians excludes 1 (for the test metric: of the "
        "difference B − A, excludes 0). Epoch time pools the steady-state epochs (2..n) of every seed; the other "
        "measures have one value per seed, so with few seeds no test is possible and the note says so."
    )


def _pair_md(c: Comparison, figure: Path | None, out: Path) -> list[str]:
    lines = [f"## {md_text(c.a.name)} → {md_text(c.b.name)}", ""]
    lines += [f"A: `{c.a.path}` · B: `{c.b.path}`", ""]
    lines += ["### Machines", ""]
    rows = [[md_text(k), md_text(va), md_text(vb) + (" **(differs)**" if d else "")] for k, va, vb, d in c.machine]
    lines += [md_table(["", "A", "B"], rows), ""]
    if c.warnings:
        lines += [f"> **warning:** {md_text(w)}" for w in c.warnings] + [""]
    lines += ["### Verdicts", ""] + [f"- {md_text(t)}" for t in tally(c)] + [""]
    table = [[md_text(r[k]) for k, _ in COLUMNS] for r in group_rows(c)]
    lines += [md_table([h for _, h in COLUMNS], table, ["l"] * 4 + ["r"] * 4 + ["l"] * 2), ""]
    lines += [md_text(significance_note(c)), ""]
    if figure is not None:
        rel = figure.relative_to(out).as_posix()
        lines += [f"![ratio B / A per group]({rel})", "", f"*{md_text(RATIO_CAPTION)}*", ""]
    if c.only_a or c.only_b:
        lines += ["### Jobs without a counterpart", ""]
        lines += [f"- only in A: {md_text(x)}" for x in c.only_a] + [f"- only in B: {md_text(x)}" for x in c.only_b]
        lines.append("")
    return lines


def render_markdown(comparisons: list[Comparison], figures: dict[int, Path], out: Path, history: list[Any]) -> str:
    """compare.md (or history.md): one section per pair of runs, then the history figures."""
    title = "mlpbench comparison" if comparisons else "mlpbench history"
    lines = [f"# {title}", ""]
    for i, c in enumerate(comparisons):
        lines += _pair_md(c, figures.get(i), out)
    if history:
        lines += ["## History", ""]
        for f in history:
            lines += [f"![{md_text(f.title)}]({f.path.relative_to(out).as_posix()})", "", f"*{md_text(f.caption)}*", ""]
    return "\n".join(lines)


def print_comparison(c: Comparison, console: Any, regressions: list[tuple[Group, Measure]] | None = None) -> None:
    """The terminal table: one row per group with its epoch-time change, and the other verdicts in brief."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{c.a.name} → {c.b.name}", caption=f"significant: p < {c.alpha:g} and the 95% CI excludes 1")
    for col in ("backend", "task", "grid point", "epoch ms A → B", "B/A (95% CI)", "p", "verdict", "other measures"):
        table.add_column(col, justify="right" if col in ("B/A (95% CI)", "p") else "left")
    for g in c.groups:
        m = g.measure(EPOCH)
        if g.problem or m is None:
            table.add_row(
                escape(g.names["backend"]),
                escape(g.names["task"]),
                escape(g.names["point"] or DASH),
                DASH,
                DASH,
                DASH,
                "not compared",
                escape(g.problem),
            )
            continue
        a, b = value_text(m, "a").split(" (")[0], value_text(m, "b").split(" (")[0]
        others = [f"{x.name}: {x.verdict} {change_text(x).split(' (')[0]}" for x in g.measures if x is not m]
        quiet = ("no significant change", "no test possible", "no values", "not comparable")
        others = [o for o in others if not any(q in o for q in quiet)]
        style = {"slower": "bold red", "faster": "bold green"}.get(m.verdict, "")
        table.add_row(
            escape(g.names["backend"]),
            escape(g.names["task"]),
            escape(g.names["point"] or DASH),
            f"{a} → {b}",
            change_text(m),
            p_text(m),
            f"[{style}]{m.verdict}[/]" if style else m.verdict,
            escape("; ".join(others) or DASH),
        )
    console.print(table)
    for w in c.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")
    for x in c.only_a:
        console.print(f"only in A: {escape(x)}")
    for x in c.only_b:
        console.print(f"only in B: {escape(x)}")
    for g, m in regressions or []:
        console.print(f"[bold red]regression:[/] {escape(g.label)}: {m.name} {change_text(m)}, p = {p_text(m)}")


def ratio_figure(c: Comparison, path: Path) -> Path | None:
    """Forest plot of B / A with 95% intervals per group, one panel per ratio measure that has values."""
    from .figures_compare import forest

    return forest(c, path)
