"""Native mode: each framework's own loop, initialisation and shuffling, with the runner's data and metrics.

The built-in backends reach the tasks' targets natively, their results differ between seeds and
repeat for one seed, the runner's evaluation between epochs stays outside the timed interval, the
mode reaches the records, the results tables and the CSV export, and a backend without a native
loop is a skip reason. One module-scoped fixture per framework runs its jobs once, in-process.
"""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest

import mlpbench
from mlpbench import metrics
from mlpbench.backend import TIMINGS, Backend
from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.worker import execute

SLEEP_S = 0.05  # what the sleepy backends' predict costs


def _run(backend: Backend, registry, task_name: str, seed: int, mode: str = "native", **changes) -> dict:
    task = registry.task(task_name)()
    spec = task.spec().replace(**changes)
    job = {"id": f"{backend.name}/{task_name}/{seed}/{mode}", "seed": seed, "mode": mode, "spec": spec.to_dict()}
    record = execute(backend, task, task.load(seed), job)
    assert record["status"] == "ok", (record.get("error"), record.get("traceback"))
    return record


def _native_runs(registry, name: str, xor_seeds: tuple[int, ...]) -> dict:
    """Native jobs of one backend: xor, digits with seeds 0 and 1, digits seed 0 again; and the backend."""
    backend = registry.backend(name)()
    backend.prepare(threads=1)
    runs = {("xor", s): _run(backend, registry, "xor", s) for s in xor_seeds}
    runs.update({("digits", s): _run(backend, registry, "digits", s) for s in (0, 1)})
    runs["digits", "again"] = _run(backend, registry, "digits", 0)
    runs["backend"] = backend
    return runs


@pytest.fixture(scope="module")
def numpy_runs(registry):
    return _native_runs(registry, "numpy", (0, 1))


@pytest.fixture(scope="module")
def torch_runs(registry):
    pytest.importorskip("torch")
    return _native_runs(registry, "torch", (0, 1))


@pytest.fixture(scope="module")
def keras_runs(registry):
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    return _native_runs(registry, "keras", (0,))  # Keras' fit costs ~50 ms an epoch even on xor: one seed


@pytest.fixture(scope="module")
def sklearn_runs(registry):
    return _native_runs(registry, "sklearn", (0, 1))


BACKENDS = ["numpy", "torch", "keras", "sklearn"]


@pytest.fixture(params=BACKENDS)
def runs(request):
    return request.getfixturevalue(f"{request.param}_runs")


# ---------------------------------------------------------------- quality
def test_native_runs_reach_the_task_targets(runs, registry) -> None:
    for key, record in runs.items():
        if key == "backend":
            continue
        task = registry.task(key[0])
        value = record[f"test_{task.target_metric}"]
        assert metrics.reached(task.target_metric, value, task.target), (key, value)
        assert record["native_loop"] == runs["backend"].native_loop
        assert record["timing"] in TIMINGS and record["early_stopping"] is None


def test_native_records_have_the_controlled_fields(runs) -> None:
    record = runs["digits", 0]
    for key in (
        "epoch_time_s",
        "train_time_s",
        "epochs_run",
        "predict_time_s",
        "peak_rss_mb",
        "cpu_time_s",
        "test_accuracy",
        "test_log_loss",
        "final_train_loss",
        "final_val_loss",
        "first_epoch_s",
    ):
        assert key in record, key
    assert record["epochs_run"] == 40 == len(record["curve"])
    point = record["curve"][-1]
    for key in ("epoch", "epoch_time_s", "elapsed_s", "running_loss", "train_loss", "val_loss", "val_accuracy"):
        assert key in point, key
    assert point["val_loss"] is not None and point["train_loss"] is not None  # the final model, always evaluated
    assert record["fit_time_s"] >= 0.999 * record["train_time_s"]  # the whole call holds every epoch
    if record["timing"] == "per_epoch":
        assert all(p["val_loss"] is not None and p["epoch_time_s"] > 0 for p in record["curve"])
        assert record["first_epoch_s"] == record["curve"][0]["epoch_time_s"]
        assert record["time_to_target_s"] is not None
    else:  # scikit-learn: its fit has no per-epoch hook
        assert runs["backend"].name == "sklearn"
        assert all(p["val_loss"] is None and p["epoch_time_s"] is None for p in record["curve"][:-1])
        assert all(p["running_loss"] is not None for p in record["curve"])  # loss_curve_
        assert record["first_epoch_s"] is None and record["time_to_target_s"] is None
        assert record["epoch_time_s"] == pytest.approx(record["train_time_s"] / 40)


