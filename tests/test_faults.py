"""A job that raises, crashes, hangs or diverges becomes a record with its status; the suite goes on.

One real run (``run_bench.py run`` in a subprocess, real worker processes, real signals)
puts the healthy NumPy backend next to the fault-injecting backends of
tests/plugins/faulty.py and a plugin package whose import fails; the tests read what it
left on disk. Jobs of seed 0 carry the fault (seeds 0-2 for `raising`), the later seeds
show that the suite went on.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from mlpbench.registry import discover
from mlpbench.worker import execute

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "plugins" / "faulty.py"

BACKENDS = [
    "numpy",
    "raising[stage=build/train_epoch/predict]",
    "aborting[seed=0,epoch=3]",
    "segfaulting[seed=0]",
    "oomkilled[seed=0]",
    "forking[seed=0]",
    "hanging[seed=0]",
    "diverging[what=loss/predict]",
    "missing",
    "chatty",
    "broken",
]
EPOCHS = 4
SEEDS = 4
RAISING = "raising[stage=build/train_epoch/predict]"
DIVERGING = "diverging[what=loss/predict]"


def _broken_package(site: Path) -> None:
    """An installed distribution whose backend entry point fails to import (as a plugin with a missing .so would)."""
    dist = site / "broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mlpbench.backends]\nbroken = broken_backend:BrokenMLP\n")
    (site / "broken_backend.py").write_text('raise ImportError("libbroken.so.1: cannot open shared object file")\n')


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory):
    """Run every faulty backend next to the healthy one, 4 seeds, --timeout 3s."""
    base = tmp_path_factory.mktemp("faults")
    _broken_package(base / "site")
    out = base / "results"
    env = {**os.environ, "PYTHONPATH": str(base / "site")}
    cmd = [
        sys.executable,
        "run_bench.py",
        "run",
        "--plugin",
        str(PLUGIN),
        "--backends",
        ",".join(BACKENDS),
        "--tasks",
        "xor",
        "--seeds",
        str(SEEDS),
        "--epochs",
        str(EPOCHS),
        "--timeout",
        "3s",
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    by = {(r["backend"], r["seed"]): r for r in records}
    return proc, out, records, by


def _logs(out: Path, label: str) -> list[Path]:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return sorted((out / "logs").glob(f"worker-{safe}-*.log"))


def test_every_job_has_exactly_one_record_and_healthy_jobs_are_ok(fault_run) -> None:
    proc, out, records, by = fault_run
    assert proc.returncode == 1, proc.stderr  # finished, with failed jobs
    assert len(records) == len(BACKENDS) * SEEDS == len({r["id"] for r in records})
    assert all(by[("numpy", seed)]["status"] == "ok" for seed in range(SEEDS))
    assert len(by[("numpy", 0)]["curve"]) == EPOCHS
    assert "Results:" in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("seed", "stage"), [(0, "build"), (1, "train_epoch"), (2, "predict")])
def test_exception_in_backend_is_an_error_with_traceback(fault_run, seed, stage) -> None:
    _, _, _, by = fault_run
    record = by[(RAISING, seed)]
    assert record["status"] == "error"
    assert record["error"] == f"RuntimeError in {stage}: injected failure in {stage}"
    assert "in fault" in record["traceback"] and "RuntimeError: injected failure" in record["traceback"]


def test_exception_does_not_cost_the_worker(fault_run) -> None:
    _, out, _, by = fault_run
    assert by[(RAISING, 3)]["status"] == "ok"  # after three errors, in the same process
    assert len(by[(RAISING, 3)]["curve"]) == EPOCHS
    assert len(_logs(out, RAISING)) == 1


@pytest.mark.parametrize(
    ("label", "signal_name", "said"),
    [
        ("aborting[seed=0,epoch=3]", "SIGABRT", "calling os.abort()"),
        ("segfaulting[seed=0]", "SIGSEGV", "sending myself SIGSEGV"),
        ("oomkilled[seed=0]", "SIGKILL", "allocating far too much"),
        ("forking[seed=0]", "SIGABRT", "keeps my pipes; aborting"),
    ],
)
def test_hard_crash_is_recorded_and_a_fresh_worker_goes_on(fault_run, label, signal_name, said) -> None:
    _, out, _, by = fault_run
    crashed = by[(label, 0)]
    assert crashed["status"] == "crashed"
    assert f"worker killed by signal {signal_name}" in crashed["error"]
    assert said in crashed["error"]  # the tail of the worker's stderr
    assert all(by[(label, seed)]["status"] == "ok" for seed in range(1, SEEDS))  # on a new worker
    assert len(_logs(out, label)) == 2


def test_crash_keeps_the_epochs_reported_before_it(fault_run) -> None:
    _, _, _, by = fault_run
    record = by[("aborting[seed=0,epoch=3]", 0)]
    assert record["epochs_run"] == 2
    assert [p["epoch"] for p in record["curve"]] == [1, 2]
    assert all(math.isfinite(p["train_loss"]) for p in record["curve"])


def test_sigkill_says_it_may_be_the_oom_killer(fault_run) -> None:
    _, _, _, by = fault_run
    assert "out-of-memory killer" in by[("oomkilled[seed=0]", 0)]["error"]


def test_crash_while_a_child_holds_the_pipe_is_a_crash_not_a_timeout(fault_run) -> None:
    """A forked child keeps the protocol pipe open: the runner must notice the worker's death anyway."""
    _, out, _, by = fault_run
    assert by[("forking[seed=0]", 0)]["status"] == "crashed"
    log = _logs(out, "forking[seed=0]")[0].read_text()
    child = int(re.search(r"forked child (\d+)", log).group(1))
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the worker's child outlived it"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_hang_past_timeout_is_killed_and_the_next_job_runs(fault_run) -> None:
    _, out, _, by = fault_run
    record = by[("hanging[seed=0]", 0)]
    assert record["status"] == "timeout"
    assert "past the 3 s timeout" in record["error"] and "killed" in record["error"]
    assert all(by[("hanging[seed=0]", seed)]["status"] == "ok" for seed in range(1, SEEDS))
    assert len(_logs(out, "hanging[seed=0]")) == 2


