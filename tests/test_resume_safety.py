"""--resume never runs a plan other than the directory's own, and never mixes two data sets."""

from __future__ import annotations

import json
from pathlib import Path

from mlpbench.cli import main


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def _csv(path: Path, shift: int = 0) -> None:
    path.write_text("a,b,label\n" + "".join(f"{i},{(i + shift) % 7},{i % 2}\n" for i in range(60)))


def _run_csv(out: Path, data: Path) -> int:
    return main(
        [
            "run",
            "--backends",
            "numpy",
            "--tasks",
            "csv",
            "--csv-path",
            str(data),
            "--csv-target",
            "label",
            "--seeds",
            "1",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ]
    )


def _run_xor(out: Path, seeds: int) -> int:
    """A small numpy run on xor into `out`."""
    argv = f"run --backends numpy --tasks xor --seeds {seeds} --epochs 2 --no-progress --out".split()
    return main([*argv, str(out)])


def test_resume_without_experiment_toml_refuses_and_writes_nothing(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert _run_xor(out, seeds=1) == 0
    (out / "experiment.toml").unlink()
    (out / "config.json").unlink()
    before = _snapshot(out)
    assert main(["run", "--resume", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "it has no experiment.toml, so its plan is unknown and nothing was run" in err
    assert _snapshot(out) == before


def test_resume_with_a_corrupt_experiment_toml_says_so(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert _run_xor(out, seeds=1) == 0
    (out / "experiment.toml").write_text("tasks = [xor\n")
    before = _snapshot(out)
    assert main(["run", "--resume", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'experiment.toml'}: not valid TOML" in err and "Traceback" not in err
    assert _snapshot(out) == before


def test_resume_refuses_when_the_csv_data_changed(tmp_path, capsys) -> None:
    data, out = tmp_path / "data.csv", tmp_path / "out"
    _csv(data)
    assert _run_csv(out, data) == 0
    old = json.loads((out / "runs.jsonl").read_text().splitlines()[0])["data_fingerprint"]
    # The run is extended by one seed, then the file is edited before resuming.
    text = (out / "experiment.toml").read_text()
    (out / "experiment.toml").write_text(text.replace("seeds = [\n    0,\n]", "seeds = [\n    0,\n    1,\n]"))
    _csv(data, shift=3)
    before = _snapshot(out)
    assert main(["run", "--resume", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"the data of task 'csv' (file {data}) changed since this run started" in err
    assert old in err and "Resuming would mix two data sets; nothing was run" in err
    assert _snapshot(out) == before


def test_a_run_interrupted_before_its_first_job_resumes(tmp_path, capsys) -> None:
    """An empty run directory (experiment.toml, no runs.jsonl) is a valid run: resume runs all of it."""
    out = tmp_path / "out"
    assert _run_xor(out, seeds=2) == 0
    for name in ("runs.jsonl", "runs.csv", "curves.csv", "report.md", "report.html"):
        (out / name).unlink()
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0
    assert len((out / "runs.jsonl").read_text().splitlines()) == 2


def test_report_rebuilds_the_csv_exports(tmp_path) -> None:
    out = tmp_path / "out"
    assert _run_xor(out, seeds=2) == 0
    (out / "runs.csv").write_text("truncated")
    (out / "curves.csv").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "runs.csv").read_text().count("\n") == 3 and (out / "curves.csv").exists()
