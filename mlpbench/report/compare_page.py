"""Writing what ``compare`` and ``history`` produce: figures, the Markdown file and one self-contained HTML page.

Every file is written under a temporary name and renamed (`mlpbench.files.write_atomic` for text), so a
reader, or a CI job collecting artifacts, never sees half a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from .. import __version__
from ..compare import Comparison, Group, Measure, Run
from ..files import StoreWriteError, write_atomic
from .compare import COLUMNS, RATIO_CAPTION, group_rows, ratio_figure, render_markdown, significance_note, tally
from .history import history_figures
from .html import _data_uri, _environment, content_security_policy, static_text

COMPARE_MD, COMPARE_HTML = "compare.md", "compare.html"
HISTORY_MD, HISTORY_HTML = "history.md", "history.html"
FIGURES = "figures"
COLUMN_HEADERS = [h for _, h in COLUMNS]
_UP = ("slower", "more memory", "worse")
_DOWN = ("faster", "less memory", "better")


@dataclass
class Written:
    """The files one ``compare`` or ``history`` wrote."""

    markdown: Path
    html: Path
    figures: list[Path] = field(default_factory=list)


def _atomic_figure(draw: Any, path: Path, *args: Any) -> Path | None:
    """Draw a PNG under a temporary name, then rename it into place."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    try:
        drawn = draw(*args, tmp)
        if drawn is None:
            return None
        os.replace(tmp, path)
        return path
    except OSError as exc:
        raise StoreWriteError(path, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _cells(row: dict[str, str]) -> list[dict[str, str]]:
    out = []
    for k, _ in COLUMNS:
        cls = "num" if k in ("a", "b", "change", "p") else ""
        if k == "verdict":
            cls = "up" if row[k] in _UP else "down" if row[k] in _DOWN else ""
        out.append({"text": row[k], "cls": cls})
    return out


def _figure(path: Path | None, alt: str, caption: str) -> dict[str, str] | None:
    return {"src": _data_uri(path), "alt": alt, "caption": caption} if path else None


def render_html(
    comparisons: list[Comparison],
    figures: dict[int, Path],
    history: list[Any],
    runs: list[Run],
    regressions: list[tuple[Group, Measure]],
) -> str:
    """compare.html (or history.html): the same content as the Markdown, as one offline page."""
    pairs = []
    for i, c in enumerate(comparisons):
        pairs.append(
            {
                "a": c.a.name,
                "b": c.b.name,
                "a_path": str(c.a.path),
                "b_path": str(c.b.path),
                "machine": c.machine,
                "warnings": c.warnings,
                "tally": tally(c),
                "rows": [_cells(r) for r in group_rows(c)],
                "note": significance_note(c),
                "figure": _figure(figures.get(i), f"{c.a.name} → {c.b.name}: ratios", RATIO_CAPTION),
                "only_a": c.only_a,
                "only_b": c.only_b,
            }
        )
    script = static_text("report.js")
    title = "mlpbench comparison" if comparisons else "mlpbench history"
    n_groups = sum(len(c.groups) for c in comparisons)
    chips = [f"{len(runs)} runs"] + ([f"{n_groups} matched groups"] if comparisons else [])
    return (
        _environment()
        .get_template("compare.html.j2")
        .render(
            title=title,
            runs=[r.name for r in runs],
            chips=chips,
            n_regressions=len(regressions),
            pairs=pairs,
            columns=COLUMN_HEADERS,
            history=[_figure(f.path, f.title, f.caption) for f in history],
            version=__version__,
            csp=Markup(content_security_policy(script)),
            css=Markup(static_text("report.css")),
            script=Markup(script),
        )
    )


def write_outputs(
    out: Path,
    comparisons: list[Comparison],
    history_runs: list[Run],
    regressions: list[tuple[Group, Measure]] | None = None,
    names: tuple[str, str] = (COMPARE_MD, COMPARE_HTML),
) -> Written:
    """Draw the figures and write the Markdown and HTML files into `out` (created if needed)."""
    try:
        (out / FIGURES).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreWriteError(out / FIGURES, exc) from exc
    figures: dict[int, Path] = {}
    for i, c in enumerate(comparisons):
        p = _atomic_figure(ratio_figure, out / FIGURES / f"compare-{i + 1}.png", c)
        if p:
            figures[i] = p
    history = history_figures(history_runs, out / FIGURES) if len(history_runs) > 2 or not comparisons else []
    runs = [comparisons[0].a] + [c.b for c in comparisons] if comparisons else history_runs
    md = render_markdown(comparisons, figures, out, history)
    page = render_html(comparisons, figures, history, runs, regressions or [])
    md_path, html_path = out / names[0], out / names[1]
    write_atomic(md_path, md)
    write_atomic(html_path, page)
    return Written(md_path, html_path, [*figures.values(), *(f.path for f in history)])
