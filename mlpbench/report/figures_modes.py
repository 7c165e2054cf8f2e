"""The native vs controlled figure: epoch time per backend in each mode, with the factor between them.

Same conventions as `figures`: matplotlib's object API on the Agg canvas, one PNG out (the path, or
None when there is nothing to draw).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.lines import Line2D

from .figures import _figure, _log, _styled, save_png, text
from .format import fmt_g, missing

_MARKERS = {"controlled": "o", "native": "s"}
_OFFSET = {"controlled": 0.14, "native": -0.14}


def _ms(row: dict[str, Any] | None, key: str) -> float | None:
    v = (row or {}).get(key)
    return None if missing(v) or not v or float(v) <= 0 else float(v)


@_styled
def modes(pairs: list[Any], palette: dict[str, str], task: str, path: Path) -> Path | None:
    """One row per backend (and point): controlled (circle) and native (square) epoch ms with 95% intervals.

    `pairs` are `modes.ModePair`s; a native whole-call timing is drawn hollow (it has no interval).
    """
    shown = [p for p in pairs if _ms(p.controlled, "epoch_ms") or _ms(p.native, "epoch_ms")]
    if not shown:
        return None
    fig, axes = _figure(8.5, 1.2 + 0.55 * len(shown))
    ax = axes[0][0]
    ys = np.arange(len(shown))[::-1]
    right = []
    for y, p in zip(ys, shown, strict=True):
        colour = palette.get(p.backend, "#888")
        xs = []
        for mode in ("controlled", "native"):
            row = getattr(p, mode)
            x = _ms(row, "epoch_ms")
            if x is None:
                continue
            xs.append(x)
            lo, hi = _ms(row, "epoch_lo_ms"), _ms(row, "epoch_hi_ms")
            yy = y + _OFFSET[mode]
            if lo is not None and hi is not None:
                ax.plot([lo, hi], [yy, yy], color=colour, lw=2.2, alpha=0.7, solid_capstyle="butt", zorder=3)
            hollow = mode == "native" and p.whole_call
            ax.plot(
                [x],
                [yy],
                marker=_MARKERS[mode],
                ms=8,
                ls="none",
                zorder=4,
                mec=colour,
                mew=1.6,
                color="white" if hollow else colour,
            )
        if len(xs) == 2:
            ax.plot(xs, [y + _OFFSET["controlled"], y + _OFFSET["native"]], color=colour, lw=0.8, alpha=0.6)
        right.append(f"{fmt_g(p.ratio)}×" if p.ratio is not None else "")
    ax.set_yticks(ys, [text(p.label) for p in shown])
    ax.set_ylim(-0.7, len(shown) - 0.3)
    ax.grid(True, axis="y", alpha=0)
    _log(ax, "x")
    twin = ax.twinx()
    twin.set_ylim(ax.get_ylim())
    twin.set_yticks(ys, right)
    twin.tick_params(length=0)
    twin.grid(False)
    twin.spines["right"].set_visible(False)
    ax.set_title(f"{text(task)}: epoch time, native vs controlled (native / controlled at the right)")
    ax.set_xlabel("ms per epoch (log scale; bar: 95% CI of the median)")
    handles = [
        Line2D([], [], marker="o", ms=7, ls="none", color="#555", label="controlled"),
        Line2D([], [], marker="s", ms=7, ls="none", color="#555", label="native"),
        Line2D([], [], marker="s", ms=7, ls="none", color="white", mec="#555", mew=1.6, label="native, whole call"),
    ]
    ax.legend(handles=handles, loc="best")
    return save_png(fig, path)
