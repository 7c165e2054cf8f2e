"""The parity check: every backend trained from identical weights on identical batches, compared with NumPy.

Each task's spec is run in float64 with dropout 0, once per optimizer and batch-norm
setting (``none`` and ``after`` by default: every optimizer without and with batch
normalization), on every backend through the ordinary runner (one worker per backend).
The jobs ask the worker for their final weights. Per backend, task, optimizer and
batch-norm setting the check reports the largest relative difference from the NumPy
backend of the per-epoch training loss and of the final weights (the (W, b) pairs), where
relative difference = ``max|a - b| / max(max|b|, tiny)``. The training loss is computed
from predictions, so with batch normalization it also measures the running statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import Backend
from .plan import Job
from .registry import Registry, discover
from .spec import BATCH_NORMS, OPTIMIZERS
from .store import ResultsStore

REFERENCE = "numpy"
PARITY_FILE = "parity.json"  # in the results directory; the report reads it from there
DEFAULT_OPTIMIZERS = ",".join(OPTIMIZERS)
#: Batch-norm settings run for every optimizer by default: without, and the tutorials' "after".
DEFAULT_BATCH_NORMS = "none,after"
#: The `parity_notes` / `parity_mapping` key for rows with batch normalization (besides optimizer names and "*").
BATCH_NORM_KEY = "batch_norm"
DEFAULT_EPOCHS = 5
_TINY = np.finfo(np.float64).tiny


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a - b| / max(max|b|, tiny)``: the largest difference, relative to the reference b's scale."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), _TINY))


def _flat_weights(weights: list) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for pair in weights for p in pair])


def _target_and_note(
    cls: type[Backend] | None, optimizer: str, batch_norm: str = "none"
) -> tuple[float | None, str | None]:
    """The row's target and note, from the backend class's `parity_target`, `parity_notes` and `parity_mapping`.

    A row with batch normalization also takes the entries under ``"batch_norm"``; any note makes the row inexact.
    """
    if cls is None:
        return None, None

    def entries(table: dict[str, str]) -> list[str]:
        found = [table.get(optimizer) or table.get("*")]
        if batch_norm != "none":
            found.append(table.get(BATCH_NORM_KEY))
        return [f"{cls.name}: {text}" for text in found if text]

    inexact = entries(cls.parity_notes)
    if inexact:
        return None, "; ".join(inexact)
    mapped = entries(cls.parity_mapping)
    return cls.parity_target, "; ".join(mapped) or None


def compare(records: list[dict[str, Any]], registry: Registry | None = None) -> list[dict[str, Any]]:
    """Parity rows from the job records: each non-reference job against the NumPy job of the same task and optimizer.

    Targets and notes are the backend classes' (`Backend.parity_target` and the others), found
    in `registry` (default: the installed backends); a backend not there is measured only.
    """
    registry = registry if registry is not None else discover()

    def key(r: dict[str, Any]) -> tuple[str, str, str]:
        return r["task"], r["spec"]["optimizer"], r["spec"].get("batch_norm", "none")

    refs = {key(r): r for r in records if r["backend"] == REFERENCE}
    rows = []
    for r in records:
        if r["backend"] == REFERENCE:
            continue
        name = r.get("backend_name", r["backend"])
        optimizer, batch_norm = key(r)[1:]
        entry = registry.backends.get(name)
        target, note = _target_and_note(entry.cls if entry is not None else None, optimizer, batch_norm)
        row: dict[str, Any] = {
            "backend": r["backend"],
            "task": r["task"],
            "optimizer": optimizer,
            "batch_norm": batch_norm,
            "max_rel_loss_diff": None,
            "max_rel_weight_diff": None,
            "target": target,
            "within_target": None,
            "note": note,
            "status": r.get("status"),
            "epochs": r["spec"]["epochs"],
            "seed": r["seed"],
        }
        ref = refs.get(key(r))
        if r.get("status") != "ok":
            row["error"] = r.get("error")
        elif ref is None or ref.get("status") != "ok":
            row["status"] = "no_reference"
            row["error"] = f"the {REFERENCE} reference job did not finish: " + (
                str(ref.get("error")) if ref else "not run"
            )
        else:
            try:
                row["max_rel_loss_diff"] = relative_difference(
                    [p["train_loss"] for p in r["curve"]], [p["train_loss"] for p in ref["curve"]]
                )
                row["max_rel_weight_diff"] = relative_difference(
                    _flat_weights(r["weights"]), _flat_weights(ref["weights"])
                )
            except (KeyError, ValueError, TypeError) as exc:
                row["status"] = "error"
                row["error"] = f"cannot compare with {REFERENCE}: {exc}"
            else:
                if target is not None:
                    row["within_target"] = max(row["max_rel_loss_diff"], row["max_rel_weight_diff"]) <= target
        if row["status"] != "ok" and target is not None:
            row["within_target"] = False if row["status"] not in ("skipped", "not_installed") else None
        rows.append(row)
    # Records arrive in the order jobs finish (skipped ones first): rows go by backend and task as they first
    # appear, then in the spec's order of optimizers and batch-norm settings.
    first: dict[Any, int] = {}
    for row in rows:
        first.setdefault(("backend", row["backend"]), len(first))
        first.setdefault(("task", row["task"]), len(first))

    def order(row: dict[str, Any]) -> tuple[int, ...]:
        opt, bn = row["optimizer"], row["batch_norm"]
        return (
            first["backend", row["backend"]],
            first["task", row["task"]],
            OPTIMIZERS.index(opt) if opt in OPTIMIZERS else len(OPTIMIZERS),
            BATCH_NORMS.index(bn) if bn in BATCH_NORMS else len(BATCH_NORMS),
        )

    return sorted(rows, key=order)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table, notes numbered below it."""
    notes: list[str] = []
    lines = [
        f"{'backend':<12} {'task':<10} {'optimizer':<9} {'bn':<6} {'loss diff':>10} {'weight diff':>11} "
        f"{'target':>7}  verdict"
    ]
    for row in rows:
        mark = ""
        if row.get("note"):
            if row["note"] not in notes:
                notes.append(row["note"])
            mark = f" [{notes.index(row['note']) + 1}]"
        loss, weight = row["max_rel_loss_diff"], row["max_rel_weight_diff"]
        target = row["target"]
        if row["status"] != "ok":
            verdict = f"{row['status']}: {(row.get('error') or '').splitlines()[0][:70] if row.get('error') else ''}"
        elif row["within_target"] is None:
            verdict = "measured (not exactly mappable)" if row.get("note") else "measured (no target declared)"
        else:
            verdict = "ok" if row["within_target"] else "OUTSIDE TARGET"
        lines.append(
            f"{row['backend']:<12} {row['task']:<10} {row['optimizer']:<9} {row.get('batch_norm', 'none'):<6} "
            f"{_num(loss):>10} {_num(weight):>11} {_num(target, 0):>7}  {verdict}{mark}"
        )
    for i, note in enumerate(notes, 1):
        lines.append(f"[{i}] {note}")
    return "\n".join(lines)


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}e}"


