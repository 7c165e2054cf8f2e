"""``run_bench.py history DIR...``: epoch time and test metric per backend across runs, in the order made.

Like asv's history plots: each line is one experiment cell (backend, task, grid point) followed through
the runs, each run labelled with its mlpbench commit and start time (env.json). Writes history.md and
history.html with one figure per task.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..store import timestamped_dir
from .common import EXIT_OK, UsageError
from .compare import load_runs


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``history`` sub-command's arguments."""
    p = sub.add_parser(
        "history",
        help="epoch time and test metric per backend across results directories, in the order they were made",
        description="Order results directories by when they were made (env.json created), follow each backend, "
        "task and grid point through them, and draw epoch time (median, 95% CI) and test metric per task, "
        "labelled with each run's git commit and date. Writes history.md and history.html to --out.",
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="results directories, in any order")
    p.add_argument("--out", default=None, metavar="DIR", help="where to write (default results/history-<timestamp>)")
    return p


def cmd(args: argparse.Namespace) -> int:
    """Draw the history of the given runs and write history.md / history.html."""
    from ..report.compare_page import HISTORY_HTML, HISTORY_MD, write_outputs
    from ..report.history import ordered, run_label

    if len(args.dirs) < 2:
        raise UsageError("history needs at least two results directories")
    runs = ordered(load_runs(args.dirs))
    out = Path(args.out) if args.out else timestamped_dir("history-")
    written = write_outputs(out, [], runs, names=(HISTORY_MD, HISTORY_HTML))
    for r in runs:
        print(f"  {run_label(r).replace(chr(10), '  ')}  {r.path}")
    if not written.figures:
        print("note: no ok job in any of these runs: nothing to draw")
    print(f"History: {written.html}\n         {written.markdown}")
    return EXIT_OK
