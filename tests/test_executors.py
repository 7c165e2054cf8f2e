"""Executors with real processes: --jobs 2 on this machine, and a real Dask scheduler with two workers on loopback.

The Dask cluster is started here as a user starts one from the shell (``dask scheduler`` and
``dask worker`` processes); the faulty backends of tests/plugins/faulty.py supply errors, crashes,
hangs and divergence, and one Dask worker is killed mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = str(ROOT / "tests" / "plugins" / "faulty.py")
DASK = str(Path(sys.executable).with_name("dask"))


def _run(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "run_bench.py", "run", "--no-progress", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


def _wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


# ------------------------------------------------------------------------------------- local
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
def test_two_local_jobs_at_once_give_the_same_records_on_disjoint_cores(tmp_path) -> None:
    plan = ["--backends", "numpy", "--tasks", "xor,digits", "--seeds", "2", "--epochs", "3", "--set", "dtype=float64"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert _run(*plan, "--out", str(one)).returncode == 0
    done = _run(*plan, "--jobs", "2", "--out", str(two))
    assert done.returncode == 0, done.stderr
    a = {r["id"]: r for r in _records(one)}
    b = {r["id"]: r for r in _records(two)}
    assert set(a) == set(b) and len(a) == 4
    for job_id, r in b.items():
        assert r["status"] == "ok" and r["test_accuracy"] == a[job_id]["test_accuracy"]
        assert r["concurrency"] == 2 and len(r["cores"]) == 1
        assert a[job_id]["concurrency"] == 1 and a[job_id]["cores"] is None
    assert len({tuple(r["cores"]) for r in b.values()}) == 2  # the two workers ran on different cores


# -------------------------------------------------------------------------------------- dask
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real scheduler and two single-threaded workers on loopback, as started from a shell."""
    tmp = tmp_path_factory.mktemp("dask")
    scheduler_file = tmp / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [
        subprocess.Popen(
            [
                DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    _wait_for(scheduler_file.exists, 60)
    workers = []
    for i in range(2):
        workers.append(
            subprocess.Popen(
                [
                    DASK,
                    "worker",
                    "--scheduler-file",
                    str(scheduler_file),
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                    "--name",
                    f"w{i}",
                    "--host",
                    "127.0.0.1",
                ],
                cwd=tmp,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    procs += workers
    from distributed import Client

    with Client(scheduler_file=str(scheduler_file), timeout="30s") as client:
        client.wait_for_workers(2, timeout=90)
    yield {"file": str(scheduler_file), "workers": workers, "tmp": tmp, "env": env}
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def test_faults_on_dask_become_status_rows(cluster, tmp_path) -> None:
    out = tmp_path / "faults"
    done = _run(
        "--plugin",
        PLUGIN,
        "--executor",
        "dask",
        "--scheduler-file",
        cluster["file"],
        "--backends",
        "numpy,raising,aborting[seed=0],hanging[seed=0],diverging",
        "--tasks",
        "xor",
        "--seeds",
        "2",
        "--epochs",
        "3",
        "--timeout",
        "10s",
        "--out",
        str(out),
    )
    assert done.returncode == 1, done.stderr  # failed jobs
    by = {(r["backend"], r["seed"]): r for r in _records(out)}
    assert len(by) == len(_records(out)) == 10
    assert by[("numpy", 0)]["status"] == by[("numpy", 1)]["status"] == "ok"
    assert by[("raising", 0)]["status"] == "error"
    assert by[("aborting[seed=0]", 0)]["status"] == "crashed" and by[("aborting[seed=0]", 1)]["status"] == "ok"
    assert by[("hanging[seed=0]", 0)]["status"] == "timeout" and by[("hanging[seed=0]", 1)]["status"] == "ok"
    assert "diverged" in {by[("diverging", 0)]["status"], by[("diverging", 1)]["status"]}
    assert all(r["host"] and r["matmul_gflops"] > 0 for r in by.values() if r["status"] == "ok")


def test_a_dask_worker_killed_mid_run_leaves_one_record_per_job(cluster, tmp_path) -> None:
    out = tmp_path / "killed"
    run = subprocess.Popen(
        [
            sys.executable,
            "run_bench.py",
            "run",
            "--no-progress",
            "--plugin",
            PLUGIN,
            "--executor",
            "dask",
            "--scheduler-file",
            cluster["file"],
            "--backends",
            "slow,numpy",
            "--tasks",
            "xor",
            "--seeds",
            "4",
            "--epochs",
            "6",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: (out / "runs.jsonl").exists() and (out / "runs.jsonl").read_text().strip(), 120)
        victim = cluster["workers"][0]
        victim.kill()  # mid-run: its task is rerun by Dask on the other worker
        _, err = run.communicate(timeout=300)
    finally:
        run.kill()
    assert run.returncode == 0, err
    ids = [r["id"] for r in _records(out)]
    assert len(ids) == len(set(ids)) == 8
    assert {r["status"] for r in _records(out)} == {"ok"}
    # Bring the pool back to two workers for the tests that follow.
    cluster["workers"][0] = subprocess.Popen(
        [
            DASK,
            "worker",
            "--scheduler-file",
            cluster["file"],
            "--nthreads",
            "1",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
        ],
        cwd=cluster["tmp"],
        env=cluster["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_an_interrupted_dask_run_resumes_to_the_full_plan(cluster, tmp_path) -> None:
    out = tmp_path / "stopped"
    plan = ["--plugin", PLUGIN, "--backends", "slow", "--tasks", "xor", "--seeds", "4", "--epochs", "8"]
    run = subprocess.Popen(
        [
            sys.executable,
            "run_bench.py",
            "run",
            "--no-progress",
            "--executor",
            "dask",
            "--scheduler-file",
            cluster["file"],
            *plan,
            "--out",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: (out / "runs.jsonl").exists() and (out / "runs.jsonl").read_text().strip(), 120)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 130, err
    assert f"--resume {out}" in err
    first = {r["id"] for r in _records(out)}
    assert 1 <= len(first) < 4
    resumed = _run("--resume", str(out), "--executor", "dask", "--scheduler-file", cluster["file"])
    assert resumed.returncode == 0, resumed.stderr
    ids = [r["id"] for r in _records(out)]
    assert len(ids) == len(set(ids)) == 4 and first <= set(ids)
