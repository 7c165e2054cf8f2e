"""The reports: a real small run through the command line, then what a reader of report.md / report.html sees."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlpbench import load_results
from mlpbench.cli import main
from mlpbench.report import Column, best_backends, fmt_g, fmt_metric, md_text, task_columns
from mlpbench.store import ResultsStore
from mlpbench.summary import summary_frame

TASKS = ("xor", "diabetes")
# A second backend name for the reference implementation, loaded as a --plugin file: every table
# then has two rows to rank, without depending on which optional frameworks are installed.
TWIN_PLUGIN = '''
from mlpbench.backends.numpy_mlp import NumpyMLP


class NumpyTwin(NumpyMLP):
    """The reference NumPy backend under a second name."""

    name = "numpy_twin"
'''
HOSTILE = "<script>alert('pwned')</script>"


def _run(out: Path, plugin: Path, *extra: str) -> int:
    args = ["--backends", "numpy,numpy_twin", "--plugin", str(plugin), "--tasks", ",".join(TASKS)]
    return main(["run", *args, "--seeds", "2", "--epochs", "6", "--out", str(out), "--no-progress", *extra])


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "twin.py"
    path.write_text(TWIN_PLUGIN)
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, plugin: Path) -> Path:
    out = tmp_path_factory.mktemp("run") / "bench"
    assert _run(out, plugin) == 0
    return out


def _copy_stored_results(src: Path, dst: Path) -> Path:
    """Only what a run stores: no report, no figure, no CSV export, no log."""
    dst.mkdir(parents=True)
    for name in ("runs.jsonl", "env.json", "config.json", "references.json"):
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)
    return dst


def _md_tables(md: str) -> dict[str, list[list[str]]]:
    """Each task's table in report.md as rows of cells (header row first)."""
    tables = {}
    for block in re.split(r"^## Task: ", md, flags=re.M)[1:]:
        block = block.split("\n## ", 1)[0]  # the task's own section: references and modes follow in their own
        name = block.splitlines()[0].strip()
        lines = [ln for ln in block.splitlines() if ln.startswith("| ")]
        rows = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines]
        tables[name] = [rows[0]] + rows[2:]  # drop the alignment row
    return tables


def _main_value(cell: str) -> float | None:
    """The number shown in a cell, without bold marks and the small print in parentheses."""
    text = re.sub(r"\s*\(.*\)$", "", cell).replace("**", "").replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------- every run writes the reports
def test_every_run_ends_with_both_reports_and_figures(run_dir: Path) -> None:
    assert (run_dir / "report.md").stat().st_size > 0
    assert (run_dir / "report.html").stat().st_size > 0
    pngs = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    for task in TASKS:
        assert f"{task}-loss.png" in pngs and f"{task}-time.png" in pngs and f"{task}-speed.png" in pngs
    assert "xor-boundary.png" in pngs  # two features: the decision boundary
    assert "diabetes-boundary.png" not in pngs  # regression on ten features: none


def test_worker_stores_a_decision_grid_only_for_two_feature_classification(run_dir: Path) -> None:
    records = ResultsStore(run_dir).records()
    xor = [r for r in records if r["task"] == "xor"]
    assert xor and all(r["status"] == "ok" for r in xor)
    for r in xor:
        grid = r["grid"]
        assert len(grid["x"]) == len(grid["y"]) == 60
        assert len(grid["proba"]) == 60 and all(len(row) == 60 for row in grid["proba"])
        assert all(0.0 <= p <= 1.0 for row in grid["proba"] for p in row)
        assert len(grid["points"]) == len(grid["labels"]) == 4
    assert not any("grid" in r for r in records if r["task"] == "diabetes")
    assert "grid" not in load_results(run_dir).runs.columns  # a big raw field, kept out of the tables


