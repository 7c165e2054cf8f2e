"""``compare`` and ``history``: matching jobs across results directories, verdicts, the CI gate, bad input.

One small real run (numpy and sklearn on xor and moons) through the command line; every other
directory is a copy of it with something changed (times scaled, jobs removed, another machine).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mlpbench.cli import main
from mlpbench.compare import EPOCH, NOISE, compare_runs, identity, load_run, parse_percent
from mlpbench.report.history import history_series, ordered

TASKS = ("xor", "moons")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compare") / "base"
    # 20 epochs: 57 steady-state epochs per backend and task, enough for a 1.5x slowdown to be significant.
    args = ["run", "--backends", "numpy,sklearn", "--tasks", ",".join(TASKS), "--seeds", "3", "--epochs", "20"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    return out


def _copy(src: Path, dst: Path, edit: Callable[[dict], dict | None] | None = None, env: dict | None = None) -> Path:
    """A results directory like `src`, each record passed through `edit` (None drops it), env.json updated."""
    dst.mkdir(parents=True)
    for name in ("config.json", "experiment.toml"):
        shutil.copy(src / name, dst / name)
    records = [json.loads(line) for line in (src / "runs.jsonl").read_text().splitlines() if line.strip()]
    kept = [r for r in (edit(r) if edit else r for r in records) if r is not None]
    (dst / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    machine = json.loads((src / "env.json").read_text())
    (dst / "env.json").write_text(json.dumps({**machine, **(env or {})}))
    return dst


def _slower(factor: float) -> Callable[[dict], dict]:
    def edit(record: dict) -> dict:
        if record.get("epoch_time_s"):
            record["epoch_time_s"] *= factor
        for point in record.get("curve") or []:
            if point.get("epoch_time_s"):
                point["epoch_time_s"] *= factor
        return record

    return edit


def _verdicts(md: str, measure: str) -> list[str]:
    """The verdict column of every row of `measure` in compare.md's group table (10 columns, verdict 9th)."""
    rows = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in md.splitlines() if ln.startswith("| ")]
    return [r[8] for r in rows if len(r) == 10 and r[3] == measure]


