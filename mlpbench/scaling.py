"""``run_bench.py scaling``: how epoch time grows with work, per backend, on the synthetic ``scaling`` task.

The sweep itself is the shipped ``scaling`` experiment (``mlpbench/presets/scaling.toml``: a
grid over the task's ``n_samples`` and ``width``), run and reported like any other grid.
From its records this module derives, per job, the work of an
epoch (matrix-multiply FLOPs, `mlpbench.flops`) against its steady-state time, fits
``log(time) = slope * log(work) + c`` per backend, and writes ``scaling.json`` and
``figures/scaling.png`` next to the usual results.

A slope near 1 means time grows in proportion to work (compute-bound); a slope well
below 1 means fixed per-step costs (Python, framework dispatch) dominate the small sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .flops import training_flops
from .spec import ModelSpec

TASK = "scaling"
SCALING_FILE = "scaling.json"
FIGURE = "figures/scaling.png"
PRESET = "scaling"
QUICK_SAMPLES = (1_000, 10_000)
QUICK_WIDTHS = (64, 256)


def scaling_rows(
    records: list[dict[str, Any]], peak_of: Callable[[int | None], float | None] | None = None
) -> list[dict[str, Any]]:
    """One row per finished scaling job: backend, size, work per epoch, steady-state epoch time, GFLOP/s.

    `peak_of` gives the machine's matmul peak for a thread count (`env.peak_gflops`); a row's fraction of
    the peak is against its own job's. A row's ``series`` is what a line of the table and figure stands
    for: the backend, or the backend at a thread count when the jobs ran with more than one.
    """
    from .report.format import threads_text  # the report package imports this module

    rows = []
    done = [r for r in records if r.get("task") == TASK and r.get("status") == "ok" and r.get("epoch_time_s")]
    several = len({r.get("threads") for r in done}) > 1
    for r in done:
        spec = ModelSpec.from_dict(r["spec"])
        params = r.get("task_params") or {}
        flops = r.get("flops_per_epoch") or training_flops(spec, int(r["n_train"]))
        gflops = flops / r["epoch_time_s"] / 1e9
        threads = r.get("threads")
        peak = peak_of(threads) if peak_of else None
        rows.append(
            {
                "backend": r["backend"],
                "threads": threads,
                "series": f"{r['backend']}, {threads_text(threads)}" if several else r["backend"],
                "n_samples": int(r["n_train"]),
                "width": int(params.get("width", spec.hidden[0])),
                "depth": len(spec.hidden),
                "batch_size": spec.batch_size,
                "flops_per_epoch": flops,
                "epoch_time_s": r["epoch_time_s"],
                "gflops": gflops,
                "peak_gflops": peak,
                "fraction_of_peak": gflops / peak if peak else None,
            }
        )
    rows.sort(key=lambda row: (row["backend"], row["threads"] or 0, row["flops_per_epoch"]))
    return rows


def fit_slopes(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per series (backend, or backend at a thread count), the slope of log(epoch time) against log(FLOPs per
    epoch) (needs 2 distinct sizes)."""
    out = {}
    for series in dict.fromkeys(r["series"] for r in rows):
        pts = [(r["flops_per_epoch"], r["epoch_time_s"]) for r in rows if r["series"] == series]
        if len({f for f, _ in pts}) < 2:
            continue
        x, y = np.log([f for f, _ in pts]), np.log([t for _, t in pts])
        out[series] = float(np.polyfit(x, y, 1)[0])
    return out


def draw(rows: list[dict[str, Any]], slopes: dict[str, float], path: Path) -> Path | None:
    """Log-log plot of epoch time against FLOPs per epoch, one line per series, the fitted slope in the legend."""
    if not rows:
        return None
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .report.figures import _STYLE, colours, save_png, text

    backends = list(dict.fromkeys(r["series"] for r in rows))
    palette = colours(backends)
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(6.4, 4.4), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for b in backends:
            pts = sorted((r["flops_per_epoch"], r["epoch_time_s"]) for r in rows if r["series"] == b)
            x, y = np.array(pts).T
            label = f"{b} (slope {slopes[b]:.2f})" if b in slopes else b
            ax.plot(x, y, "o", color=palette[b], ms=5, label=text(label))
            if b in slopes:  # the fitted power law over the measured range
                slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
                xs = np.geomspace(x.min(), x.max(), 50)
                ax.plot(xs, np.exp(intercept) * xs**slope, "--", color=palette[b], lw=1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("work per epoch (matrix-multiply FLOPs)")
        ax.set_ylabel("steady-state epoch time (s)")
        ax.set_title("Scaling: epoch time against work")
        ax.legend()
        save_png(fig, path)
    return path


def _fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def print_table(rows: list[dict[str, Any]], slopes: dict[str, float], env: dict[str, Any]) -> None:
    """The scaling table, the measured peaks, then one line per series with its slope and best throughput."""
    from rich.console import Console
    from rich.table import Table

    from .env import peak_gflops
    from .report.format import threads_text

    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    table = Table(title="Epoch time against work (synthetic scaling task)")
    several = len({r["threads"] for r in rows}) > 1
    columns = ["backend", *(["threads"] if several else []), "samples", "width", "GFLOP/epoch", "epoch time"]
    for col in [*columns, "GFLOP/s", "% of peak"]:
        table.add_column(col, justify="left" if col == "backend" else "right")
    for r in rows:
        share = f"{100 * r['fraction_of_peak']:.0f}%" if r["fraction_of_peak"] is not None else "-"
        table.add_row(
            r["backend"],
            *([str(r["threads"])] if several else []),
            f"{r['n_samples']:,}",
            str(r["width"]),
            f"{r['flops_per_epoch'] / 1e9:.3g}",
            _fmt_time(r["epoch_time_s"]),
            f"{r['gflops']:.3g}",
            share,
        )
    console.print(table)
    counts = sorted({r["threads"] for r in rows if r["threads"] is not None}) or [env.get("threads")]
    peaks = [(t, peak_gflops(env, t)) for t in counts]
    for t, p in peaks:
        if p:
            console.print(f"Measured float32 matmul peak of this machine with {threads_text(t)}: {p:g} GFLOP/s")
    names = list(dict.fromkeys(r["series"] for r in rows))
    width = max([10, *map(len, names)])
    for series in names:
        best = max((r for r in rows if r["series"] == series), key=lambda r: r["gflops"])
        slope = f"slope {slopes[series]:.2f}" if series in slopes else "slope n/a (one size)"
        console.print(
            f"  {series:<{width}} log-log {slope}; best {best['gflops']:.3g} GFLOP/s at "
            f"{best['n_samples']:,} samples x width {best['width']}"
        )
