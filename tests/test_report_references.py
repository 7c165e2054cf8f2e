"""Reference models in the reports: a table per task from references.json, medians over seeds, errors shown briefly.

One small real run (numpy on xor and diabetes, 2 seeds, 2 epochs) through the command line; the
variants (an error row, no references.json) are re-rendered from copies of its stored files.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlpbench.cli import main
from mlpbench.references import REFERENCES_FILE
from mlpbench.report import fmt_metric

METRIC = {"xor": "accuracy", "diabetes": "r2"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("refs") / "bench"
    args = ["run", "--backends", "numpy", "--tasks", "xor,diabetes", "--seeds", "2", "--epochs", "2"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    return out


def _copy(src: Path, dst: Path, references: list[dict] | None) -> Path:
    dst.mkdir(parents=True)
    for name in ("runs.jsonl", "env.json", "config.json"):
        shutil.copy(src / name, dst / name)
    if references is not None:
        (dst / REFERENCES_FILE).write_text(json.dumps(references), encoding="utf-8")
    return dst


def _section(md: str, heading: str) -> str:
    return md.split(heading, 1)[1].split("\n## ", 1)[0]


def _table(block: str) -> list[list[str]]:
    lines = [ln for ln in block.splitlines() if ln.startswith("| ")]
    rows = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines]
    return [rows[0]] + rows[2:]


def _expected(references: list[dict], task: str) -> list[list[str]]:
    """The rows the table must show, computed here from references.json: model, median (min–max), seeds."""
    metric = f"test_{METRIC[task]}"
    out: dict[str, list[float]] = {}
    for r in references:
        if r["task"] == task and "error" not in r:
            out.setdefault(r["model"], []).append(r[metric])
    rows = []
    for model, values in out.items():
        lo, hi = min(values), max(values)
        spread = f" ({fmt_metric(lo)}–{fmt_metric(hi)})" if lo != hi else ""
        rows.append([model, fmt_metric(float(np.median(values))) + spread, str(len(values))])
    return rows


def test_every_task_has_a_reference_table_of_medians_over_seeds(run_dir: Path) -> None:
    references = json.loads((run_dir / REFERENCES_FILE).read_text())
    assert {r["seed"] for r in references} == {0, 1}
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    for task, metric in METRIC.items():
        block = _section(md, f"## References: {task}")
        assert "not backends, not timed" in block
        header, *body = _table(block)
        assert header == ["reference model", f"test {metric}", "seeds"]
        expected = _expected(references, task)
        assert body == expected
        linear = "logistic regression" if task == "xor" else "ridge regression"
        assert [r[0] for r in body] == [linear, "HistGradientBoosting"]
        assert f"the backends' best median test {metric}" in block.replace("\\", "")
    # The references sit right after their task's own section, never inside its table.
    assert md.index("## Task: xor") < md.index("## References: xor") < md.index("## Task: diabetes")
    task_block = _section(md, "## Task: xor")
    assert "HistGradientBoosting" not in task_block


def test_html_shows_the_same_reference_rows(run_dir: Path) -> None:
    references = json.loads((run_dir / REFERENCES_FILE).read_text())
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    for task in METRIC:
        section = page.split(f'<section id="references-{task}">', 1)[1].split("</section>", 1)[0]
        assert "not backends, not timed" in section
        cells = re.findall(r"<td class=\"[^\"]*\">([^<]*)</td>", section)
        assert cells == [c for row in _expected(references, task) for c in row]
        assert "best" not in re.findall(r'class="([^"]*)"', section)  # references are never ranked


def test_error_rows_are_shown_briefly_beside_the_scored_ones(run_dir: Path, tmp_path: Path) -> None:
    references = json.loads((run_dir / REFERENCES_FILE).read_text())
    long = "ValueError: " + "x" * 500
    broken = [
        *references,
        {"task": "xor", "task_params": {}, "seed": 7, "error": long},
        {"task": "xor", "task_params": {}, "seed": 8, "error": long},
    ]
    d = _copy(run_dir, tmp_path / "broken", broken)
    assert main(["report", str(d)]) == 0
    block = _section((d / "report.md").read_text(encoding="utf-8"), "## References: xor")
    _, *body = _table(block)
    assert body == _expected(references, "xor")  # the scored rows are unchanged
    line = next(ln for ln in block.splitlines() if ln.startswith("Not scored: "))
    assert line.startswith("Not scored: seeds 7, 8 (ValueError: xxx") and line.endswith("…)")
    assert len(line) < 200


def test_a_task_whose_references_all_failed_says_so(run_dir: Path, tmp_path: Path) -> None:
    failed = [{"task": "diabetes", "task_params": {}, "seed": 0, "error": "ImportError: no sklearn"}]
    d = _copy(run_dir, tmp_path / "failed", failed)
    assert main(["report", str(d)]) == 0
    md = (d / "report.md").read_text(encoding="utf-8")
    assert "## References: xor" not in md  # no row for the task: no section
    block = _section(md, "## References: diabetes")
    assert "Not scored: seed 0 (ImportError: no sklearn)" in block
    assert not [ln for ln in block.splitlines() if ln.startswith("| ")]


def test_no_reference_table_without_references_json(run_dir: Path, tmp_path: Path) -> None:
    """What a run with --no-references leaves: no references.json, so no reference section."""
    d = _copy(run_dir, tmp_path / "none", None)
    assert main(["report", str(d)]) == 0
    assert "## References" not in (d / "report.md").read_text(encoding="utf-8")
    assert 'id="references-' not in (d / "report.html").read_text(encoding="utf-8")