# ---------------------------------------------------------------------------- the same run, and a slower copy
def test_a_run_compared_with_itself_is_unchanged(run_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cmp"
    assert main(["compare", str(run_dir), str(run_dir), "--out", str(out), "--fail-slower", "10%"]) == 0
    printed = capsys.readouterr().out
    assert "no significant change" in printed and "slower" not in printed
    md = (out / "compare.md").read_text(encoding="utf-8")
    assert _verdicts(md, EPOCH) == ["no significant change"] * 4  # 2 backends x 2 tasks
    verdicts = {v for m in (EPOCH, "time to target", "peak memory", "test accuracy") for v in _verdicts(md, m)}
    assert verdicts <= {"no significant change", "no values"}  # the very same values: unchanged, even per seed
    assert "warning" not in md
    page = (out / "compare.html").read_text(encoding="utf-8")
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert images and all(s.startswith("data:image/png;base64,") for s in images)  # one self-contained file
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert (out / "figures" / "compare-1.png").read_bytes()[:4] == b"\x89PNG"


def test_a_copy_with_times_scaled_by_one_and_a_half_is_significantly_slower(run_dir: Path, tmp_path: Path) -> None:
    slow = _copy(run_dir, tmp_path / "slow", _slower(1.5))
    out = tmp_path / "cmp"
    assert main(["compare", str(run_dir), str(slow), "--out", str(out), "--fail-slower", "10%"]) == 1
    comparison = compare_runs(load_run(run_dir), load_run(slow))
    assert len(comparison.groups) == 4 and not comparison.only_a and not comparison.only_b
    verdicts = []
    for group in comparison.groups:
        m = group.measure(EPOCH)
        assert m.change.estimate == pytest.approx(1.5)  # medians scale exactly
        assert m.change.low <= 1.5 <= m.change.high and m.change.p_value < comparison.alpha, group.label
        verdicts.append(m.verdict)
        # A bimodal measurement (epochs alternating between two speeds on a busy machine) makes the median
        # unstable: then the interval, not the test, withholds the verdict, and nothing is called faster.
        assert m.verdict == "slower" or (m.verdict == "no significant change" and m.change.low <= 1.0 + NOISE), (
            group.label
        )
    assert verdicts.count("slower") >= 2
    md = (out / "compare.md").read_text(encoding="utf-8")
    assert _verdicts(md, EPOCH) == verdicts
    # The gate only fails on slowdowns larger than it tolerates: 1.5x is within 60%.
    assert main(["compare", str(run_dir), str(slow), "--out", str(tmp_path / "cmp60"), "--fail-slower", "60"]) == 0
    assert main(["compare", str(run_dir), str(slow), "--out", str(tmp_path / "cmp49"), "--fail-slower", "49%"]) == 1
    assert main(["compare", str(run_dir), str(slow), "--out", str(tmp_path / "plain")]) == 0  # no gate: 0


def test_a_drift_inside_the_noise_band_is_no_change(run_dir: Path, tmp_path: Path) -> None:
    """8% slower on every epoch: inside the default ±10% band, so no group is called slower."""
    drift = _copy(run_dir, tmp_path / "drift", _slower(1.08))
    banded = compare_runs(load_run(run_dir), load_run(drift))
    assert {g.measure(EPOCH).verdict for g in banded.groups} == {"no significant change"}
    assert main(["compare", str(run_dir), str(drift), "--noise", "abc", "--out", str(tmp_path / "x")]) == 2


def test_few_seeds_say_no_test_is_possible_for_per_seed_measures(run_dir: Path, tmp_path: Path) -> None:
    heavier = _copy(run_dir, tmp_path / "mem", lambda r: {**r, "peak_rss_mb": (r.get("peak_rss_mb") or 0) + 5})
    comparison = compare_runs(load_run(run_dir), load_run(heavier))
    for group in comparison.groups:
        m = group.measure("peak memory")
        assert m.verdict == "no test possible" and "3 vs 3" in m.note  # 3 seeds: the smallest p is 0.1
        assert m.change.estimate > 1.0


# ---------------------------------------------------------------------------- matching
def test_jobs_are_matched_by_cell_not_by_seed_or_id(run_dir: Path, tmp_path: Path) -> None:
    """Another data fingerprint changes every job id, not the cell; a seed missing from B leaves its cell matched."""

    def edit(r: dict) -> dict | None:
        if r["task"] == "moons" and r["backend"] == "sklearn":
            return None  # only in A
        if r["seed"] == 2:
            return None
        return {**r, "id": r["id"] + "-other", "data_fingerprint": "0" * 16}

    other = _copy(run_dir, tmp_path / "other", edit)
    comparison = compare_runs(load_run(run_dir), load_run(other))
    assert sorted(g.label for g in comparison.groups) == ["numpy · moons", "numpy · xor", "sklearn · xor"]
    assert comparison.only_a == ["sklearn · moons (seeds 0, 1, 2)"] and comparison.only_b == []
    assert any("data differ" in w for w in comparison.warnings)
    out = tmp_path / "cmp"
    assert main(["compare", str(run_dir), str(other), "--out", str(out)]) == 0
    md = (out / "compare.md").read_text(encoding="utf-8")
    assert "- only in A: sklearn · moons (seeds 0, 1, 2)" in md


def test_identity_leaves_out_seed_and_id_but_not_the_spec() -> None:
    base = {"backend": "numpy", "task": "xor", "seed": 0, "id": "a", "spec": {"lr": 0.01}, "grid_point": {}}
    assert identity(base) == identity({**base, "seed": 5, "id": "b", "data_fingerprint": "x"})
    assert identity(base) != identity({**base, "spec": {"lr": 0.1}})
    assert identity(base) != identity({**base, "grid_point": {"hidden": "16"}})
    assert identity(base) != identity({**base, "mode": "native"})


def test_nothing_in_common_is_refused_with_exit_2(run_dir: Path, tmp_path: Path, capsys) -> None:
    other = _copy(run_dir, tmp_path / "other", lambda r: {**r, "spec": {**r["spec"], "epochs": 3}})
    assert main(["compare", str(run_dir), str(other), "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert "nothing to compare" in err and "numpy · xor" in err
    assert not (tmp_path / "cmp" / "compare.md").exists()


def test_different_machines_are_shown_and_warned_about(run_dir: Path, tmp_path: Path) -> None:
    env = json.loads((run_dir / "env.json").read_text())
    other = _copy(run_dir, tmp_path / "other", env={"cpu": "Other CPU 9000", "matmul_gflops": env["matmul_gflops"] * 2})
    out = tmp_path / "cmp"
    assert main(["compare", str(run_dir), str(other), "--out", str(out)]) == 0
    md = (out / "compare.md").read_text(encoding="utf-8")
    assert "different machines" in md and "Other CPU 9000" in md and "matmul peak differs by +100%" in md
    assert "| CPU | " in md and "**(differs)**" in md


def _on_two_hosts(src: Path, dst: Path, factor: float) -> Path:
    """A run on two machines: `src`'s jobs, and a copy of each from "hostB" with epochs `factor` longer."""
    out = _copy(src, dst)
    records = [json.loads(line) for line in (src / "runs.jsonl").read_text().splitlines() if line.strip()]
    other = [{**_slower(factor)(json.loads(json.dumps(r))), "id": r["id"] + "@b", "host": "hostB"} for r in records]
    (out / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records + other))
    return out


def test_a_run_on_two_machines_is_compared_host_by_host(run_dir: Path, tmp_path: Path) -> None:
    """A group never pools one machine's seeds with another's: a run that also ran on a 1.5x slower host is,
    on the host both runs share, unchanged; and a slowdown on one host alone is found on that host alone."""
    here = load_run(run_dir).records[0]["host"]
    both = _on_two_hosts(run_dir, tmp_path / "both", 1.5)
    comparison = compare_runs(load_run(run_dir), load_run(both))
    assert len(comparison.groups) == 4 and all(f"host={here}" in g.label for g in comparison.groups)
    assert [g.measure(EPOCH).change.estimate for g in comparison.groups] == [pytest.approx(1.0)] * 4
    assert len(comparison.only_b) == 4 and all("host=hostB" in name for name in comparison.only_b)
    assert any("ran on 2 machines" in w and "host by host" in w for w in comparison.warnings)

    slower_b = _on_two_hosts(run_dir, tmp_path / "slower_b", 1.5 * 1.5)  # hostB 1.5x slower again
    comparison = compare_runs(load_run(both), load_run(slower_b))
    by_host = {host: [g for g in comparison.groups if f"host={host}" in g.label] for host in (here, "hostB")}
    assert len(by_host[here]) == len(by_host["hostB"]) == 4 and not comparison.only_a and not comparison.only_b
    assert {g.measure(EPOCH).verdict for g in by_host[here]} == {"no significant change"}
    assert [g.measure(EPOCH).change.estimate for g in by_host["hostB"]] == [pytest.approx(1.5)] * 4
    out = tmp_path / "cmp"
    assert main(["compare", str(both), str(slower_b), "--out", str(out)]) == 0
    md = (out / "compare.md").read_text(encoding="utf-8")
    assert f"host={here}" in md and "host=hostB" in md

    # history draws one series per host, not one series of both machines' seeds
    series = history_series([load_run(run_dir), load_run(both)])
    names = sorted(series["xor"][1])
    assert names == sorted(f"{b} · host={h}" for b in ("numpy", "sklearn") for h in (here, "hostB"))
    mine, theirs = series["xor"][1][f"numpy · host={here}"], series["xor"][1]["numpy · host=hostB"]
    assert theirs[0] == {}  # the first run had no job on hostB
    assert theirs[1]["epoch_ms"] == pytest.approx(1.5 * mine[1]["epoch_ms"]) and mine[1] == mine[0]


# ---------------------------------------------------------------------------- bad input
def test_bad_input_exits_2(run_dir: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["compare", str(run_dir), str(tmp_path / "missing")]) == 2
    assert "no such results directory" in capsys.readouterr().err
    assert main(["compare", str(run_dir), str(empty)]) == 2
    assert "not a results directory" in capsys.readouterr().err
    assert main(["compare", str(run_dir)]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["compare", str(run_dir), str(run_dir), "--fail-slower", "ten"]) == 2
    assert "--fail-slower 'ten'" in capsys.readouterr().err
    assert main(["history", str(run_dir), str(empty)]) == 2
    assert parse_percent("10%") == pytest.approx(0.10) and parse_percent(" 2.5 ") == pytest.approx(0.025)
    for bad in ("-5%", "10%%", "", "1e999"):
        with pytest.raises(ValueError):
            parse_percent(bad)


# ---------------------------------------------------------------------------- history, profile
def test_history_orders_runs_by_creation_and_draws_each_task(run_dir: Path, tmp_path: Path, capsys) -> None:
    env = json.loads((run_dir / "env.json").read_text())
    made = {"created": "2020-01-01T00:00:00+00:00", "git_commit": "abcdef1234567"}
    earlier = _copy(run_dir, tmp_path / "earlier", _slower(2.0), env=made)
    runs = ordered([load_run(run_dir), load_run(earlier)])
    assert [r.path for r in runs] == [earlier, run_dir] and runs[0].commit == "abcdef1"
    out = tmp_path / "hist"
    assert main(["history", str(run_dir), str(earlier), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.index("abcdef1") < printed.index(str(env["git_commit"])[:7])
    for task in TASKS:
        assert (out / "figures" / f"history-{task}.png").stat().st_size > 10_000
    md = (out / "history.md").read_text(encoding="utf-8")
    assert "](figures/history-xor.png)" in md
    assert (out / "history.html").read_text(encoding="utf-8").count('src="data:image/png;base64,') == len(TASKS)
    # compare with more than two directories: each against the first, and the history after them.
    three = tmp_path / "three"
    assert main(["compare", str(run_dir), str(earlier), str(run_dir), "--out", str(three)]) == 0
    md = (three / "compare.md").read_text(encoding="utf-8")
    assert md.count("\n## ") == 3 and "## History" in md


def test_the_report_of_a_multi_task_run_has_performance_profiles(run_dir: Path) -> None:
    png = run_dir / "figures" / "performance-profile.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    section = md.split("## Across tasks: performance profiles", 1)[1].split("\n## ", 1)[0]
    assert "](figures/performance-profile.png)" in section
    lines = [ln[2:] for ln in section.splitlines() if ln.startswith("- ")]
    assert [ln.split(":")[0] for ln in lines] == ["time to target", "epoch time"]
    epoch = lines[1]
    best = re.search(r"(\w+) within 1\.0× of the best on (\d)/2 tasks", epoch)
    assert best, epoch
    others = [int(n) for n in re.findall(r"within 1\.0× on (\d)/2", epoch)]
    assert int(best.group(2)) + sum(others) >= 2  # every task has a best backend
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert '<section id="profile">' in page
