"""Native vs controlled and early stopping in the reports.

One small real run (numpy and sklearn on diabetes, both modes, early stopping with patience 2) through
the command line; a derived copy of its controlled records, relabelled native with every epoch time
tripled, checks the ratio on numbers known in advance.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlpbench import load_results
from mlpbench.cli import main
from mlpbench.report import fmt_g
from mlpbench.store import ResultsStore
from mlpbench.summary import summary_frame

BACKENDS = ("numpy", "sklearn")
EPOCHS = 6


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("modes") / "bench"
    args = ["run", "--backends", ",".join(BACKENDS), "--tasks", "diabetes", "--seeds", "2", "--epochs", str(EPOCHS)]
    extra = ["--modes", "controlled,native", "--set", "patience=2", "--no-references"]
    assert main([*args, *extra, "--out", str(out), "--no-progress"]) == 0
    return out


def _section(md: str, heading: str) -> str:
    return md.split(heading, 1)[1].split("\n## ", 1)[0]


def _table(block: str) -> list[list[str]]:
    lines = [ln for ln in block.splitlines() if ln.startswith("| ")]
    rows = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines]
    return [rows[0]] + rows[2:]


def _glance(md: str) -> list[str]:
    return [ln[2:] for ln in _section(md, "## At a glance").splitlines() if ln.startswith("- ")]


def _epoch_ms(path: Path, backend: str, mode: str) -> float:
    """The median steady-state epoch (epochs 2..n of every ok seed, pooled), else the jobs' own epoch times."""
    res = load_results(path)
    runs = res.runs[(res.runs["backend"] == backend) & (res.runs["mode"] == mode) & (res.runs["status"] == "ok")]
    curves = res.curves[res.curves["id"].isin(runs["id"])].dropna(subset=["epoch_time_s"])
    steady = curves[curves["epoch"] >= 2]["epoch_time_s"]
    return 1000 * float(np.median(steady if len(steady) else runs["epoch_time_s"]))


def _ratio(cell: str) -> float:
    return float(cell.rstrip("×").replace(",", ""))


# ---------------------------------------------------------------------------- the task table never pools modes
def test_task_table_and_summary_keep_the_modes_apart(run_dir: Path) -> None:
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert not (run_dir / "references.json").exists() and "## References" not in md  # --no-references
    header, *body = _table(_section(md, "## Task: diabetes"))
    assert header[:2] == ["mode", "backend"]
    assert [(r[0], r[1]) for r in body] == [(m, b) for m in ("controlled", "native") for b in BACKENDS]
    assert all(r[header.index("jobs")] == "2 ok" for r in body)
    sk_native = body[3][header.index("epoch ms")]
    assert "whole call" in sk_native  # scikit-learn's native fit is timed as one call, and says so
    res = load_results(run_dir)
    frame = summary_frame(res.runs, res.curves, res.config)
    assert list(frame.columns[:3]) == ["task", "mode", "backend"] and len(frame) == 4


# ---------------------------------------------------------------------------- native vs controlled
def test_modes_table_ratio_is_the_ratio_of_the_medians(run_dir: Path) -> None:
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    block = _section(md, "## Native vs controlled: diabetes")
    header, *body = _table(block)
    assert header[:4] == ["backend", "controlled epoch ms", "native epoch ms", "native / controlled"]
    assert [r[0] for r in body] == list(BACKENDS)
    for row in body:
        controlled, native = (_epoch_ms(run_dir, row[0], m) for m in ("controlled", "native"))
        assert float(row[1].split(" ")[0]) == pytest.approx(controlled, rel=5e-3)
        assert float(row[2].split(" ")[0]) == pytest.approx(native, rel=5e-3)
        assert _ratio(row[3]) == pytest.approx(native / controlled, rel=5e-3)
        assert row[3] == f"{fmt_g(native / controlled)}×"
    assert body[1][2].endswith("(whole call)") and "CI" not in body[1][2]
    assert "CI" in body[0][2]  # per-epoch native timings keep their interval
    test_cols = [h for h in header if h.startswith(("controlled test", "native test"))]
    assert test_cols == ["controlled test r2", "native test r2"]
    png = run_dir / "figures" / "diabetes-modes.png"
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000
    assert "](figures/diabetes-modes.png)" in block
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    section = page.split('<section id="modes-diabetes">', 1)[1].split("</section>", 1)[0]
    assert "data:image/png;base64," in section and "whole call" in section


