"""The parity check: every backend trained from identical weights on identical batches, compared with NumPy.

Each task's spec is run in float64 with dropout 0, once per optimizer, on every
backend through the ordinary runner (one worker per backend). The jobs ask the worker
for their final weights. Per backend, task and optimizer the check reports the largest
relative difference from the NumPy backend of the per-epoch training loss and of the
final weights, where relative difference = ``max|a - b| / max(max|b|, tiny)``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .registry import PluginError, Registry, discover
from .runner import Job, parse_backend_list, run_with_progress
from .spec import OPTIMIZERS
from .store import ResultsStore

REFERENCE = "numpy"
PARITY_FILE = "parity.json"  # in the results directory; the report reads it from there
DEFAULT_TASKS = "xor,digits,diabetes"
DEFAULT_OPTIMIZERS = ",".join(OPTIMIZERS)
DEFAULT_EPOCHS = 5
_TINY = np.finfo(np.float64).tiny

#: Largest relative difference a backend should show where the spec maps exactly onto it.
#: A backend class may declare its own with a ``parity_target`` attribute.
TARGETS = {"torch": 1e-9, "keras": 1e-6, "sklearn": 1e-6}

_ADAM_EPS_RULE = ("Adam adds epsilon to sqrt(v) before the bias correction: PyTorch's rule with "
                  "eps / sqrt(1 - beta2^t) in place of eps (31.6·eps at step 1, tending to eps)")  # fmt: skip
#: (backend, optimizer or "*") -> where the framework's rule differs from the spec. Rows whose
#: optimizer has an entry are not exactly mappable and get no target. A backend class may add its
#: own with a ``parity_notes`` dict attribute (same keys, "*" for every optimizer).
INEXACT = {
    ("sklearn", "adam"): f"sklearn: {_ADAM_EPS_RULE}",
    ("keras", "adam"): f"keras: {_ADAM_EPS_RULE}",
}
#: Rules that differ but are mapped exactly (printed as notes, the target still applies).
MAPPED = {
    ("sklearn", "*"): "sklearn: alpha is scaled by 1/batch size -> alpha = l2·n_batch/c set for each batch size "
    "(the smaller last batch too); its mse gradient is 1/c of the spec's (c = 2/n_outputs) -> lr×c "
    "(Adam: eps/c); exact",
}


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


def _target_and_note(cls: type | None, name: str, optimizer: str) -> tuple[float | None, str | None]:
    target = getattr(cls, "parity_target", TARGETS.get(name))
    own = getattr(cls, "parity_notes", None) or {}
    inexact = own.get(optimizer) or own.get("*") or INEXACT.get((name, optimizer)) or INEXACT.get((name, "*"))
    if inexact:
        return None, inexact
    return target, MAPPED.get((name, optimizer)) or MAPPED.get((name, "*"))


def compare(records: list[dict[str, Any]], registry: Registry | None = None) -> list[dict[str, Any]]:
    """Parity rows from the job records: each non-reference job against the NumPy job of the same task and optimizer."""
    refs = {(r["task"], r["spec"]["optimizer"]): r for r in records if r["backend"] == REFERENCE}
    rows = []
    for r in records:
        if r["backend"] == REFERENCE:
            continue
        name = r.get("backend_name", r["backend"])
        optimizer = r["spec"]["optimizer"]
        cls = None
        if registry is not None and name in registry.backends:
            cls = registry.backends[name].cls
        target, note = _target_and_note(cls, name, optimizer)
        row: dict[str, Any] = {"backend": r["backend"], "task": r["task"], "optimizer": optimizer,
                               "max_rel_loss_diff": None, "max_rel_weight_diff": None, "target": target,
                               "within_target": None, "note": note, "status": r.get("status"),
                               "epochs": r["spec"]["epochs"], "seed": r["seed"]}  # fmt: skip
        ref = refs.get((r["task"], optimizer))
        if r.get("status") != "ok":
            row["error"] = r.get("error")
        elif ref is None or ref.get("status") != "ok":
            row["status"] = "no_reference"
            row["error"] = f"the {REFERENCE} reference job did not finish: " + (
                str(ref.get("error")) if ref else "not run"
            )
        else:
            try:
                row["max_rel_loss_diff"] = relative_difference([p["train_loss"] for p in r["curve"]],
                                                               [p["train_loss"] for p in ref["curve"]])  # fmt: skip
                row["max_rel_weight_diff"] = relative_difference(_flat_weights(r["weights"]),
                                                                 _flat_weights(ref["weights"]))  # fmt: skip
            except (KeyError, ValueError, TypeError) as exc:
                row["status"] = "error"
                row["error"] = f"cannot compare with {REFERENCE}: {exc}"
            else:
                if target is not None:
                    row["within_target"] = max(row["max_rel_loss_diff"], row["max_rel_weight_diff"]) <= target
        if row["status"] != "ok" and target is not None:
            row["within_target"] = False if row["status"] not in ("skipped", "not_installed") else None
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table, notes numbered below it."""
    notes: list[str] = []
    lines = [f"{'backend':<12} {'task':<10} {'optimizer':<9} {'loss diff':>10} {'weight diff':>11} "
             f"{'target':>7}  verdict"]  # fmt: skip
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
        lines.append(f"{row['backend']:<12} {row['task']:<10} {row['optimizer']:<9} "
                     f"{_num(loss):>10} {_num(weight):>11} {_num(target, 0):>7}  {verdict}{mark}")  # fmt: skip
    for i, note in enumerate(notes, 1):
        lines.append(f"[{i}] {note}")
    return "\n".join(lines)


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}e}"


