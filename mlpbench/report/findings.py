"""The text lines of a task section: its setup line and its at-a-glance findings.

Findings never pool rows that must not be compared: a task that ran in two modes or on two machines
(and has no grid of its own, which gets a sweep section instead) gets one line per mode and machine.
"""

from __future__ import annotations

from typing import Any

from ..metrics import HIGHER_IS_BETTER
from ..status import Status
from .format import fmt_g, fmt_metric, missing


def setup_line(records: list[dict[str, Any]], swept: list[str] | None = None) -> str:
    """The task's network and training setup; what a grid sweeps is named as swept, not as one point's value."""
    rec = next((r for r in records if r.get("status") == Status.OK and r.get("spec")), None)
    rec = rec or next((r for r in records if r.get("spec")), None)
    if rec is None:
        return ""
    s, order, swept = rec["spec"], list(swept or []), set(swept or [])

    def val(key: str) -> Any:
        return "(swept)" if key in swept else s.get(key)

    hidden = ["(swept)"] if "hidden" in swept else (s.get("hidden") or [])
    layers = " → ".join(str(n) for n in [s.get("n_inputs"), *hidden, s.get("n_outputs")])
    parts = [
        f"network {layers} ({val('activation')})",
        f"loss {val('loss')}",
        f"{val('optimizer')} lr {val('lr')}",
        f"batch {val('batch_size')}",
        f"{val('epochs')} epochs",
        str(val("dtype")),
    ]
    if s.get("l2") or "l2" in swept:
        parts.append(f"l2 {val('l2')}")
    if s.get("dropout") or "dropout" in swept:
        parts.append(f"dropout {val('dropout')}")
    if s.get("patience") or "patience" in swept:
        restore = ", best weights restored" if s.get("restore_best") else ""
        parts.append(f"early stopping: patience {val('patience')}, min_delta {val('min_delta')}{restore}")
    task_swept = any(k.partition(".")[0] == rec.get("task") for k in swept)  # the data's size may vary
    if rec.get("n_parameters") and "hidden" not in swept and not task_swept:
        parts.append(f"{rec['n_parameters']:,} parameters")
    if rec.get("n_train") is not None and not task_swept:
        parts.append(f"{rec['n_train']} train / {rec.get('n_val')} validation / {rec.get('n_test')} test samples")
    if rec.get("target_metric") and rec.get("target") is not None:
        parts.append(f"target: validation {rec['target_metric']} {rec['target']:g}")
    params = {k: v for k, v in (rec.get("task_params") or {}).items() if f"{rec.get('task')}.{k}" not in swept}
    if params:
        parts.append("parameters " + ", ".join(f"{k}={v}" for k, v in params.items()))
    if swept:
        parts.append("swept: " + ", ".join(order))
    return "; ".join(parts)


def _point_glance(task: str, rows: list[dict[str, Any]], metric: str | None) -> list[str]:
    """One-line findings: who is most accurate, who is fastest and by how much."""
    out = []
    scored = [r for r in rows if not missing(r["metric"])]
    if len(scored) >= 2 and metric:
        ranked = sorted(scored, key=lambda r: r["metric"], reverse=HIGHER_IS_BETTER.get(metric, True))
        best, worst = ranked[0], ranked[-1]
        if fmt_metric(best["metric"]) == fmt_metric(worst["metric"]):
            out.append(f"{task}: every backend reaches test {metric} {fmt_metric(best['metric'])} (median over seeds)")
        else:
            out.append(
                f"{task}: best test {metric} {fmt_metric(best['metric'])} ({best['backend']}), "
                f"lowest {fmt_metric(worst['metric'])} ({worst['backend']})"
            )
    timed = [r for r in rows if not missing(r["epoch_ms"]) and r["epoch_ms"] > 0]
    if len(timed) >= 2:
        fast = min(timed, key=lambda r: r["epoch_ms"])
        slow = max(timed, key=lambda r: r["epoch_ms"])
        ratio = slow["epoch_ms"] / fast["epoch_ms"]
        if ratio < 1.1:
            out.append(
                f"{task}: steady-state epoch times within 10% of each other "
                f"({fmt_g(fast['epoch_ms'])}–{fmt_g(slow['epoch_ms'])} ms)"
            )
        else:
            tied = [r["backend"] for r in timed if r is not fast and "epoch_ms" in r.get("best", set())]
            ties = f"; tied with {', '.join(tied)} (overlapping 95% intervals)" if tied else ""
            out.append(
                f"{task}: fastest epoch {fmt_g(fast['epoch_ms'])} ms ({fast['backend']}{ties}), "
                f"{ratio:.1f}× faster than the slowest, {slow['backend']} ({fmt_g(slow['epoch_ms'])} ms)"
            )
    return out


def glance(task: str, rows: list[dict[str, Any]], metric: str | None) -> list[str]:
    """Who is most accurate and who is fastest, per point (mode, machine) when the rows have more than one."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r.get("point", ()), []).append(r)
    if len(groups) <= 1:
        return _point_glance(task, rows, metric)
    out = []
    for group in groups.values():
        label = group[0].get("point_label")
        out += _point_glance(f"{task} ({label})" if label else task, group, metric)
    return out
