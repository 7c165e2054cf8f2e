"""Gridded runs in the reports: tables that never pool grid points, and a sweep section per gridded task.

One small real run (numpy and sklearn on digits, 2 epochs, hidden x batch_size) through the command line;
an ungridded copy is derived from its records.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from mlpbench import load_results
from mlpbench.cli import main
from mlpbench.report.grid import numeric_positions, ordered_values, value_text, without_option
from mlpbench.store import ResultsStore
from mlpbench.summary import summary_frame

HIDDEN, BATCH = ["16", "64"], ["32", "128"]
POINTS = [(h, b) for h in HIDDEN for b in BATCH]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "bench"
    args = ["run", "--backends", "numpy,sklearn", "--tasks", "digits", "--seeds", "2", "--epochs", "2"]
    grid = ["--grid", f"hidden={','.join(HIDDEN)}", "--grid", f"batch_size={','.join(BATCH)}"]
    assert main([*args, *grid, "--out", str(out), "--no-progress"]) == 0
    return out


def _section(md: str, heading: str) -> str:
    return md.split(heading, 1)[1].split("\n## ", 1)[0]


def _table(block: str) -> list[list[str]]:
    """The first Markdown table of a block: header row, then body rows (alignment row dropped)."""
    lines = [ln for ln in block.splitlines() if ln.startswith("| ")]
    rows = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines]
    return [rows[0]] + rows[2:]


def _fastest_from_records(path: Path) -> dict[tuple[str, str], str]:
    """Per grid point, the backend with the lowest median of the pooled steady-state epochs, from the tables."""
    results = load_results(path)
    runs, curves = results.runs, results.curves
    steady = curves[curves["epoch"] >= 2].merge(runs[["id", "grid_hidden", "grid_batch_size"]], on="id")
    medians = steady.groupby(["grid_hidden", "grid_batch_size", "backend"])["epoch_time_s"].median()
    out = {}
    for (h, b), per_backend in medians.groupby(level=[0, 1]):
        out[(value_text(h), value_text(b))] = per_backend.droplevel([0, 1]).idxmin()
    return out


def test_a_sweep_figure_per_setting_as_a_real_png(run_dir: Path) -> None:
    for setting in ("hidden", "batch_size"):
        png = run_dir / "figures" / f"digits-sweep-{setting}.png"
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, setting  # drawn, not an empty canvas
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    sweep = _section(md, "## Sweep: digits")
    assert "](figures/digits-sweep-hidden.png)" in sweep and "](figures/digits-sweep-batch_size.png)" in sweep
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    html_sweep = page.split('<section id="sweep-digits">', 1)[1].split("</section>", 1)[0]
    assert html_sweep.count('src="data:image/png;base64,') == 2


def test_sweep_table_has_one_row_per_grid_point_with_the_fastest_backend_from_the_records(run_dir: Path) -> None:
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    header, *body = _table(_section(md, "## Sweep: digits"))
    assert header[:2] == ["hidden", "batch\\_size"] and "fastest" in header and "best accuracy" in header
    assert [tuple(r[:2]) for r in body] == POINTS  # grid order, every point once
    fastest = _fastest_from_records(run_dir)
    col = header.index("fastest")
    for row in body:
        shown = row[col].split(" (tied")[0]  # overlapping intervals are named as ties after the fastest
        assert shown == fastest[(row[0], row[1])], row
        bold = [b for b in ("numpy", "sklearn") if row[header.index(f"{b} ms")].startswith("**")]
        assert shown in bold  # the fastest backend's time is bold at its point


def test_task_table_and_summary_never_pool_grid_points(run_dir: Path) -> None:
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    header, *body = _table(_section(md, "## Task: digits"))
    assert header[:3] == ["hidden", "batch\\_size", "backend"]
    assert [(r[0], r[1], r[2]) for r in body] == [(h, b, be) for h, b in POINTS for be in ("numpy", "sklearn")]
    assert all(r[header.index("jobs")] == "2 ok" for r in body)  # two seeds per row: one point, one backend
    results = load_results(run_dir)
    frame = summary_frame(results.runs, results.curves, results.config)
    assert list(frame.columns[:4]) == ["task", "hidden", "batch_size", "backend"]
    assert len(frame) == len(POINTS) * 2 and set(frame["jobs"]) == {"2 ok"}
    # Each row's epoch ms is its own point's: hidden=16, batch 128 against hidden=64, batch 32.
    runs, curves = results.runs, results.curves
    for _, row in frame.iterrows():
        ids = runs[
            (runs["backend"] == row["backend"])
            & (runs["grid_hidden"].map(value_text) == row["hidden"])
            & (runs["grid_batch_size"].map(value_text) == row["batch_size"])
        ]["id"]
        expected = curves[curves["id"].isin(ids) & (curves["epoch"] >= 2)]["epoch_time_s"].median()
        assert row["epoch ms"] == pytest.approx(1000 * expected)
    setup = _section(md, "## Task: digits").splitlines()[2]
    assert "swept: hidden, batch\\_size" in setup and "(swept)" in setup


def test_gridded_task_draws_losses_per_point_instead_of_pooled_figures(run_dir: Path) -> None:
    pngs = {p.name for p in (run_dir / "figures").glob("*.png")}
    assert "digits-points.png" in pngs
    assert not {"digits-loss.png", "digits-speed.png", "digits-time.png"} & pngs


def test_an_ungridded_run_has_no_sweep_section(run_dir: Path, tmp_path: Path) -> None:
    """One grid point's jobs, without their grid: the report of a plain run, as before."""
    plain = tmp_path / "plain"
    plain.mkdir()
    records = [r for r in ResultsStore(run_dir).records() if r["grid_point"] == {"hidden": "64", "batch_size": 32}]
    assert len(records) == 4
    for r in records:
        r["grid_point"] = {}
    (plain / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    config = json.loads((run_dir / "config.json").read_text())
    (plain / "config.json").write_text(json.dumps({**config, "grid": {}}))
    shutil.copy(run_dir / "env.json", plain / "env.json")
    assert main(["report", str(plain)]) == 0
    md = (plain / "report.md").read_text(encoding="utf-8")
    assert "## Sweep" not in md and "swept" not in md
    header, *body = _table(_section(md, "## Task: digits"))
    assert header[0] == "backend" and [r[0] for r in body] == ["numpy", "sklearn"]
    assert not list((plain / "figures").glob("*-sweep-*.png"))
    assert (plain / "figures" / "digits-loss.png").is_file()
    assert '<section id="sweep-' not in (plain / "report.html").read_text(encoding="utf-8")


def test_grid_values_are_placed_by_number_or_by_grid_order() -> None:
    assert numeric_positions(["16", "64", "256"]) == [16.0, 64.0, 256.0]  # one layer: its width
    assert numeric_positions(["64", "64x64"]) is None  # any deeper network: categories
    assert numeric_positions(["false", "true"]) is None
    config = {"grid": {"moons.noise": ["0.3", "0.1"], "hidden": ["64x64", "16"]}}
    assert ordered_values("moons.noise", [0.1, 0.3, 0.1], config) == ["0.3", "0.1"]  # "0.3" in the file is 0.3
    assert ordered_values("hidden", ["16", "64x64", "32"], config) == ["64x64", "16", "32"]
    assert value_text(16.0) == "16" and value_text(True) == "true" and value_text(float("nan")) == ""
    options = json.dumps({"compile": "true", "mode": "max"})
    assert without_option("torch[compile=true,mode=max]", "torch", options, "torch.compile") == "torch[mode=max]"
    assert without_option("numpy", "numpy", "{}", "torch.compile") == "numpy"


def test_sweep_rows_follow_the_records_not_a_rendering(run_dir: Path) -> None:
    """The sweep table's numbers are the task table's: both come from the same rows."""
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    t_header, *t_body = _table(_section(md, "## Task: digits"))
    s_header, *s_body = _table(_section(md, "## Sweep: digits"))
    epoch = t_header.index("epoch ms")
    for row in s_body:
        for backend in ("numpy", "sklearn"):
            task_row = next(r for r in t_body if (r[0], r[1], r[2]) == (row[0], row[1], backend))
            shown = re.sub(r"\s*\(.*\)$", "", task_row[epoch]).replace("**", "")
            assert row[s_header.index(f"{backend} ms")].replace("**", "") == shown