class _ParityStore(ResultsStore):
    """The parity jobs' store: weights stay in memory for the comparison, not in runs.jsonl."""

    def append(self, record: dict[str, Any]) -> None:
        super().append({k: v for k, v in record.items() if k != "weights"})


def plan(registry: Registry, backends: list, tasks: list[str], optimizers: list[str], epochs: int,
         seed: int) -> list[Job]:  # fmt: skip
    """One job per backend, task and optimizer: the task's spec in float64, dropout 0, weights returned."""
    jobs = []
    for task_name in tasks:
        task = registry.task(task_name)()
        task.validate()
        for optimizer in optimizers:
            spec = task.spec().replace(dtype="float64", dropout=0.0, optimizer=optimizer, epochs=epochs)
            for choice in backends:
                jobs.append(Job(backend=choice.label, backend_name=choice.name, backend_options=dict(choice.options),
                                task=task_name, task_params={}, seed=seed, spec=spec.to_dict(),
                                return_weights=True))  # fmt: skip
    return jobs


def add_parity_parser(sub: Any) -> None:
    """The ``parity`` sub-command's arguments."""
    from .cli import DEFAULT_THREADS, _add_plugin_arg, _positive_int, parse_duration

    p = sub.add_parser(
        "parity", help="check every backend against the NumPy backend (same weights, same batches, float64)",
        description="Train every backend from identical initial weights on identical batches in float64 with "
        "dropout 0, once per optimizer, and report the largest relative difference from the NumPy backend of the "
        "per-epoch training loss and of the final weights (max|a-b| / max|numpy|). Exit status 1 when a row "
        "misses its target or a job fails.",
    )  # fmt: skip
    p.add_argument(
        "--backends",
        default=None,
        metavar="LIST",
        help="backends to check (default: every installed backend); numpy is always run as the reference",
    )
    p.add_argument(
        "--tasks", default=DEFAULT_TASKS, metavar="LIST", help=f"comma-separated tasks (default: {DEFAULT_TASKS})"
    )
    p.add_argument(
        "--optimizers",
        default=DEFAULT_OPTIMIZERS,
        metavar="LIST",
        help=f"comma-separated optimizers (default: {DEFAULT_OPTIMIZERS})",
    )
    p.add_argument(
        "--epochs", type=_positive_int, default=DEFAULT_EPOCHS, help=f"epochs per job (default {DEFAULT_EPOCHS})"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, batches and split (default 0)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the rows as a JSON list to FILE")
    p.add_argument("--out", default=None, metavar="DIR",
                   help=f"results directory for {PARITY_FILE} (may be a run's directory, so its report shows parity); "
                        "the parity jobs' records and logs go to DIR/parity/, replaced on each check "
                        "(default results/parity-<timestamp>)")  # fmt: skip
    p.add_argument("--threads", type=_positive_int, default=DEFAULT_THREADS, help="threads per worker")
    p.add_argument("--timeout", type=parse_duration, default=600.0, metavar="DURATION", help="per-job time limit")
    p.add_argument("--no-progress", action="store_true", help="no live progress display, one line per job")
    _add_plugin_arg(p)


def cmd_parity(args: argparse.Namespace) -> int:
    """Run the parity jobs, print the table, write DIR/parity.json (and --json FILE)."""
    from .cli import EXIT_FAILED_JOBS, EXIT_INTERRUPTED, EXIT_OK, UsageError, backend_choices

    try:
        registry = discover(args.plugin)
    except PluginError as exc:
        raise UsageError(str(exc)) from exc
    backends = backend_choices(args.backends, registry, keep_broken=False)
    for b in backends:
        if b.name not in registry.backends:
            raise UsageError(f"unknown backend {b.name!r}; valid backends: {', '.join(sorted(registry.backends))}")
        try:
            registry.backend(b.name)(**dict(b.options))
        except (ValueError, PluginError) as exc:
            raise UsageError(str(exc)) from exc
    if REFERENCE not in [b.label for b in backends]:
        backends = [*parse_backend_list(REFERENCE), *backends]
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for t in tasks:
        if t not in registry.tasks:
            raise UsageError(f"unknown task {t!r}; valid tasks: {', '.join(sorted(registry.tasks))}")
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    for o in optimizers:
        if o not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {o!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
    if not tasks or not optimizers:
        raise UsageError("name at least one task and one optimizer")
    try:
        jobs = plan(registry, backends, tasks, optimizers, args.epochs, args.seed)
    except (ValueError, PluginError) as exc:
        raise UsageError(str(exc)) from exc

    out = Path(args.out or Path("results") / _dt.datetime.now().strftime("parity-%Y%m%d-%H%M%S"))
    store = _ParityStore(out / "parity")
    try:
        store.create()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    store.runs_path.unlink(missing_ok=True)  # a fresh check, never a resumed one
    store.write_json("config.json", {"backends": [b.label for b in backends], "tasks": tasks, "optimizers": optimizers,
                                     "epochs": args.epochs, "seed": args.seed, "threads": args.threads,
                                     "argv": sys.argv[1:]})  # fmt: skip

    records, interrupted = run_with_progress(registry, store, jobs, args.threads, args.timeout, not args.no_progress)
    if interrupted:
        print(f"\nInterrupted by {interrupted}; no parity written.", file=sys.stderr)
        return EXIT_INTERRUPTED

    rows = compare(records, registry)
    print(
        f"\nParity against {REFERENCE} (float64, dropout 0, {args.epochs} epochs, seed {args.seed}); "
        "relative difference = max|a-b| / max|numpy| over the per-epoch train loss and the final weights\n"
    )
    print(format_table(rows))
    text = json.dumps(rows, indent=2)
    (out / PARITY_FILE).write_text(text + "\n", encoding="utf-8")
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(f"\nWritten: {out / PARITY_FILE}" + (f" and {args.json}" if args.json else ""))
    bad = ("error", "crashed", "timeout", "diverged", "no_reference")
    failed = [r for r in rows if r["within_target"] is False or r["status"] in bad]
    ref_failed = [r for r in records if r["backend"] == REFERENCE and r.get("status") != "ok"]
    return EXIT_FAILED_JOBS if failed or ref_failed else EXIT_OK
