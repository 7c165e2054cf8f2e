"""Reports of a results directory: ``report.md`` (renders on GitHub) and ``report.html`` (one offline page).

Everything is computed from what the directory stores — runs.jsonl, env.json, config.json and,
when present, parity.json, scaling.json and references.json — so ``run_bench.py report DIR`` renders the same report
again at any time. Figures are PNG files under ``DIR/figures/``: linked from the Markdown, embedded as
data URIs in the HTML. Every string that comes from results is escaped before it reaches either file.

Modules, each doing one thing:

- `format`: numbers as text and text made safe for Markdown;
- `grid`: grid points as tables show them (which settings, in which order, values as text; mode and host);
- `tables`: the task tables (columns, one row per backend and grid point, the best values at each point);
- `sweep`: a gridded task's sweep table (best backend per point) and its figures;
- `profile`: Dolan–Moré performance profiles across tasks and grid points, and their summary line;
- `findings`: a task's setup line and its at-a-glance lines;
- `references`: the reference models' table of a task (references.json);
- `early`: where each backend stopped early, as lines under the table and marks on the loss figures;
- `modes`: native vs controlled per backend, and the run's biggest native overhead;
- `machines`: jobs at once, pinned cores, and the machine table when records come from several hosts;
- `model`: a results directory turned into a `Report` of task sections, figures drawn (`build`);
- `facts`: what ran, the machine and its software, parity and scaling rows;
- `figures`, `figures_sweep`, `figures_modes`, `figures_compare`: the PNG figures (matplotlib);
- `markdown` and `html`: the two renderers (HTML through ``templates/report.html.j2``);
- `write`: `write_reports`, both files replaced atomically;
- `compare`, `compare_page`, `history`: what ``compare`` and ``history`` print and write
  (``templates/compare.html.j2``); the numbers come from `mlpbench.compare`.
"""

from __future__ import annotations

from .facts import backend_facts, machine_facts, run_facts
from .format import DASH, fmt_g, fmt_int, fmt_metric, md_text
from .html import render_html
from .markdown import md_table, render_markdown
from .model import FIGURES_DIR, PARITY_FILE, Figure, Report, TaskSection, build
from .tables import COLUMN_NOTES, Column, best_backends, task_columns, task_rows
from .write import REPORT_HTML, REPORT_MD, write_reports

__all__ = [
    "COLUMN_NOTES",
    "DASH",
    "FIGURES_DIR",
    "PARITY_FILE",
    "REPORT_HTML",
    "REPORT_MD",
    "Column",
    "Figure",
    "Report",
    "TaskSection",
    "backend_facts",
    "best_backends",
    "build",
    "fmt_g",
    "fmt_int",
    "fmt_metric",
    "machine_facts",
    "md_table",
    "md_text",
    "render_html",
    "render_markdown",
    "run_facts",
    "task_columns",
    "task_rows",
    "write_reports",
]