class _ParityStore(ResultsStore):
    """The parity jobs' store: weights stay in memory for the comparison, not in runs.jsonl."""

    def append(self, record: dict[str, Any]) -> None:
        super().append({k: v for k, v in record.items() if k != "weights"})


def plan(
    registry: Registry,
    backends: list,
    tasks: list[str],
    optimizers: list[str],
    epochs: int,
    seed: int,
    threads: int = 1,
    batch_norms: list[str] | tuple[str, ...] = ("none",),
) -> list[Job]:
    """One job per backend, task, optimizer and batch-norm setting: the task's spec in float64, dropout 0,
    weights returned."""
    jobs = []
    for task_name in tasks:
        task = registry.task(task_name)()
        task.validate()
        for optimizer, batch_norm in ((o, bn) for o in optimizers for bn in batch_norms):
            spec = task.spec().replace(
                dtype="float64", dropout=0.0, optimizer=optimizer, epochs=epochs, batch_norm=batch_norm
            )
            for choice in backends:
                jobs.append(
                    Job(
                        backend=choice.label,
                        backend_name=choice.name,
                        backend_options=dict(choice.options),
                        task=task_name,
                        task_params={},
                        seed=seed,
                        spec=spec.to_dict(),
                        threads=threads,
                        return_weights=True,
                    )
                )
    return jobs
