"""FLOP counts, the synthetic scaling task and the `scaling` command (a tiny grid run through real workers)."""

from __future__ import annotations

import json
import os
from functools import partial

import numpy as np
import pytest

from mlpbench import ModelSpec
from mlpbench.cli import main
from mlpbench.env import peak_gflops
from mlpbench.experiment import load_experiment
from mlpbench.flops import forward_flops, gflops, training_flops
from mlpbench.plan import make_plan
from mlpbench.report.tables import task_rows
from mlpbench.scaling import fit_slopes, scaling_rows
from mlpbench.store import records_to_frames
from mlpbench.tasks.scaling import BIG_EPOCH_FLOPS, Scaling


def test_flop_count_by_hand() -> None:
    # 64-32-10 on 100 samples: forward 2*100*(64*32 + 32*10) = 473,600;
    # backward: grad W of both layers (the same again) + grad input of the second layer only (2*100*32*10).
    spec = ModelSpec(n_inputs=64, n_outputs=10, hidden=(32,))
    assert forward_flops(spec, 100) == 473_600
    assert training_flops(spec, 100) == 473_600 * 2 + 2 * 100 * 32 * 10
    # A network without hidden layers has no input gradient to compute: 2x forward.
    linear = ModelSpec(n_inputs=5, n_outputs=3, hidden=())
    assert training_flops(linear, 7) == 2 * forward_flops(linear, 7)
    assert gflops(2e9, 0.5) == 4.0
    assert gflops(1.0, 0.0) is None and gflops(1.0, None) is None


def test_scaling_task_is_seeded_and_sized_by_its_parameters() -> None:
    task = Scaling(n_samples="1e3", n_features=12, width=48, depth=3)
    task.validate()
    a, b, c = task.load(0), task.load(0), task.load(1)
    assert a.X_train.shape == (1000, 12) and a.X_val.shape == (200, 12) and a.X_test.shape == (200, 12)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_train, c.y_train)
    assert a.y_train.min() >= 0 and a.y_train.max() <= 9
    assert len(np.unique(a.y_train)) >= 5  # the teacher uses many of the 10 classes, not one
    spec = task.spec()
    assert spec.layer_sizes == (12, 48, 48, 48, 10)
    assert spec.loss == "cross_entropy" and spec.epochs == 3 and spec.batch_size == 512


@pytest.mark.parametrize("bad", [{"width": 0}, {"n_samples": "lots"}, {"depth": 1.5}])
def test_scaling_task_rejects_bad_parameters(bad: dict) -> None:
    with pytest.raises(ValueError, match="whole number"):
        Scaling(**bad).validate()


def test_the_biggest_points_train_one_epoch_less(registry) -> None:
    experiment = load_experiment("scaling").resolved(registry)
    jobs = make_plan(experiment, registry, fingerprints=False)
    sizes = [(j.task_params["n_samples"], j.task_params["width"]) for j in jobs if j.backend == "numpy"]
    assert sizes == [(n, w) for n in (1000, 10_000, 100_000) for w in (64, 256, 1024)]
    for job in jobs:
        spec = Scaling(**job.task_params).spec()
        big = training_flops(spec, job.task_params["n_samples"]) > BIG_EPOCH_FLOPS
        assert job.spec["epochs"] == spec.epochs == (2 if big else 3)
    assert {j.spec["epochs"] for j in jobs} == {2, 3}


def test_slope_of_an_exact_power_law() -> None:
    spec = ModelSpec(n_inputs=4, n_outputs=10, hidden=(8,)).to_dict()
    records = [
        {
            "task": "scaling",
            "status": "ok",
            "backend": "fake",
            "n_train": n,
            "spec": spec,
            "task_params": {"width": 8},
            "flops_per_epoch": f,
            "epoch_time_s": 1e-9 * f**0.8,
        }
        for n, f in [(10, 1e6), (100, 1e7), (1000, 1e8)]
    ]
    records.append({**records[0], "status": "error"})  # failed jobs are left out
    rows = scaling_rows(records, peak_of=lambda threads: 10.0)
    assert len(rows) == 3
    assert fit_slopes(rows) == {"fake": pytest.approx(0.8)}
    assert rows[0]["gflops"] == pytest.approx(1e6 / (1e-9 * 1e6**0.8) / 1e9)
    assert rows[0]["fraction_of_peak"] == pytest.approx(rows[0]["gflops"] / 10.0)


