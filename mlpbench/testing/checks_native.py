"""Checks of native mode (`Backend.fit_native`): it learns XOR with its own loop and reports its times as documented.

Both checks run the job as a worker does (`mlpbench.worker.execute` with ``mode = "native"``), so
the runner's side of the contract (the `epoch_end` calls, the record) is checked too. A backend
without a native mode is skipped with its `skip_mode` reason.
"""

from __future__ import annotations

import math
from typing import Any

from ..backend import TIMINGS
from .checks_behaviour import xor_spec
from .core import CheckSkipped
from .run import KitRun

#: The seed of the native XOR runs.
NATIVE_SEED = 0


def native_xor(run: KitRun) -> tuple[dict[str, Any], list[str]]:
    """The record of a native xor job (made once per kit run) and notes; CheckSkipped without a native mode.

    The task's default spec (adapted to the declared capabilities); when the backend's own
    initialisation needs more epochs to reach 4/4, the job runs again with twice as many, up
    to ``Tolerances.xor_epochs``.
    """
    cached = run.cache.get("native_xor")
    if cached is not None:
        return cached
    from ..worker.execute import execute

    task, spec, notes = xor_spec(run)
    backend = run.runnable(spec)
    try:
        reason = backend.skip_mode(spec, "native")
    except Exception as exc:
        raise run.fail("native", f"skip_mode(spec, 'native') raised {type(exc).__name__}: {exc}") from exc
    if reason is not None:
        raise CheckSkipped(reason)
    split = task.load(NATIVE_SEED)
    epochs = spec.epochs
    while True:
        job = {
            "id": f"kit/native/xor/{epochs}",
            "seed": NATIVE_SEED,
            "mode": "native",
            "spec": spec.replace(epochs=epochs).to_dict(),
        }
        record = execute(backend, task, split, job)
        if record["status"] != "ok" or record.get("test_accuracy") == 1.0 or epochs * 2 > run.tol.xor_epochs:
            break
        epochs *= 2
    run.cache["native_xor"] = (record, notes)
    return record, notes


def check_native_learns_xor(run: KitRun) -> str | None:
    """fit_native, with the framework's own initialisation and shuffling, gets the four XOR points right."""
    c = "native_learns_xor"
    record, notes = native_xor(run)
    if record["status"] != "ok":
        tail = f"\n{record['traceback']}" if record.get("traceback") else ""
        raise run.fail(c, f"the native xor job ended {record['status']}: {record['error']}{tail}")
    if record.get("test_accuracy") != 1.0:
        raise run.fail(
            c,
            f"test accuracy {record.get('test_accuracy')} on XOR after {record['epochs_run']} native "
            "epochs (the most the kit tries: Tolerances.xor_epochs), not 4/4",
        )
    return "; ".join([*notes, f"4/4 after {record['epochs_run']} native epochs ({record['timing']} timing)"])


def check_native_timing(run: KitRun) -> str | None:
    """One epoch time per epoch, outside the evaluation (per_epoch); or the whole-call form, as documented."""
    c = "native_timing"
    record, _ = native_xor(run)
    if record["status"] != "ok":
        raise CheckSkipped(f"the native xor job ended {record['status']} (see native_learns_xor)")
    timing, curve, n = record.get("timing"), record["curve"], record["epochs_run"]
    if timing not in TIMINGS:
        raise run.fail(c, f"the record's timing is {timing!r}; expected one of {', '.join(TIMINGS)}")
    if len(curve) != n or [p["epoch"] for p in curve] != list(range(1, n + 1)):
        raise run.fail(c, f"{len(curve)} curve points for {n} epochs run; expected one per epoch, numbered from 1")
    if timing == "per_epoch":
        times = [p["epoch_time_s"] for p in curve]
        bad = [t for t in times if not (isinstance(t, float) and math.isfinite(t) and t > 0)]
        if bad:
            raise run.fail(c, f"epoch times must be positive numbers of seconds, got {bad[:5]}")
        total = 0.0
        for p in curve:
            total += p["epoch_time_s"]
            if not math.isclose(p["elapsed_s"], total, rel_tol=1e-9, abs_tol=1e-12):
                raise run.fail(c, f"epoch {p['epoch']}: elapsed_s {p['elapsed_s']} is not the sum of the epoch times")
        if record["first_epoch_s"] != times[0] or not math.isclose(record["train_time_s"], total, rel_tol=1e-9):
            raise run.fail(c, "first_epoch_s / train_time_s do not match the epoch times")
        return f"{n} epochs, one time each"
    # whole_call: the call's time, its mean per epoch, no first-epoch time, absent per-epoch validation values.
    took = record["train_time_s"]
    if not (isinstance(took, float) and math.isfinite(took) and took > 0):
        raise run.fail(c, f"a whole-call fit needs its time, got train_time_s={took!r}")
    if record["first_epoch_s"] is not None or not math.isclose(record["epoch_time_s"], took / n, rel_tol=1e-9):
        raise run.fail(c, "whole_call: first_epoch_s must be None and epoch_time_s the call's time / epochs run")
    inner = [p for p in curve[:-1] if p["val_loss"] is not None or p["epoch_time_s"] is not None]
    if inner:
        raise run.fail(c, f"whole_call: epoch {inner[0]['epoch']} has per-epoch values the framework cannot give")
    if curve[-1]["val_loss"] is None or curve[-1]["elapsed_s"] != took:
        raise run.fail(c, "whole_call: the last epoch must hold the final model's evaluation and the call's time")
    return f"whole_call: {n} epochs in {took:.3g} s"
