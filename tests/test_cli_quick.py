"""`run --quick`: every backend and task, one seed, half of each task's epochs; explicit choices win."""

from __future__ import annotations

from mlpbench.cli import build_parser
from mlpbench.cli.run import experiment_from_args
from mlpbench.plan import make_plan


def _plan(registry, *argv: str):
    args = build_parser().parse_args(["run", "--backends", "numpy", "--tasks", "xor,digits,diabetes", *argv])
    experiment = experiment_from_args(args).resolved(registry)
    return make_plan(experiment, registry), {"quick": experiment.quick, "seeds": experiment.seeds}


def test_quick_runs_one_seed_and_half_the_epochs_of_each_task(registry) -> None:
    full, _ = _plan(registry)
    quick, config = _plan(registry, "--quick")
    assert config["quick"] is True and config["seeds"] == [0]
    full_epochs = {j.task: j.spec["epochs"] for j in full}
    assert {j.task: j.spec["epochs"] for j in quick} == {t: (e + 1) // 2 for t, e in full_epochs.items()}
    assert len(quick) == 3 and len(full) == 9  # every task still runs, with one seed instead of three
    # Apart from the epoch count, the quick jobs train exactly the default networks.
    for j in quick:
        spec = dict(j.spec, epochs=full_epochs[j.task])
        assert spec == next(f.spec for f in full if f.task == j.task)


def test_explicit_seeds_and_epochs_override_quick(registry) -> None:
    jobs, _ = _plan(registry, "--quick", "--seeds", "2", "--epochs", "5")
    assert sorted({j.seed for j in jobs}) == [0, 1]
    assert {j.spec["epochs"] for j in jobs} == {5}