def test_scaling_command_runs_a_grid_and_writes_table_json_and_figure(tmp_path, capsys) -> None:
    out = tmp_path / "scaling"
    status = main(
        [
            "scaling",
            "--backends",
            "numpy",
            "--samples",
            "300,600",
            "--widths",
            "8,16",
            "--features",
            "6",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "GFLOP/s" in printed and "slope" in printed
    rows = json.loads((out / "scaling.json").read_text())
    assert sorted((r["n_samples"], r["width"]) for r in rows) == [(300, 8), (300, 16), (600, 8), (600, 16)]
    for r in rows:
        assert r["backend"] == "numpy" and r["epoch_time_s"] > 0 and r["gflops"] > 0
        spec = Scaling(n_samples=r["n_samples"], n_features=6, width=r["width"]).spec()
        assert r["flops_per_epoch"] == training_flops(spec, r["n_samples"])
        assert r["slope"] == rows[0]["slope"]
    assert (out / "figures" / "scaling.png").stat().st_size > 1000
    # Every grid point is an ordinary job record, with its throughput.
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    assert all(r["train_gflops"] == pytest.approx(r["flops_per_epoch"] / r["epoch_time_s"] / 1e9) for r in records)
    # The run's report shows the sweep: the figure and one table row per grid point.
    md = (out / "report.md").read_text()
    assert "## Scaling: epoch time against work" in md and "](figures/scaling.png)" in md
    assert md.count("| numpy | 600 |") == 2
    html_text = (out / "report.html").read_text()
    scaling_section = html_text.split('<section id="scaling">', 1)[1].split("</section>", 1)[0]
    assert "data:image/png;base64," in scaling_section
    # ...and every task table gives the achieved GFLOP/s with its share of the machine's peak.
    assert "train GFLOP/s" in md and "% of peak" in md


def test_a_sweep_over_threads_measures_the_peak_at_each_and_compares_each_job_with_its_own(tmp_path, capsys) -> None:
    """scaling --threads 1,2: one series per backend and thread count, each share of the peak against the peak
    measured with that job's threads (a 2-thread job against a 1-thread peak would read up to twice too high)."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 cores")
    out = tmp_path / "scaling"
    argv = ["scaling", "--backends", "numpy", "--samples", "300", "--widths", "8,16", "--features", "6"]
    status = main([*argv, "--threads", "1,2", "--out", str(out), "--no-progress"])
    assert status == 0
    printed = capsys.readouterr().out
    env = json.loads((out / "env.json").read_text())
    peaks = env["matmul_gflops_by_threads"]
    assert set(peaks) == {"1", "2"} and env["threads"] == 1 and peaks["1"] == env["matmul_gflops"]
    # measured before and after the jobs, the better of the two kept
    before, after = env["matmul_gflops_start_by_threads"], env["matmul_gflops_end_by_threads"]
    assert peaks == {t: max(before[t], after[t]) for t in ("1", "2")}
    assert (env["matmul_gflops_start"], env["matmul_gflops_end"]) == (before["1"], after["1"])
    rows = json.loads((out / "scaling.json").read_text())
    assert sorted((r["threads"], r["width"]) for r in rows) == [(1, 8), (1, 16), (2, 8), (2, 16)]
    for r in rows:
        assert r["series"] == f"numpy, {r['threads']} thread{'s' if r['threads'] == 2 else ''}"
        assert r["peak_gflops"] == peaks[str(r["threads"])]
        assert r["fraction_of_peak"] == pytest.approx(r["gflops"] / peaks[str(r["threads"])])
        assert r["slope"] is not None  # fitted per series: two widths each
    assert f"peak of this machine with 1 thread: {peaks['1']:g} GFLOP/s" in printed
    assert f"peak of this machine with 2 threads: {peaks['2']:g} GFLOP/s" in printed
    # The report's task table: each row's % of peak against its own thread count's peak.
    runs, curves = records_to_frames([json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()])
    rows = task_rows(runs, curves, ["numpy"], partial(peak_gflops, env), ["threads"], None)
    assert {r["threads"] for r in rows} == {1, 2}
    for r in rows:
        assert r["gflops_pct"] == pytest.approx(100 * r["gflops"] / peaks[str(r["threads"])])


def test_a_peak_measured_with_other_threads_is_never_used() -> None:
    """Results without per-thread peaks (one thread count per run) give no share for another thread count."""
    env = {"threads": 1, "matmul_gflops": 80.0}
    assert peak_gflops(env, 1) == peak_gflops(env) == 80.0
    assert peak_gflops(env, 2) is None
    assert peak_gflops({**env, "matmul_gflops_by_threads": {"1": 80.0, "2": 150.0}}, 2) == 150.0


def test_more_threads_than_cores_is_refused_before_any_work_and_names_the_flag_that_allows_it(tmp_path, capsys) -> None:
    cores = os.cpu_count() or 1
    out = tmp_path / "scaling"
    status = main(["scaling", "--backends", "numpy", "--quick", "--threads", f"1,{cores + 1}", "--out", str(out)])
    assert status == 2 and not out.exists()
    err = capsys.readouterr().err
    assert f"{cores + 1} threads but this machine has {cores} cores" in err and "--oversubscribe" in err
    with pytest.raises(SystemExit):
        main(["scaling", "--help"])
    assert "--oversubscribe" in capsys.readouterr().out  # the flag the message names exists here