# ---------------------------------------------------------- reproducibility
def _outcome(record: dict) -> tuple:
    return record["test_accuracy"], record["test_log_loss"], record["final_train_loss"]


def test_native_results_differ_between_seeds_and_repeat_for_one_seed(runs) -> None:
    assert _outcome(runs["digits", 0]) != _outcome(runs["digits", 1])
    # The same seed twice: identical results. Keras with keras.utils.set_random_seed on TensorFlow's CPU
    # kernels (one thread) repeats too; on a GPU or with several threads it need not.
    assert _outcome(runs["digits", 0]) == _outcome(runs["digits", "again"])
    curves = [[p["val_loss"] for p in runs["digits", key]["curve"]] for key in (0, "again")]
    assert curves[0] == curves[1]


def test_numpy_native_differs_from_controlled_only_by_its_draws(numpy_runs, registry) -> None:
    controlled = _run(numpy_runs["backend"], registry, "digits", 0, mode="controlled")
    native = numpy_runs["digits", 0]
    assert _outcome(native) != _outcome(controlled)
    assert native["final_train_loss"] == pytest.approx(controlled["final_train_loss"], rel=0.5)  # same recipe
    assert controlled["timing"] == "per_epoch" and "native_loop" not in controlled


# ---------------------------------------------------- evaluation is not timed
class Sleepy:
    """A mixin: every prediction (the runner's evaluation) costs `sleep_s`."""

    sleep_s = SLEEP_S

    def predict(self, X):
        time.sleep(self.sleep_s)
        return super().predict(X)


class SleepyNumpy(Sleepy, NumpyMLP):
    """The NumPy backend, whose predict sleeps 50 ms."""

    name = "sleepy_numpy"


def _sleepy(base: type[Backend], sleep_s: float) -> type[Backend]:
    return type(f"Sleepy{base.__name__}", (Sleepy, base), {"name": f"sleepy_{base.name}", "sleep_s": sleep_s})


def _assert_evaluation_untimed(backend: Backend, registry, **changes) -> None:
    """Two predictions an epoch of `sleep_s` each: inside the interval, every epoch would take twice that."""
    sleep = backend.sleep_s
    t0 = time.perf_counter()
    record = _run(backend, registry, "xor", 0, epochs=4, **changes)
    wall = time.perf_counter() - t0
    times = [p["epoch_time_s"] for p in record["curve"]]
    assert len(times) == record["epochs_run"] and wall > 2 * sleep * len(times)
    steady = times[1:] or times  # the first epoch holds the framework's start-up
    # Evaluated inside the interval, no epoch could take less than 2 * sleep; a busy machine adds noise.
    assert max(steady) < 2 * sleep and np.median(steady) < sleep / 2, times
    assert record["train_time_s"] == pytest.approx(sum(times))


def test_evaluation_between_native_epochs_is_not_timed(registry) -> None:
    backend = SleepyNumpy()
    backend.prepare(threads=1)
    _assert_evaluation_untimed(backend, registry)
    _assert_evaluation_untimed(backend, registry, patience=2)  # the runner's early stopping


def test_evaluation_is_not_timed_in_torch_and_keras_native_loops(registry, torch_runs, keras_runs) -> None:
    # Keras' fit spends ~50 ms an epoch of its own even on xor: a longer sleep tells the two apart.
    for cls, sleep in ((type(torch_runs["backend"]), SLEEP_S), (type(keras_runs["backend"]), 8 * SLEEP_S)):
        backend = _sleepy(cls, sleep)()
        backend.prepare(threads=1)
        _assert_evaluation_untimed(backend, registry)
    # Keras' EarlyStopping: its own validation pass (fit's evaluate) ends the epoch's interval too.
    _assert_evaluation_untimed(backend, registry, patience=3)


# ------------------------------------------------------------- early stopping
def test_native_early_stopping_is_the_frameworks_own_where_it_has_one(
    registry, numpy_runs, torch_runs, keras_runs, sklearn_runs
) -> None:
    expected = {
        "numpy": "runner",
        "torch": "runner",
        "keras": "keras EarlyStopping",
        "sklearn": "sklearn early_stopping",
    }
    for runs in (numpy_runs, torch_runs, keras_runs, sklearn_runs):
        backend = runs["backend"]
        record = _run(backend, registry, "digits", 0, patience=2, epochs=30)
        assert record["early_stopping"].startswith(expected[backend.name]), record["early_stopping"]
        assert 1 <= record["best_epoch"] <= record["epochs_run"] <= 30
        assert record["stopped_early"] == (record["epochs_run"] < 30)
        assert record["restored_best"] == (record["best_epoch"] != record["epochs_run"])
        assert metrics.reached("accuracy", record["test_accuracy"], 0.9)
    assert "own 10% validation split" in sklearn_runs["backend"].native_early_stopping


