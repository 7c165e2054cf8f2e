"""Bad input stops `run` with one clear message and exit status 2, before any work starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlpbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASE = ["run", "--backends", "numpy", "--tasks", "xor", "--seeds", "1", "--epochs", "2", "--no-progress"]


def _usage_error(tmp_path: Path, capsys, *argv: str) -> str:
    """Run with `argv` added; assert exit 2 and that nothing was created; return the message."""
    out = tmp_path / "res"
    assert main([*BASE, "--out", str(out), *argv]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert err.startswith("run_bench.py run: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backends", "nope"], "unknown backend 'nope'; valid backends: "),
        (["--tasks", "mnist"], "unknown task 'mnist'; valid tasks: "),
        (["--backends", "numpy[bogus=1]"], "backend 'numpy' has no option bogus; valid options: none"),
        (["--backends", "numpy[bogus]"], "backend option 'bogus' in 'numpy[bogus]': expected key=value"),
        (["--set", "bogus=1"], "unknown ModelSpec field 'bogus'; valid fields: "),
        (
            ["--tasks", "moons", "--task-param", "moons.bogus=1"],
            "task 'moons' has no parameter bogus; valid: n_samples, noise",
        ),
        (["--task-param", "moons.noise=0.3"], "--task-param moons.noise: task 'moons' is not in --tasks (xor)"),
        (["--task-param", "noise=0.3"], "expected TASK.KEY=VALUE"),
    ],
)
def test_unknown_names_list_the_valid_ones(tmp_path, capsys, argv, message) -> None:
    err = _usage_error(tmp_path, capsys, *argv)
    assert message in err
    if "valid backends" in message:
        assert "numpy" in err.split("valid backends: ")[1]
    if "valid tasks" in message:
        assert "digits, " in err and "xor" in err
    if "valid fields" in message:
        assert "lr" in err and "batch_size" in err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("lr=-1", "ModelSpec.lr = -1.0: must be a number in (0, inf)"),
        ("lr=abc", "ModelSpec.lr = 'abc': expected a number"),
        ("activation=foo", "ModelSpec.activation = 'foo': allowed values are sigmoid, tanh, relu, leaky_relu, elu"),
        ("batch_size=0", "ModelSpec.batch_size = 0: must be an integer >= 1"),
        ("dropout=1.5", "ModelSpec.dropout = 1.5: must be a number in [0, 1)"),
        ("hidden=64,abc", "ModelSpec.hidden = '64,abc': expected comma-separated integers like 64,32"),
        ("optimizer=lbfgs", "ModelSpec.optimizer = 'lbfgs': allowed values are sgd, momentum, nesterov, adam"),
    ],
)
def test_invalid_spec_values(tmp_path, capsys, setting, message) -> None:
    assert message in _usage_error(tmp_path, capsys, "--set", setting)


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ("0", "expected a count like 3"),
        ("-2", "expected a count like 3"),
        ("abc", "expected a count like 3"),
        ("1,1", "seeds must be distinct non-negative integers"),
        ("1,-3", "seeds must be distinct non-negative"),
    ],
)
def test_bad_seeds(tmp_path, capsys, seeds, message) -> None:
    err = _usage_error(tmp_path, capsys, "--seeds", seeds)
    assert f"--seeds {seeds!r}" in err and message in err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "'abc' is not a duration; use e.g. 90s, 10m or 1h"),
        ("0", "a timeout must be a positive, finite"),
        ("-3s", "a timeout must be a positive"),
        ("nan", "finite duration"),
        ("inf", "finite duration"),
    ],
)
def test_bad_timeout(tmp_path, capsys, value, message) -> None:
    out = tmp_path / "res"
    with pytest.raises(SystemExit) as exc:
        main([*BASE, "--out", str(out), f"--timeout={value}"])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            [*BASE, "--jobz", "2"],
            ["run_bench.py run: error: unrecognized arguments: --jobz 2", "--jobz: did you mean --jobs?"],
        ),
        (["compare", "a", "b", "--fail-slowr=10"], ["usage: run_bench.py compare", "did you mean --fail-slower?"]),
        ([*BASE, "--experiment", "exp.toml"], ["unrecognized arguments: --experiment exp.toml"]),
    ],
)
def test_an_unknown_option_is_named_by_its_command_with_the_nearest_ones(tmp_path, capsys, argv, said) -> None:
    """The command's own usage and help pointer, not the top-level ones, and the option meant if it is close."""
    out = tmp_path / "res"
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert all(s in err for s in said), err
    command = argv[0]
    assert f"usage: run_bench.py {command} " in err and f"see run_bench.py {command} --help" in err
    assert not out.exists()


def test_output_directory_that_cannot_be_written(tmp_path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    assert main([*BASE, "--out", str(blocker / "results")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write to output directory {blocker / 'results'}" in err
    assert blocker.read_text() == "not a directory"


def test_output_directory_with_results_is_refused_and_left_untouched(tmp_path, capsys) -> None:
    out = tmp_path / "res"
    out.mkdir()
    (out / "runs.jsonl").write_text('{"id": "numpy/xor/seed=0/x", "status": "ok"}\n')
    (out / "config.json").write_text('{"tasks": ["xor"]}')
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert main([*BASE, "--out", str(out)]) == 2
    assert f"{out} already holds results; use --resume {out} to continue it" in capsys.readouterr().err
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_resume_needs_results_and_excludes_another_out(tmp_path, capsys) -> None:
    assert main(["run", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no results there to resume" in capsys.readouterr().err
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "runs.jsonl").write_text("")
    assert main([*BASE, "--resume", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 2
    assert "give either --out DIR or --resume DIR, not both" in capsys.readouterr().err


def test_plugin_file_that_does_not_exist(tmp_path, capsys) -> None:
    missing = tmp_path / "nope.py"
    assert f"--plugin {missing}: no such file" in _usage_error(tmp_path, capsys, "--plugin", str(missing))


def test_plugin_file_that_defines_nothing(tmp_path, capsys) -> None:
    empty = tmp_path / "empty_plugin.py"
    empty.write_text("import numpy\n\nclass NotABackend:\n    name = 'x'\n")
    err = _usage_error(tmp_path, capsys, "--plugin", str(empty))
    assert f"--plugin {empty}: defines no Backend or Task subclass" in err


def test_plugin_file_that_fails_to_import(tmp_path, capsys) -> None:
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("import not_a_real_module_either\n")
    err = _usage_error(tmp_path, capsys, "--plugin", str(broken))
    assert f"--plugin {broken}: importing it failed: ModuleNotFoundError" in err
    assert "not_a_real_module_either" in err


def test_plugin_file_that_is_not_python(tmp_path, capsys) -> None:
    text = tmp_path / "plugin.txt"
    text.write_text("hello")
    assert "expected a Python file ending in .py" in _usage_error(tmp_path, capsys, "--plugin", str(text))


def test_csv_options_without_the_csv_task(tmp_path, capsys) -> None:
    err = _usage_error(tmp_path, capsys, "--csv-path", str(tmp_path / "d.csv"))
    assert "--csv-path, --csv-target and --csv-kind set the csv task: add csv to --tasks" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backends", "nope"], "run_bench.py run: error: unknown backend 'nope'"),
        (["--timeout", "soon"], "argument --timeout: 'soon' is not a duration"),
    ],
)
def test_the_script_exits_with_status_2(tmp_path, argv, message) -> None:
    """The real script, as a user runs it: status 2 and the message on stderr."""
    out = tmp_path / "res"
    proc = subprocess.run(
        [sys.executable, "run_bench.py", *BASE, "--out", str(out), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
