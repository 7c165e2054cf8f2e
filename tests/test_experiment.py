"""Experiments: grids, experiment files, validation before any work, and runs that reproduce themselves."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import mlpbench
from mlpbench.cli import main
from mlpbench.experiment import Experiment, ExperimentError, load_experiment, presets
from mlpbench.plan import make_plan

QUICK = ["--epochs", "2", "--no-progress"]


def _plan(registry, **fields):
    experiment = Experiment(**fields).resolved(registry)
    return make_plan(experiment, registry)


def _ids(out: Path) -> list[str]:
    return sorted(json.loads(line)["id"] for line in (out / "runs.jsonl").read_text().splitlines())


# ------------------------------------------------------------------------------------------- grids
def test_the_plan_is_the_product_of_the_grid_backends_and_seeds(registry) -> None:
    jobs = _plan(
        registry,
        backends=["numpy", "sklearn"],
        tasks=["digits"],
        seeds=[0, 1],
        grid={"hidden": ["16", "64x64"], "lr": [1e-3, 1e-2]},
    )
    assert len(jobs) == 2 * 2 * 2 * 2
    assert len({j.id for j in jobs}) == len(jobs)
    points = {(j.grid_point["hidden"], j.grid_point["lr"]) for j in jobs}
    assert points == {("16", 1e-3), ("16", 1e-2), ("64x64", 1e-3), ("64x64", 1e-2)}
    deep = next(j for j in jobs if j.grid_point["hidden"] == "64x64")
    assert deep.spec["hidden"] == [64, 64]


def test_ids_are_stable_and_one_spelling_of_a_value_is_one_job(registry) -> None:
    a = _plan(registry, backends=["numpy"], tasks=["xor"], seeds=[0], grid={"hidden": ["16", "32"]})
    b = _plan(registry, backends=["numpy"], tasks=["xor"], seeds=[0], grid={"hidden": [16, [32]]})
    assert [j.id for j in a] == [j.id for j in b]
    c = _plan(registry, backends=["numpy"], tasks=["xor"], seeds=[0], grid={"hidden": ["16", "33"]})
    assert a[0].id == c[0].id and a[1].id != c[1].id


def test_a_grid_dimension_applies_only_to_its_task_and_backend(registry) -> None:
    jobs = _plan(
        registry,
        backends=["numpy", "torch"],
        tasks=["xor", "moons"],
        seeds=[0],
        grid={"moons.noise": ["0.1", "0.3"], "torch.compile": ["false", "true"]},
    )
    count = {(j.backend_name, j.task): 0 for j in jobs}
    for j in jobs:
        count[(j.backend_name, j.task)] += 1
    assert count == {("numpy", "xor"): 1, ("numpy", "moons"): 2, ("torch", "xor"): 2, ("torch", "moons"): 4}
    moons = [j for j in jobs if j.task == "moons"]
    assert {j.task_params["noise"] for j in moons} == {0.1, 0.3}  # converted by the task
    assert {j.backend for j in jobs if j.backend_name == "torch"} == {"torch[compile=false]", "torch[compile=true]"}


def test_threads_is_a_grid_dimension_and_each_job_records_its_budget(registry) -> None:
    jobs = _plan(registry, backends=["numpy"], tasks=["xor"], seeds=[0], grid={"threads": [1, 2]}, oversubscribe=True)
    assert sorted(j.threads for j in jobs) == [1, 2]
    assert len({j.id for j in jobs}) == 2


def test_the_data_fingerprint_is_part_of_the_id(registry, tmp_path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    params = {"csv": {"path": str(csv), "target": "label"}}
    before = _plan(registry, backends=["numpy"], tasks=["csv"], seeds=[0], task_params=params)
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(40)))
    after = _plan(registry, backends=["numpy"], tasks=["csv"], seeds=[0], task_params=params)
    assert before[0].data_fingerprint and after[0].data_fingerprint
    assert before[0].data_fingerprint != after[0].data_fingerprint and before[0].id != after[0].id


# ------------------------------------------------------------------------------- bad input, exit 2
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--grid", "width=16,64"], "grid: unknown setting 'width'"),
        (["--grid", "hidden=16,abc"], "ModelSpec.hidden = 'abc': expected comma-separated integers"),
        (["--grid", "lr=0.1,inf"], "grid: lr: ModelSpec.lr = 'inf': must be a finite number"),
        (["--grid", "lr=0.1,0.1"], "a value is listed twice"),
        (["--grid", "moons.noise=0.1,0.2"], "'moons' is neither a task of this run"),
        (["--grid", "numpy.compile=true"], "backend 'numpy' has no option compile"),
        (["--set", "lr=inf"], "ModelSpec.lr = 'inf': must be a finite number"),
        (["--set", "eps=nan"], "ModelSpec.eps = 'nan': must be a finite number"),
        (["--set", "l2=-inf"], "ModelSpec.l2 = '-inf': must be a finite number"),
        (["--seeds", "0,99999999999"], "every seed must be an integer in [0, 4294967295]"),
        (["--threads", "64"], "threads: 64 threads but this machine has"),
        (["--grid", "threads=1,64"], "grid: threads: 64"),
    ],
)
def test_bad_grid_and_setting_values_stop_before_any_work(tmp_path, capsys, argv, message) -> None:
    out = tmp_path / "out"
    assert main(["run", "--backends", "numpy", "--tasks", "xor", "--out", str(out), *QUICK, *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_backend_option_that_cannot_be_converted_stops_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    argv = ["run", "--backends", "torch[compile=maybe]", "--tasks", "xor", "--out", str(out), *QUICK]
    assert main(argv) == 2
    assert "option compile='maybe': expected true or false" in capsys.readouterr().err
    assert not out.exists()


def test_a_task_parameter_that_cannot_be_converted_stops_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    argv = ["run", "--backends", "numpy", "--tasks", "moons", "--task-param", "moons.noise=abc", "--out", str(out)]
    assert main([*argv, *QUICK]) == 2
    assert "task moons: parameter noise='abc': expected a number" in capsys.readouterr().err
    assert not out.exists()


def test_more_threads_than_cores_runs_only_when_asked(registry) -> None:
    too_many = (os.cpu_count() or 1) + 1
    with pytest.raises(ExperimentError, match="--oversubscribe"):
        Experiment(backends=["numpy"], tasks=["xor"], threads=too_many).resolved(registry)
    Experiment(backends=["numpy"], tasks=["xor"], threads=too_many, oversubscribe=True).resolved(registry)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('tasks = ["xor"]\nepochz = 3\n', "unknown key 'epochz'; valid keys: backends, tasks"),
        ('tasks = "xor"\n', "key 'tasks' = 'xor': expected a list of task names"),
        ("seeds = [0, 1.5]\n", "key 'seeds' = [0, 1.5]: expected a count (3) or a list of integers"),
        ("[grid]\nhidden = 16\n", "key 'grid' = {'hidden': 16}: expected a table of lists"),
        ("tasks = [xor\n", "not valid TOML"),
    ],
)
def test_bad_experiment_files_name_the_file_and_key(tmp_path, capsys, text, message) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    out = tmp_path / "out"
    assert main(["run", "--config", str(config), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and message in err
    assert not out.exists()


def test_an_unknown_preset_lists_the_presets(tmp_path, capsys) -> None:
    assert main(["run", "--config", "no-such-preset", "--out", str(tmp_path / "o")]) == 2
    assert "neither a file nor a preset; presets: default, scaling, sweep-width" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- files
def test_toml_round_trip_keeps_every_field(tmp_path) -> None:
    exp = Experiment(
        backends=["numpy", "keras[engine=jax]"],
        tasks=["moons"],
        task_params={"moons": {"noise": 0.3}},
        seeds=[4, 7],
        overrides={"lr": 0.01, "hidden": "64x32"},
        grid={"batch_size": [16, 64]},
        threads=1,
        timeout_s=90.0,
        quick=True,
        name="mine",
        description="a test",
    )
    path = exp.write(tmp_path)
    assert Experiment.from_toml(path) == exp


def test_presets_are_listed_and_plan(registry, capsys) -> None:
    assert set(presets()) >= {"default", "scaling", "sweep-width"}
    sweep = load_experiment("sweep-width").resolved(registry)
    jobs = make_plan(sweep, registry, fingerprints=False)
    assert len(jobs) == 4 * 4 * 3 * 2  # backends x widths x batch sizes x seeds
    assert {j.grid_point["hidden"] for j in jobs} == {"16", "64", "256", "1024"}
    assert main(["list"]) == 0
    assert "sweep-width" in capsys.readouterr().out


def test_a_runs_experiment_toml_reruns_the_same_jobs(tmp_path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    argv = [
        "run",
        "--backends",
        "numpy",
        "--tasks",
        "xor,moons",
        "--seeds",
        "2",
        "--grid",
        "hidden=8,16",
        "--task-param",
        "moons.n_samples=200",
        "--out",
        str(first),
        *QUICK,
    ]
    assert main(argv) == 0
    assert len(_ids(first)) == 8
    assert main(["run", "--config", str(first / "experiment.toml"), "--out", str(second), "--no-progress"]) == 0
    assert _ids(second) == _ids(first)
    runs = mlpbench.load_results(second).runs
    assert set(runs["grid_hidden"]) == {"8", "16"}
    assert runs.groupby("grid_hidden").size().to_dict() == {"16": 4, "8": 4}


def test_flags_override_the_experiment_file(tmp_path) -> None:
    config = tmp_path / "exp.toml"
    config.write_text('backends = ["numpy"]\ntasks = ["xor"]\nseeds = [0, 1, 2]\n[overrides]\nepochs = 2\n')
    out = tmp_path / "out"
    assert main(["run", "--config", str(config), "--seeds", "1", "--out", str(out), "--no-progress"]) == 0
    saved = Experiment.from_toml(out / "experiment.toml")
    assert saved.seeds == [0] and saved.tasks == ["xor"] and saved.overrides == {"epochs": 2}


# ------------------------------------------------------------------------------------- Python
def test_run_from_python_returns_results_and_writes_the_directory(tmp_path) -> None:
    out = tmp_path / "nb"
    exp = Experiment(
        backends=["numpy"], tasks=["xor"], seeds=[0, 1], overrides={"epochs": 2}, grid={"lr": [0.01, 0.05]}
    )
    results = mlpbench.run(exp, out=out)
    assert len(results.runs) == 4 and set(results.runs["status"]) == {"ok"}
    assert sorted(results.runs["grid_lr"].unique()) == [0.01, 0.05]
    assert (out / "experiment.toml").exists() and (out / "report.html").exists()
    with pytest.raises(ExperimentError, match="unknown task 'nope'"):
        mlpbench.run(Experiment(backends=["numpy"], tasks=["nope"]), out=tmp_path / "never")
    assert not (tmp_path / "never").exists()
    # A run that is already complete resumes to the same results without running anything.
    again = mlpbench.resume(out)
    assert sorted(again.runs["id"]) == sorted(results.runs["id"])
