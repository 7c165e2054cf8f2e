"""The parity command, end to end through real worker subprocesses, and its comparison rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.cli import main
from mlpbench.parity import PARITY_FILE, compare, format_table, relative_difference
from mlpbench.registry import Entry, Registry

ROOT = Path(__file__).resolve().parents[1]
FIELDS = set(
    "backend task optimizer batch_norm max_rel_loss_diff max_rel_weight_diff target within_target note status".split()
)


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory):
    """numpy (the reference, added automatically), torch and sklearn on XOR, 3 epochs, sgd, adam and rmsprop,
    each without and with batch normalization (the default --batch-norm none,after)."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    tmp = tmp_path_factory.mktemp("parity")
    out, js = tmp / "results", tmp / "parity-rows.json"
    argv = "parity --backends torch,sklearn --tasks xor --epochs 3 --optimizers sgd,adam,rmsprop --no-progress".split()
    proc = subprocess.run(
        [sys.executable, "run_bench.py", *argv, "--json", str(js), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, out, js


def test_parity_command_writes_rows_and_passes(parity_run) -> None:
    proc, out, js = parity_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(js.read_text())
    assert json.loads((out / PARITY_FILE).read_text()) == rows  # the copy the report reads
    keys = [(b, o, bn) for b in ("torch", "sklearn") for o in ("sgd", "adam", "rmsprop") for bn in ("none", "after")]
    assert [(r["backend"], r["optimizer"], r["batch_norm"]) for r in rows] == keys  # in this order
    by = {(r["backend"], r["optimizer"], r["batch_norm"]): r for r in rows}
    for r in rows:
        assert FIELDS <= set(r), r
        assert r["task"] == "xor" and r["epochs"] == 3
        if r["status"] == "ok":
            assert isinstance(r["max_rel_loss_diff"], float) and isinstance(r["max_rel_weight_diff"], float)
    for optimizer, batch_norm in ((o, bn) for o in ("sgd", "adam", "rmsprop") for bn in ("none", "after")):
        torch_row = by["torch", optimizer, batch_norm]
        assert torch_row["status"] == "ok" and torch_row["target"] == 1e-9 and torch_row["within_target"] is True
        assert torch_row["max_rel_loss_diff"] <= 1e-9 and torch_row["max_rel_weight_diff"] <= 1e-9
    sgd = by["sklearn", "sgd", "none"]
    assert sgd["status"] == "ok" and sgd["within_target"] is True and sgd["max_rel_weight_diff"] <= 1e-6
    # scikit-learn's Adam is not exactly mappable: measured, no target, the rule written down.
    adam = by["sklearn", "adam", "none"]
    assert adam["target"] is None and adam["within_target"] is None and "epsilon" in adam["note"]
    assert adam["max_rel_weight_diff"] > 0
    # What scikit-learn has not got (RMSprop, batch normalization) is a skipped row with the reason, not a failure.
    for key, reason in (
        (("sklearn", "rmsprop", "none"), "optimizer 'rmsprop'"),
        (("sklearn", "sgd", "after"), "does not support batch_norm"),
    ):
        assert by[key]["status"] == "skipped" and reason in by[key]["error"] and by[key]["within_target"] is None
    # The printed table has every row and the rule.
    assert proc.stdout.count("\nsklearn ") == 6 and "eps / sqrt(1 - beta2^t)" in proc.stdout
    assert "\ntorch        xor        rmsprop   after " in proc.stdout
    # Job records stay under DIR/parity/, without the weights (numpy and torch: 6 each; sklearn: 6, 4 skipped).
    runs = (out / "parity" / "runs.jsonl").read_text().splitlines()
    assert len(runs) == 18 and all("weights" not in json.loads(line) for line in runs)


def test_bad_input_stops_before_any_work(tmp_path, capsys) -> None:
    assert main(["parity", "--optimizers", "adagrad", "--out", str(tmp_path)]) == 2
    assert "unknown optimizer 'adagrad'; valid optimizers: sgd, momentum, nesterov, adam, rmsprop" in (
        capsys.readouterr().err
    )
    assert main(["parity", "--batch-norm", "none,middle", "--out", str(tmp_path)]) == 2
    assert "unknown batch_norm setting 'middle'; valid settings: none, before, after" in capsys.readouterr().err
    assert main(["parity", "--tasks", "nope", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / PARITY_FILE).exists()


def test_relative_difference() -> None:
    assert relative_difference([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert relative_difference([1.0, 2.5], [1.0, 2.0]) == pytest.approx(0.25)
    assert relative_difference([1e-310], [0.0]) > 0  # a zero reference does not divide by zero
    with pytest.raises(ValueError, match="shapes differ"):
        relative_difference([1.0], [1.0, 2.0])


def _record(backend: str, status: str = "ok", loss: float = 0.5, w: float = 1.0) -> dict:
    return {
        "backend": backend,
        "backend_name": backend,
        "task": "xor",
        "seed": 0,
        "status": status,
        "spec": {"optimizer": "sgd", "epochs": 1},
        "curve": [{"train_loss": loss}],
        "weights": [[[[w]], [0.0]]],
        "error": None if status == "ok" else "boom",
    }


def test_compare_marks_rows_against_targets() -> None:
    rows = compare([_record("numpy"), _record("torch", w=1.0 + 1e-6), _record("plugin", w=2.0)])
    torch_row, plugin_row = rows
    assert torch_row["max_rel_weight_diff"] == pytest.approx(1e-6) and torch_row["within_target"] is False
    assert plugin_row["target"] is None and plugin_row["within_target"] is None  # unknown backend: measured only
    assert "OUTSIDE TARGET" in format_table(rows)


def test_batch_norm_rows_compare_with_the_reference_of_the_same_setting() -> None:
    bn = {"spec": {"optimizer": "sgd", "epochs": 1, "batch_norm": "after"}}
    records = [{**_record("torch", w=3.0), **bn}, _record("numpy"), {**_record("numpy", w=3.0), **bn}, _record("torch")]
    rows = compare(records)
    assert [(r["batch_norm"], r["max_rel_weight_diff"]) for r in rows] == [("none", 0.0), ("after", 0.0)]
    assert "torch        xor        sgd       after " in format_table(rows)


def test_a_batch_norm_note_makes_only_batch_norm_rows_inexact() -> None:
    class BatchNormNoted(NumpyMLP):
        name = "bn_noted"
        parity_target = 1e-6
        parity_notes = {"adam": "its Adam differs", "batch_norm": "its running variance is biased"}

    registry = Registry(backends={"bn_noted": Entry("bn_noted", "backend", "file x.py", cls=BatchNormNoted)})
    spec = {"optimizer": "sgd", "epochs": 1}
    records = []
    for optimizer, batch_norm in (("sgd", "none"), ("sgd", "after"), ("adam", "after")):
        s = {"spec": {**spec, "optimizer": optimizer, "batch_norm": batch_norm}}
        records += [{**_record("numpy"), **s}, {**_record("bn_noted"), **s}]
    plain, bn, both = compare(records, registry)
    assert plain["target"] == 1e-6 and plain["note"] is None and plain["within_target"] is True
    assert bn["target"] is None and bn["note"] == "bn_noted: its running variance is biased"
    assert both["note"] == "bn_noted: its Adam differs; bn_noted: its running variance is biased"


def test_compare_without_a_reference_says_so() -> None:
    (row,) = compare([_record("numpy", status="error"), _record("torch")])
    assert row["status"] == "no_reference" and row["max_rel_loss_diff"] is None and row["within_target"] is False
    (row,) = compare([_record("numpy"), _record("sklearn", status="skipped")])
    assert row["status"] == "skipped" and row["within_target"] is None


class Declared(NumpyMLP):
    name = "declared"
    parity_target = 1e-3
    parity_notes = {"adam": "its Adam differs"}
    parity_mapping = {"*": "l2 rescaled; exact"}


def test_targets_and_notes_are_the_backend_class_attributes() -> None:
    registry = Registry(backends={"declared": Entry("declared", "backend", "file declared.py", cls=Declared)})
    adam = {"spec": {"optimizer": "adam", "epochs": 1}}
    records = [
        _record("numpy"),
        _record("declared", w=1.0 + 1e-4),
        {**_record("numpy"), **adam},
        {**_record("declared", w=2.0), **adam},
    ]
    sgd, adam_row = compare(records, registry)
    assert sgd["target"] == 1e-3 and sgd["within_target"] is True and sgd["note"] == "declared: l2 rescaled; exact"
    assert adam_row["target"] is None and adam_row["within_target"] is None
    assert adam_row["note"] == "declared: its Adam differs"
    table = format_table([sgd, adam_row])
    assert "[1] declared: l2 rescaled; exact" in table and "measured (not exactly mappable) [2]" in table
    # The same backend name without a class (not in the registry) is measured only.
    row = compare(records, Registry())[0]
    assert row["target"] is None and row["note"] is None