def test_sklearn_early_stopping_on_too_few_samples_says_why_and_what_to_do(registry, sklearn_runs) -> None:
    backend, task = sklearn_runs["backend"], registry.task("xor")()
    spec = task.spec().replace(patience=5)
    job = {"id": "sklearn/xor/0/native", "seed": 0, "mode": "native", "spec": spec.to_dict()}
    record = execute(backend, task, task.load(0), job)
    assert record["status"] == "error"
    assert (
        "holds out 10% of the 4 training samples (1), too few for its validation split of 2 classes"
        in (record["error"])
    )
    assert "without patience, or in controlled mode" in record["error"]


# ---------------------------------------------- mode in records and exports
def test_mode_is_in_the_records_the_runs_table_and_the_csv(tmp_path) -> None:
    out = tmp_path / "res"
    exp = mlpbench.Experiment(backends=["numpy"], tasks=["xor"], seeds=[0], modes=["controlled", "native"])
    results = mlpbench.run(exp, out=out)
    runs = results.runs.set_index("mode")
    assert sorted(runs.index) == ["controlled", "native"] and set(runs["status"]) == {"ok"}
    assert runs.loc["native", "timing"] == "per_epoch" and runs.loc["native", "test_accuracy"] == 1.0
    assert runs.loc["native", "id"] != runs.loc["controlled", "id"]
    assert sorted(mlpbench.load_results(out).runs["mode"]) == ["controlled", "native"]
    with open(out / "runs.csv", newline="", encoding="utf-8") as f:
        assert sorted(row["mode"] for row in csv.DictReader(f)) == ["controlled", "native"]


def test_experiment_accepts_native_and_refuses_unknown_modes(registry) -> None:
    mlpbench.Experiment(backends=["numpy"], tasks=["xor"], seeds=[0], modes=["native"]).validate(registry)
    with pytest.raises(mlpbench.ExperimentError, match="allowed modes are controlled, native"):
        mlpbench.Experiment(backends=["numpy"], tasks=["xor"], seeds=[0], modes=["own"]).validate(registry)


# ------------------------------------------------------ no native loop: skip
class FrameworkWithoutNative(NumpyMLP):
    """Stands for a backend on a framework (requires more than numpy) that has no fit_native."""

    name = "framework_without_native"
    requires = ("numpy", "json")


class DeclinesNative(NumpyMLP):
    name = "declines_native"
    native = False


@pytest.mark.parametrize("cls", [FrameworkWithoutNative, DeclinesNative])
def test_a_backend_without_a_native_loop_is_skipped(cls, registry) -> None:
    assert not cls.has_native()
    task = registry.task("xor")()
    job = {"id": "x", "seed": 0, "mode": "native", "spec": task.spec().to_dict()}
    record = execute(cls(), task, task.load(0), job)
    assert record["status"] == "skipped" and record["error"].startswith("no native mode")
    assert execute(cls(), task, task.load(0), {**job, "mode": "controlled"})["status"] == "ok"


def test_which_backends_have_a_native_mode(registry) -> None:
    for name in BACKENDS:
        assert registry.backends[name].cls.has_native(), name
    jax = registry.backends.get("jax")
    if jax is not None and jax.cls is not None:
        assert not jax.cls.has_native()  # a framework backend without fit_native: "no native mode"


class BrokenNative(NumpyMLP):
    """Breaks the contract in the way `how` says."""

    name = "broken_native"
    how = "twice"

    def fit_native(self, spec, seed, X, y, X_val, y_val, epoch_end):
        self.build(spec, None, seed)
        if self.how == "twice":
            epoch_end(1, 0.01, None)
            epoch_end(1, 0.01, None)
        elif self.how == "silent":
            return None
        elif self.how == "whole_call_without_time":
            from mlpbench.backend import NativeFit

            return NativeFit(timing="whole_call", epochs_run=3)
        return None


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("twice", "reported epoch 1 after 1 epoch"),
        ("silent", "called epoch_end for no epoch"),
        ("whole_call_without_time", "train_time_s=None"),
    ],
)
def test_a_broken_native_loop_is_an_error_record(how, message, registry) -> None:
    backend = type("B", (BrokenNative,), {"how": how})()
    task = registry.task("xor")()
    record = execute(
        backend, task, task.load(0), {"id": "x", "seed": 0, "mode": "native", "spec": task.spec().to_dict()}
    )
    assert record["status"] == "error" and message in record["error"], record["error"]
    assert np.isfinite(record["peak_rss_mb"])