@pytest.mark.parametrize(
    ("seed", "what", "stage"), [(0, "training loss", "train_epoch"), (1, "prediction on the training set", "predict")]
)
def test_non_finite_values_are_diverged_at_their_epoch_with_the_curve_before(fault_run, seed, what, stage) -> None:
    _, _, _, by = fault_run
    record = by[(DIVERGING, seed)]
    assert record["status"] == "diverged"
    assert record["error"] == f"non-finite {what} at epoch 3 ({stage})"
    assert record["epochs_run"] == 3
    assert [p["epoch"] for p in record["curve"]] == [1, 2]
    assert all(math.isfinite(p["train_loss"]) and math.isfinite(p["val_loss"]) for p in record["curve"])
    assert by[(DIVERGING, 2)]["status"] == "ok"


def test_missing_framework_is_not_installed_without_a_worker(fault_run) -> None:
    _, out, _, by = fault_run
    for seed in range(SEEDS):
        assert by[("missing", seed)]["status"] == "not_installed"
        assert by[("missing", seed)]["error"] == "not installed: cannot import not_a_real_module"
    assert _logs(out, "missing") == []


def test_plugin_whose_import_fails_is_an_error_for_each_job(fault_run) -> None:
    _, out, _, by = fault_run
    for seed in range(SEEDS):
        record = by[("broken", seed)]
        assert record["status"] == "error"
        assert "backend 'broken' (package broken-plugin 0.1) failed to load" in record["error"]
        assert "libbroken.so.1: cannot open shared object file" in record["error"]
    assert _logs(out, "broken") == []


def test_whatever_a_backend_prints_cannot_corrupt_the_protocol(fault_run) -> None:
    _, out, _, by = fault_run
    assert all(by[("chatty", seed)]["status"] == "ok" for seed in range(SEEDS))
    assert len(by[("chatty", 0)]["curve"]) == EPOCHS
    assert '{"type": "epoch", "garbage": true}' in _logs(out, "chatty")[0].read_text()


def test_summary_lists_each_status(fault_run) -> None:
    proc, _, _, _ = fault_run
    for status in ("crashed", "timeout", "diverged", "not_installed", "error"):
        assert status in proc.stdout + proc.stderr


def test_broken_plugin_is_kept_in_the_default_backend_list(tmp_path, monkeypatch) -> None:
    """Without --backends, an installed plugin that fails to import is planned (and recorded), not dropped."""
    from mlpbench.cli import build_parser
    from mlpbench.cli.run import experiment_from_args
    from mlpbench.plan import make_plan

    _broken_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = discover()
    assert registry.backends["broken"].cls is None
    args = build_parser().parse_args(["run", "--tasks", "xor", "--seeds", "1"])
    experiment = experiment_from_args(args).resolved(registry)
    jobs = make_plan(experiment, registry)
    assert "broken" in experiment.backends and any(j.backend == "broken" for j in jobs)


# ------------------------------------------------------------ a real divergence, in process
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize(("lr", "epoch"), [(1e6, 1), (0.5, 4)])
def test_numpy_with_a_huge_learning_rate_diverges_honestly(registry, lr, epoch) -> None:
    """Diabetes, plain SGD: lr=1e6 overflows in the first epoch, lr=0.5 in the fourth; earlier epochs are kept."""
    backend = registry.backend("numpy")()
    backend.prepare(1)
    task = registry.task("diabetes")()
    spec = task.spec().replace(optimizer="sgd", hidden=(16,), lr=lr, l2=0.0, epochs=20, patience=0)
    job = {"id": "numpy/diabetes", "seed": 0, "spec": spec.to_dict()}
    record = execute(backend, task, task.load(0), job)
    assert record["status"] == "diverged"
    assert record["error"] == f"non-finite training loss at epoch {epoch} (train_epoch)"
    assert record["epochs_run"] == epoch and len(record["curve"]) == epoch - 1
    assert all(np.isfinite(p["train_loss"]) for p in record["curve"])
    assert "test_r2" not in record  # no score for a model that blew up
