"""Stopping a run loses nothing: Ctrl-C, SIGTERM and SIGKILL mid-run, then --resume finishes the rest.

Real ``run_bench.py run`` subprocesses and real signals. The `gated` backend of
tests/plugins/faulty.py holds every job but seed 0 until the file $MLPBENCH_TEST_GATE
exists, so the test knows a job is running when it stops the run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psutil
import pytest

from mlpbench import load_results

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "plugins" / "faulty.py"
PLAN = [
    "--plugin",
    str(PLUGIN),
    "--backends",
    "gated",
    "--tasks",
    "xor",
    "--seeds",
    "3",
    "--epochs",
    "3",
    "--no-progress",
]


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "MLPBENCH_TEST_GATE": str(tmp / "gate"), "MLPBENCH_TEST_PIDS": str(tmp / "pids")}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "run_bench.py", "run", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines() if line.strip()]


def _gone(pid: int, wait_s: float = 10) -> bool:
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def _start_and_stop(tmp: Path, out: Path, sig: signal.Signals) -> tuple[subprocess.Popen, str, str]:
    """Start the run, wait for seed 0's record (seed 1 is then held at the gate), send `sig`."""
    proc = subprocess.Popen(
        [sys.executable, "run_bench.py", "run", *PLAN, "--out", str(out)],
        cwd=ROOT,
        env=_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    runs = out / "runs.jsonl"
    end = time.monotonic() + 180
    while not (runs.exists() and runs.read_text().count("\n") >= 1):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the first job never finished"
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return proc, stdout, stderr


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("whole")
    (tmp / "gate").touch()
    result = _cli(*PLAN, "--out", str(tmp / "out"), env=_env(tmp))
    assert result.returncode == 0, result.stderr
    return tmp / "out"


def test_uninterrupted_run_finishes_every_job(uninterrupted) -> None:
    records = _records(uninterrupted)
    assert sorted(r["seed"] for r in records) == [0, 1, 2]
    assert all(r["status"] == "ok" for r in records)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_running_job_keeps_finished_ones_and_resume_finishes_the_rest(
    tmp_path, uninterrupted, sig
) -> None:
    out = tmp_path / "out"
    proc, stdout, stderr = _start_and_stop(tmp_path, out, sig)
    assert proc.returncode == 130, stderr
    assert f"Interrupted by {sig.name}" in stderr
    assert f"Continue with: python run_bench.py run --resume {out}" in stderr
    assert "Traceback" not in stderr
    before = _records(out)
    assert [(r["seed"], r["status"]) for r in before] == [(0, "ok")]  # the held job left no record
    assert (out / "runs.csv").exists() and (out / "report.html").exists()  # the partial report
    assert "xor" in stdout  # the summary of what finished
    worker = int((tmp_path / "pids").read_text().split()[0])
    assert _gone(worker), "the running job's worker was not stopped"
    if sig == signal.SIGTERM:
        return  # resuming is the same after either signal; once is enough for the suite's time

    (tmp_path / "gate").touch()
    resumed = _cli("--resume", str(out), env=_env(tmp_path))  # nothing else: the saved plan is used
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 1 finished jobs kept, 2 to run" in resumed.stderr
    after = _records(out)
    assert after[0] == before[0]  # the finished job was not run again
    assert sorted(r["seed"] for r in after) == [0, 1, 2] and all(r["status"] == "ok" for r in after)
    assert sorted(r["id"] for r in after) == sorted(r["id"] for r in _records(uninterrupted))


def test_sigkill_midway_then_resume_gives_the_same_jobs_as_an_uninterrupted_run(tmp_path, uninterrupted) -> None:
    """SIGKILL cannot be handled: the run just stops, possibly in the middle of writing a record."""
    out = tmp_path / "out"
    proc, _, _ = _start_and_stop(tmp_path, out, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert len(_records(out)) == 1
    worker = int((tmp_path / "pids").read_text().split()[0])
    assert _gone(worker), "a worker outlived the killed run"
    with open(out / "runs.jsonl", "ab") as f:  # as if killed while writing the next record
        f.write(b'{"id":"gated/xor/seed=1/0000","status":"o')
    with pytest.warns(UserWarning, match=r"runs.jsonl:2: skipping an incomplete record"):
        assert len(load_results(out).runs) == 1

    (tmp_path / "gate").touch()
    resumed = _cli("--resume", str(out), env=_env(tmp_path))
    assert resumed.returncode == 0, resumed.stderr
    assert "1 incomplete record(s)" in resumed.stderr and "Traceback" not in resumed.stderr
    assert "resuming: 1 finished jobs kept, 2 to run" in resumed.stderr
    assert (out / "runs.jsonl.incomplete").read_bytes() == b'{"id":"gated/xor/seed=1/0000","status":"o\n'
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the repaired file reads cleanly
        results = load_results(out)
    ids = list(results.runs["id"])
    assert len(ids) == len(set(ids)) == 3
    assert set(ids) == {r["id"] for r in _records(uninterrupted)}


def test_truncated_last_line_is_skipped_with_a_warning_by_load_results(tmp_path, uninterrupted) -> None:
    out = tmp_path / "out"
    shutil.copytree(uninterrupted, out)
    data = (out / "runs.jsonl").read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    (out / "runs.jsonl").write_bytes(data[: start + (len(data) - start) // 2])  # half of the last record
    lost = json.loads(data[start:])["id"]
    with pytest.warns(UserWarning, match=r"runs.jsonl:3: skipping an incomplete record"):
        results = load_results(out)
    assert len(results.runs) == 2 and lost not in set(results.runs["id"])


def test_resume_refuses_options_that_change_the_plan(tmp_path, uninterrupted, capsys) -> None:
    from mlpbench.cli import main

    out = tmp_path / "out"
    shutil.copytree(uninterrupted, out)
    before = (out / "runs.jsonl").read_bytes()
    assert main(["run", "--resume", str(out), "--tasks", "moons"]) == 2
    err = capsys.readouterr().err
    assert "continues the saved plan" in err and "--tasks (saved: 'xor', given: 'moons')" in err
    assert (out / "runs.jsonl").read_bytes() == before