def test_at_a_glance_names_the_biggest_native_overhead(run_dir: Path) -> None:
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    ratios = {b: _epoch_ms(run_dir, b, "native") / _epoch_ms(run_dir, b, "controlled") for b in BACKENDS}
    worst = max(ratios, key=ratios.get)
    lines = _glance(md)
    if ratios[worst] >= 1.1:
        expected = f"{worst} native epochs are {fmt_g(ratios[worst])}× its controlled ones on diabetes"
    else:
        expected = f"native epochs are at most {fmt_g(ratios[worst])}× the controlled ones ({worst} on diabetes"
    assert any(ln.startswith(expected) for ln in lines), lines
    if worst == "sklearn":
        assert any("whole call" in ln for ln in lines)


def test_scaled_copy_gives_the_known_ratio(run_dir: Path, tmp_path: Path) -> None:
    """Controlled records relabelled native with every time tripled: the table must say 3×."""
    d = tmp_path / "scaled"
    d.mkdir()
    records = [r for r in ResultsStore(run_dir).records() if r["mode"] == "controlled"]
    copies = []
    for r in records:
        c = json.loads(json.dumps(r))
        c.update(mode="native", id=r["id"] + "-native")
        for key in ("epoch_time_s", "first_epoch_s", "train_time_s"):
            c[key] = 3 * r[key]
        for point in c["curve"]:
            point["epoch_time_s"] *= 3
        copies.append(c)
    (d / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records + copies), encoding="utf-8")
    for name in ("env.json", "config.json"):
        shutil.copy(run_dir / name, d / name)
    assert main(["report", str(d)]) == 0
    md = (d / "report.md").read_text(encoding="utf-8")
    _, *body = _table(_section(md, "## Native vs controlled: diabetes"))
    assert [r[3] for r in body] == ["3×", "3×"]
    assert any(ln.startswith("numpy native epochs are 3× its controlled ones on diabetes") for ln in _glance(md))


def test_a_run_in_one_mode_has_no_modes_section(run_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "one"
    d.mkdir()
    records = [r for r in ResultsStore(run_dir).records() if r["mode"] == "controlled"]
    (d / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert main(["report", str(d)]) == 0
    md = (d / "report.md").read_text(encoding="utf-8")
    assert "Native vs controlled" not in md and "native epochs" not in md
    assert not (d / "figures" / "diabetes-modes.png").exists()


# ---------------------------------------------------------------------------- early stopping
def _stopping_lines(md: str) -> dict[str, str]:
    block = _section(md, "## Task: diabetes")
    lines = block.split("Early stopping (patience 2", 1)[1].split("\n\n", 2)[1]
    out = {}
    for ln in lines.splitlines():
        m = re.match(r"- (\S+) \(mode=(\w+)\): (.*)$", ln)
        assert m, ln
        out[f"{m[2]}/{m[1]}"] = m[3]
    return out


def test_each_row_says_where_it_stopped_and_whose_rule_it_was(run_dir: Path) -> None:
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    lines = _stopping_lines(md)
    assert set(lines) == {f"{m}/{b}" for m in ("controlled", "native") for b in BACKENDS}
    records = [r for r in ResultsStore(run_dir).records() if r["status"] == "ok"]
    for key, text in lines.items():
        mode, backend = key.split("/")
        mine = [r for r in records if r["mode"] == mode and r["backend"] == backend]
        stopped = [r for r in mine if r["stopped_early"]]
        full = [r for r in mine if not r["stopped_early"]]
        if stopped:
            at = fmt_g(np.median([r["epochs_run"] for r in stopped]))
            best = fmt_g(np.median([r["best_epoch"] for r in stopped]))
            assert f"stopped early at epoch {at} (best {best}), {len(stopped)}/{len(mine)} seeds" in text
        if full:
            best = fmt_g(np.median([r["best_epoch"] for r in full]))
            assert f"ran all {EPOCHS} epochs (best {best}), {len(full)}/{len(mine)} seeds" in text
        whose = {r["early_stopping"] for r in mine}
        if mode == "native":
            assert text.endswith(f" · early stopping: {'; '.join(sorted(whose))}".replace("_", "\\_"))
        else:
            assert "early stopping:" not in text
    assert "sklearn early" in lines["native/sklearn"] and lines["native/numpy"].endswith("early stopping: runner")


def test_loss_figure_marks_the_stops(run_dir: Path) -> None:
    from mlpbench.report import early

    res = load_results(run_dir)
    native = res.runs[res.runs["mode"] == "native"]
    marks = early.marks(native)
    for b in BACKENDS:
        mine = native[native["backend"] == b]
        assert marks[b].best == pytest.approx(float(np.median(mine["best_epoch"])))
        stopped = mine[mine["stopped_early"].astype(bool)]
        expected = float(np.median(stopped["epochs_run"])) if len(stopped) else None
        assert marks[b].stopped == (pytest.approx(expected) if expected is not None else None)
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "a triangle marks each backend's median best epoch" in _section(md, "## Task: diabetes")
    assert (run_dir / "figures" / "diabetes-points.png").stat().st_size > 5000
