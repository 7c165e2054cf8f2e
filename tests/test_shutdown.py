"""A stopped run stops everything it started and leaves every results file whole.

Real ``run_bench.py run`` subprocesses, real signals, real helper processes in sessions of their
own (tests/plugins/faulty.py `spawning`), and a real file-size limit for the full-disk case.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from mlpbench import load_results

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = str(ROOT / "tests" / "plugins" / "faulty.py")


def _start(out: Path, pids: Path, *argv: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "MLPBENCH_TEST_PIDS": str(pids)}
    return subprocess.Popen(
        [sys.executable, "run_bench.py", "run", "--plugin", PLUGIN, "--out", str(out), "--no-progress", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_killing_the_run_ends_the_processes_its_workers_started(tmp_path, how) -> None:
    pids = tmp_path / "pids"
    run = _start(tmp_path / "out", pids, "--backends", "spawning", "--tasks", "xor", "--seeds", "1", "--epochs", "200")
    try:
        _wait_for(lambda: pids.exists() and pids.read_text().strip())
        helper = int(pids.read_text().split()[0])
        assert not _gone(helper)
        run.send_signal(how)
        run.wait(timeout=60)
        _wait_for(lambda: _gone(helper), timeout=15)
    finally:
        run.kill()
        run.communicate()


def test_repeated_ctrl_c_during_shutdown_leaves_every_file_whole(tmp_path) -> None:
    """Three SIGINTs in quick succession: the run stops once, writes its exports and report whole, says how to go on."""
    out, pids = tmp_path / "out", tmp_path / "pids"
    run = _start(out, pids, "--backends", "numpy,spawning", "--tasks", "xor,moons", "--seeds", "2", "--epochs", "60")
    try:
        _wait_for(lambda: (out / "runs.jsonl").exists() and len((out / "runs.jsonl").read_text().splitlines()) >= 4)
        for _ in range(3):
            run.send_signal(signal.SIGINT)
            time.sleep(0.15)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 130, err
    assert "Traceback" not in err and f"--resume {out}" in err
    results = load_results(out)
    assert len(results.runs) >= 4
    assert (out / "runs.csv").read_text().count("\n") == len(results.runs) + 1
    assert (out / "report.html").read_text().rstrip().endswith("</html>")
    assert not list(out.glob(".*.tmp")) and not list(out.glob("*.tmp"))


def _with_file_size_limit(limit: int, argv: list[str]) -> list[str]:
    """`argv` (a Python command line) run by an interpreter that may not grow any file past `limit` bytes.

    The limit is set by a small program that then execs `argv`, not by a ``preexec_fn``: Python code
    between fork and exec in a test process that has imported a multithreaded framework can deadlock.
    """
    code = (
        "import os, resource, signal, sys; "
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "  # a write past the limit fails with EFBIG instead
        "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]),) * 2); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
    )
    return [sys.executable, "-c", code, str(limit), *argv]


def test_a_full_disk_says_where_and_how_to_continue_and_keeps_the_store_readable(tmp_path) -> None:
    out = tmp_path / "out"
    first = subprocess.run(
        [
            sys.executable,
            "run_bench.py",
            "run",
            "--backends",
            "numpy",
            "--tasks",
            "xor",
            "--seeds",
            "1",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert first.returncode == 0, first.stderr
    size = (out / "runs.jsonl").stat().st_size
    # Resume a bigger plan in a process that may not grow any file past what runs.jsonl holds now + 100 bytes.
    (out / "experiment.toml").write_text((out / "experiment.toml").read_text().replace("0,\n]", "0,\n    1,\n]"))
    before = (out / "runs.jsonl").read_bytes()
    full = subprocess.run(
        _with_file_size_limit(size + 100, ["run_bench.py", "run", "--resume", str(out), "--no-progress"]),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert full.returncode == 1
    assert "Traceback" not in full.stderr
    assert f"could not write to {out / 'runs.jsonl'}: File too large" in full.stderr
    assert f"continue with: run_bench.py run --resume {out}" in full.stderr
    assert (out / "runs.jsonl").read_bytes() == before  # no partial line left behind
    # With room again, resume finishes the job that could not be written.
    again = subprocess.run(
        [sys.executable, "run_bench.py", "run", "--resume", str(out), "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    assert sorted(json.loads(line)["seed"] for line in (out / "runs.jsonl").read_text().splitlines()) == [0, 1]


def test_a_worker_stopped_while_the_runner_waits_on_it_reads_as_dead_not_as_a_crash_of_the_run(tmp_path) -> None:
    """Ctrl-C stops every worker from the main thread while a runner thread may be waiting on one (for its
    start, say): the wait ends in WorkerDied, which the runner takes for "stopped", not in an OSError or
    ValueError from the closed pipe, and asking why the worker died still answers (its log is closed)."""
    from mlpbench.backends.numpy_mlp import NumpyMLP  # not the registry: it would import every framework here
    from mlpbench.choices import BackendChoice
    from mlpbench.workerproc import Worker, WorkerDied

    worker = Worker(BackendChoice("numpy"), NumpyMLP, 1, (), tmp_path / "worker.log")
    stopper = threading.Timer(0.2, worker.stop, kwargs={"kill": True})
    stopper.start()
    with pytest.raises(WorkerDied):
        while True:  # the worker's "ready" may come first; then nothing more comes until the stop
            assert worker.receive(time.monotonic() + 60) is not None, "the stop did not end the wait"
    stopper.join()
    with pytest.raises(WorkerDied):  # a wait that starts after the stop closed the pipe: the same
        worker.receive(time.monotonic() + 5)
    assert "worker killed by signal SIGKILL" in worker.death_reason()