# ---------------------------------------------------------------------------- report.html
def test_html_is_one_self_contained_file(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href|action|data)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", page, re.I)
    assert "@import" not in page
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for s in sources:
        assert base64.b64decode(s.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert len(re.findall(r"<link\b", page)) == 0


def test_html_has_a_section_with_table_and_figures_per_task(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    for task in TASKS:
        section = page.split(f'<section id="task-{task}">', 1)[1].split("</section>", 1)[0]
        assert section.count('src="data:image/png;base64,') >= 3
        assert "<table>" in section and ">numpy</b>" in section and ">numpy_twin</b>" in section
    xor = page.split('<section id="task-xor">', 1)[1].split("</section>", 1)[0]
    assert 'alt="xor: Decision boundary"' in xor


def test_header_says_what_ran_when_and_where(run_dir: Path) -> None:
    env = json.loads((run_dir / "env.json").read_text())
    md = (run_dir / "report.md").read_text()
    page = (run_dir / "report.html").read_text()
    assert md_text(env["cpu"]) in md and html.escape(env["cpu"]) in page
    # the peak: measured before and after the jobs, the better one shown
    assert env["matmul_gflops"] == max(env["matmul_gflops_start"], env["matmul_gflops_end"]) > 0
    for text in (md, page):
        assert f"{env['matmul_gflops']:g} GFLOP/s" in text and "best of 5 before and a best of 5 after" in text
        assert "numpy " + env["versions"]["numpy"] in text  # the backend's library version
        assert str(env["git_commit"]).split("+")[0] in text
    assert (
        "| **seeds** | 0, 1 |" in md and "| **epochs** | 6 |" in md and "| **backends** | numpy, numpy\\_twin |" in md
    )
    assert "OMP\\_NUM\\_THREADS=1" in md and "OMP_NUM_THREADS=1" in page


def test_machine_section_lists_every_library_the_backends_required(run_dir: Path, tmp_path: Path) -> None:
    """A plugin's libraries appear even when env.json does not track them: the workers' versions are used."""
    d = _copy_stored_results(run_dir, tmp_path / "bench")
    lines = (d / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    for r in records:
        if r["backend"] == "numpy_twin":  # as a plugin that also requires an untracked library would report
            r["versions"] = {**r["versions"], "flaxish": "0.8.1"}
    (d / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert main(["report", str(d)]) == 0
    numpy_version = records[0]["versions"]["numpy"]
    md = (d / "report.md").read_text(encoding="utf-8")
    machine = md.split("## Machine", 1)[1].split("## ", 1)[0]
    expected = f"flaxish 0.8.1 (numpy\\_twin); numpy {numpy_version} (numpy, numpy\\_twin)"
    assert f"| **libraries the backends required** | {expected} |" in machine
    page = (d / "report.html").read_text(encoding="utf-8")
    machine = page.split('<section id="machine">', 1)[1].split("</section>", 1)[0]
    assert f"flaxish 0.8.1 (numpy_twin); numpy {numpy_version} (numpy, numpy_twin)" in machine
    assert f"numpy {numpy_version}, flaxish 0.8.1" in md.split("## Machine", 1)[0]  # the backend's own row


# ---------------------------------------------------------------------------- report.md
def test_markdown_links_every_figure_relatively_to_an_existing_png(run_dir: Path) -> None:
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 2 * len(TASKS)
    for link in links:
        assert not link.startswith(("/", "http")), link
        target = run_dir / link
        assert target.is_file() and target.read_bytes()[:4] == b"\x89PNG"
    for task in TASKS:
        block = md.split(f"## Task: {task}", 1)[1].split("## ", 1)[0]
        assert f"](figures/{task}-loss.png)" in block


def _interval(cell: str) -> tuple[float, float] | None:
    """The confidence interval in a cell's small print, ``(CI 0.174–0.192 · CV 39%)``."""
    m = re.search(r"CI ([0-9.,]+)–([0-9.,]+)", cell)
    return (float(m.group(1).replace(",", "")), float(m.group(2).replace(",", ""))) if m else None


def test_best_values_are_bold_in_markdown_and_html(run_dir: Path) -> None:
    """In every ranked column, exactly the rows showing the best number are bold; epoch ms ties statistically."""
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    direction = {
        "test accuracy": max,
        "test r2": max,
        "final train loss": min,
        "final val loss": min,
        "epoch ms": min,
        "train time s": min,
        "predict samples/s": max,
        "peak memory MB": min,
    }
    tables = _md_tables(md)
    assert set(tables) == set(TASKS)
    checked = 0
    for task, rows in tables.items():
        header, body = rows[0], rows[1:]
        assert [r[0] for r in body] == ["numpy", "numpy\\_twin"]
        for j, name in enumerate(header):
            if name not in direction:
                continue
            values = [_main_value(r[j]) for r in body]
            bold = [r[j].startswith("**") for r in body]
            best = direction[name](v for v in values if v is not None)
            expected = [v == best for v in values]
            if name == "epoch ms":  # the fastest, and every backend whose interval overlaps the fastest one's
                lead = _interval(body[values.index(best)][j])
                spans = [_interval(r[j]) for r in body]
                assert lead is not None and all(spans), (task, [r[j] for r in body])
                expected = [e or (s[0] <= lead[1] and lead[0] <= s[1]) for e, s in zip(expected, spans, strict=True)]
            assert bold == expected, (task, name, [r[j] for r in body])
            checked += 1
    assert checked == 2 * len(direction) - 2  # each task has one of the two metrics
    n_bold = sum(c.startswith("**") for rows in tables.values() for r in rows[1:] for c in r[1:])
    assert n_bold >= checked  # at least one best per ranked column
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert page.count('class="num best"') == n_bold


def test_best_backends_respects_direction_ties_and_reached_targets() -> None:
    rows = [
        {"backend": "a", "metric": 0.91, "epoch_ms": 2.0, "ttt_s": 0.5, "ttt_reached": 3, "n_ok": 3},
        {"backend": "b", "metric": 0.95, "epoch_ms": 1.0, "ttt_s": 0.1, "ttt_reached": 1, "n_ok": 3},
        {"backend": "c", "metric": 0.95, "epoch_ms": None, "ttt_s": None, "ttt_reached": 0, "n_ok": 3},
    ]
    assert best_backends(rows, Column("metric", "test accuracy", "max", fmt_metric)) == {"b", "c"}
    assert best_backends(rows, Column("epoch_ms", "epoch ms", "min", fmt_g)) == {"b"}
    # b is faster to its target but reached it on one seed of three; a reached it on every seed.
    assert best_backends(rows, Column("ttt_s", "time to target s", "min", fmt_g)) == {"a"}
    assert best_backends(rows[:1], Column("epoch_ms", "epoch ms", "min", fmt_g)) == set()  # nothing to compare
    assert best_backends(rows, Column("jobs", "jobs", None, str)) == set()


def test_epoch_time_ties_are_statistical_not_by_rounding() -> None:
    """The lowest median is best, and so is every backend whose interval overlaps its interval."""
    epoch = next(c for c in task_columns("accuracy", None) if c.key == "epoch_ms")
    timed = [
        {"backend": "a", "epoch_ms": 1.00, "epoch_lo_ms": 0.90, "epoch_hi_ms": 1.20},
        {"backend": "b", "epoch_ms": 1.30, "epoch_lo_ms": 1.10, "epoch_hi_ms": 1.50},  # overlaps a: tied
        {"backend": "c", "epoch_ms": 1.01, "epoch_lo_ms": 1.005, "epoch_hi_ms": 1.02},  # inside a's interval
        {"backend": "d", "epoch_ms": 2.00, "epoch_lo_ms": 1.80, "epoch_hi_ms": 2.20},  # clearly slower
    ]
    assert best_backends(timed, epoch) == {"a", "b", "c"}
    # Without intervals (too few epochs), ties are as displayed.
    bare = [{"backend": r["backend"], "epoch_ms": r["epoch_ms"]} for r in timed]
    assert best_backends(bare, epoch) == {"a"}
    assert best_backends([{**timed[0], "epoch_ms": 1.001}, timed[3], bare[2]], epoch) == {"a"}


# ---------------------------------------------------------------------------- failures, escaping, parity
def test_failed_jobs_are_listed_with_their_reason_and_every_string_is_escaped(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _copy_stored_results(run_dir, tmp_path / "bench")
    bad = {
        "id": "x/xor/seed=0",
        "backend": HOSTILE,
        "backend_name": "evil",
        "backend_options": {"k": HOSTILE},
        "task": "xor",
        "seed": 0,
        "status": "error",
        "error": f"ValueError in train_epoch: {HOSTILE} | & done",
        "traceback": f"Traceback ...\nValueError: {HOSTILE}",
    }
    diverged = {
        "id": "n/diabetes/seed=1",
        "backend": "numpy",
        "task": "diabetes",
        "seed": 1,
        "status": "diverged",
        "error": "non-finite training loss at epoch 3 (train_epoch)",
    }
    ResultsStore(d).append(bad)
    ResultsStore(d).append(diverged)
    assert main(["report", str(d)]) == 0
    assert "Report:" in capsys.readouterr().out

    page = (d / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert page.count("<script") == 1  # the report's own image check, allowed by hash in the page's CSP
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    problems = page.split('<section id="problems">', 1)[1].split("</section>", 1)[0]
    assert "ValueError in train_epoch:" in problems and "non-finite training loss at epoch 3" in problems
    assert "s-error" in problems and "s-diverged" in problems and "<details>" in problems

    md = (d / "report.md").read_text(encoding="utf-8")
    assert "<script>" not in md
    failed = md.split("## Jobs that did not finish", 1)[1]
    assert "&lt;script&gt;" in failed and "\\| &amp; done" in failed  # a pipe cannot break the table
    assert "| numpy | diabetes | 1 | diverged | non-finite training loss at epoch 3 (train\\_epoch) |" in failed
    # The failed job counts in the xor table's jobs column of its own (hostile) backend row.
    assert "1 error" in md.split("## Task: xor", 1)[1].split("## Task:", 1)[0]


def test_parity_table_when_parity_json_is_present(run_dir: Path, tmp_path: Path) -> None:
    d = _copy_stored_results(run_dir, tmp_path / "bench")
    (d / "parity.json").write_text(
        json.dumps(
            [
                {
                    "backend": "torch",
                    "task": "xor",
                    "optimizer": "adam",
                    "max_rel_loss_diff": 3.2e-7,
                    "max_rel_weight_diff": 1.1e-6,
                    "target": 1e-5,
                    "within_target": True,
                },
                {
                    "backend": "sklearn",
                    "task": "xor",
                    "optimizer": "sgd",
                    "max_rel_loss_diff": 0.02,
                    "max_rel_weight_diff": 0.05,
                    "target": 1e-5,
                    "within_target": False,
                    "note": f"alpha scaled {HOSTILE}",
                },
            ]
        )
    )
    assert main(["report", str(d)]) == 0
    md = (d / "report.md").read_text()
    section = md.split("## Parity between backends", 1)[1].split("## ", 1)[0]
    assert "| torch | xor | adam | – | 3.20e-07 | 1.10e-06 | 1.00e-05 | yes | – |" in section
    assert "| sklearn | xor | sgd | – | 0.02 | 0.05 | 1.00e-05 | NO | alpha scaled &lt;script&gt;" in section
    page = (d / "report.html").read_text()
    assert '<span class="no">NO</span>' in page and "<script>alert" not in page


def test_no_parity_section_without_parity_json(run_dir: Path) -> None:
    assert "Parity" not in (run_dir / "report.md").read_text()


# ---------------------------------------------------------------------------- the report command
def test_report_command_regenerates_from_stored_results_alone(run_dir: Path, tmp_path: Path) -> None:
    d = _copy_stored_results(run_dir, tmp_path / "bench")
    assert main(["report", str(d)]) == 0
    assert sorted(p.name for p in (d / "figures").glob("*.png")) == sorted(
        p.name for p in (run_dir / "figures").glob("*.png")
    )
    again = (d / "report.md").read_text().replace(md_text(d), "DIR").replace(str(d), "DIR")
    original = (run_dir / "report.md").read_text().replace(md_text(run_dir), "DIR").replace(str(run_dir), "DIR")
    assert again == original


def test_report_command_rejects_a_directory_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such results directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "not a results directory" in capsys.readouterr().err


def test_a_failing_report_warns_and_keeps_the_results(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    out.mkdir()
    (out / "figures").write_text("a file where the figures folder should go")  # the report cannot be written
    args = "run --backends numpy --tasks xor --seeds 1 --epochs 2 --no-progress".split()
    code = main([*args, "--out", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "warning: the report could not be written" in err and f"report {out}" in err
    assert not (out / "report.html").exists()
    runs = load_results(out).runs
    assert list(runs["status"]) == ["ok"] and (out / "runs.csv").exists()


# ---------------------------------------------------------------------------- machines
def test_records_from_two_machines_are_grouped_by_host(run_dir: Path, tmp_path: Path) -> None:
    """The run's records, and a copy of them from another machine: a machine table, tables split by host."""
    d = _copy_stored_results(run_dir, tmp_path / "two")
    env = json.loads((d / "env.json").read_text())
    records = ResultsStore(run_dir).records()
    here = records[0]["host"]
    for i, r in enumerate(records):
        r.update(concurrency=2, cores=[0, 1] if i % 2 else [2, 3])
    other = [
        {
            **r,
            "id": r["id"] + "@b",
            "host": "hostB",
            "cpu": "Other CPU",
            "matmul_gflops": 10.0,
            "cores_total": 8,
            "cores": None,
        }
        for r in records
    ]
    (d / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records + other), encoding="utf-8")
    assert main(["report", str(d)]) == 0
    md = (d / "report.md").read_text(encoding="utf-8")
    machine = md.split("## Machine", 1)[1].split("\n## ", 1)[0]
    assert "| **jobs at once** | 2 (jobs shared the machine) |" in machine
    assert "pinned to cores 2–3; 0–1 (one set per concurrent worker); 8 jobs not pinned" in machine
    assert "not comparable" in machine
    rows = [ln for ln in machine.splitlines() if ln.startswith(f"| {md_text(here)} |") or ln.startswith("| hostB |")]
    n = len(records)
    assert rows == [
        f"| {md_text(here)} | {md_text(records[0]['cpu'])} | {env['cores']} | {fmt_g(env['matmul_gflops'])} | {n} ok |",
        f"| hostB | Other CPU | 8 | 10 | {n} ok |",
    ]
    tables = _md_tables(md)
    for task, (header, *body) in tables.items():
        assert header[:2] == ["host", "backend"]
        hosts = [md_text(here)] * 2 + ["hostB"] * 2
        assert [(r[0], r[1]) for r in body] == list(zip(hosts, ["numpy", "numpy\\_twin"] * 2, strict=True))
        assert all(r[header.index("jobs")] == "2 ok" for r in body)
        col = header.index("epoch ms")
        for group in (body[:2], body[2:]):  # each machine's rows are ranked on their own
            assert any(r[col].startswith("**") for r in group), (task, [r[col] for r in body])
        gflops = header.index("train GFLOP/s")
        for mine, theirs in zip(body[:2], body[2:], strict=True):  # each share is of its own machine's peak
            pct = [float(re.search(r"\(([\d.e+-]+)% of peak\)", r[gflops])[1]) for r in (mine, theirs)]
            assert _main_value(mine[gflops]) == _main_value(theirs[gflops])  # the same records...
            assert pct[1] / pct[0] == pytest.approx(env["matmul_gflops"] / 10.0, rel=0.05)  # ...other peaks
    res = load_results(d)
    frame = summary_frame(res.runs, res.curves, res.config)
    assert list(frame.columns[:3]) == ["task", "host", "backend"] and len(frame) == 8
    page = (d / "report.html").read_text(encoding="utf-8")
    assert "Other CPU" in page.split('<section id="machine">', 1)[1].split("</section>", 1)[0]


# ---------------------------------------------------------------------------- figures drawn in parallel
def _figure_bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((d / "figures").glob("*.png"))}


def test_figures_drawn_by_a_pool_of_processes_are_those_drawn_one_by_one(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same report, byte for byte, in the same order, whether its figures come from 2 processes or from this one."""
    from mlpbench import painter

    pages = {}
    for processes in (2, 0):
        d = _copy_stored_results(run_dir, tmp_path / f"p{processes}" / "bench")
        monkeypatch.setattr(painter, "parallel_processes", lambda n=processes: n)
        assert main(["report", str(d)]) == 0
        pages[processes] = (
            _figure_bytes(d),
            (d / "report.md").read_text(encoding="utf-8").replace(md_text(d), "DIR").replace(str(d), "DIR"),
            (d / "report.html").read_text(encoding="utf-8").replace(str(d), "DIR"),
        )
    assert len(pages[0][0]) >= 2 * len(TASKS)
    assert pages[2] == pages[0]


def test_a_figure_that_fails_in_a_drawing_process_fails_the_report_as_it_would_here(tmp_path: Path) -> None:
    from mlpbench.painter import Painter
    from mlpbench.report import figures

    got: list = []
    with pytest.raises(AttributeError), Painter(2) as p:
        p.draw(figures.colours, ["numpy"], then=got.append)
        p.draw(figures.loss_curves, None, [], {}, "t", "loss", tmp_path / "x.png", then=got.append)  # no curves
    assert got == [{"numpy": figures.PALETTE[0]}]  # the figures asked for before it were delivered, in order


def _dies_in_a_drawing_process(path: Path) -> Path:
    """Draws nothing: in a pool's process it ends that process; here it returns `path`."""
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        os._exit(3)
    return path


def test_a_drawing_process_that_dies_costs_no_figure(tmp_path: Path) -> None:
    from mlpbench.painter import Painter

    got: list = []
    with Painter(2) as p:
        for i in range(4):
            p.draw(_dies_in_a_drawing_process, tmp_path / f"{i}.png", then=got.append)
    assert got == [tmp_path / f"{i}.png" for i in range(4)]


def test_figures_use_a_pool_only_under_the_command_line_and_a_main_module_that_can_be_imported() -> None:
    from mlpbench.painter import MAX_PROCESSES, command_line, parallel_processes

    cores = len(os.sched_getaffinity(0))
    assert parallel_processes() == 0  # a library call: this process's main module is the caller's
    with command_line():
        assert parallel_processes() == (min(cores, MAX_PROCESSES) if cores >= 2 else 0)
    assert parallel_processes() == 0
    code = (
        "from mlpbench.painter import command_line, parallel_processes\n"
        "with command_line():\n    print(parallel_processes())\n"
    )
    read_from_stdin = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True, check=True)
    assert read_from_stdin.stdout.strip() == "0"  # no file a drawing process could import


def test_a_script_without_a_main_guard_runs_once_when_mlpbench_run_writes_its_report(tmp_path: Path) -> None:
    """The report's figures are drawn in the script's own process: nothing imports (and so reruns) the script."""
    marker = tmp_path / "ran.txt"
    script = tmp_path / "bench.py"
    script.write_text(
        "import mlpbench\n"
        f"with open({str(marker)!r}, 'a') as f:\n    f.write('ran\\n')\n"
        "exp = mlpbench.Experiment(backends=['numpy'], tasks=['xor'], seeds=[0], overrides={'epochs': 3})\n"
        f"mlpbench.run(exp, out={str(tmp_path / 'out')!r})\n",
        encoding="utf-8",
    )
    subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=True)
    assert marker.read_text(encoding="utf-8") == "ran\n"
    assert sorted(p.name for p in (tmp_path / "out" / "figures").glob("*.png")) == [
        "xor-boundary.png",
        "xor-loss.png",
        "xor-speed.png",
        "xor-time.png",
    ]
