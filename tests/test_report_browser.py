"""report.html in a real headless Chromium, offline: it renders, and every embedded figure decodes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mlpbench.cli import main


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH or at /usr/bin/chromium (install it with `make chromium`)"
)


def _browser(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "bench"
    args = "run --backends numpy --tasks xor,diabetes --seeds 2 --epochs 5 --no-progress".split()
    assert main([*args, "--out", str(out)]) == 0
    return out / "report.html"


def test_every_figure_loads_in_the_browser(report: Path, tmp_path: Path) -> None:
    n_images = report.read_text(encoding="utf-8").count("<img ")
    assert n_images >= 7  # loss, time, speed for both tasks and xor's decision boundary
    # The page's own script counts decoded images into <body data-images-loaded="ok/total">.
    result = _browser(tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", report.as_uri())
    match = re.search(r'<body[^>]*data-images-loaded="(\d+)/(\d+)"', result.stdout)
    assert match, f"the page's image check did not run; chromium said: {result.stderr[-800:]}"
    assert match.group(1) == match.group(2) == str(n_images)


def test_screenshot_shows_a_rendered_page(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    result = _browser(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    assert shot.exists(), f"no screenshot; chromium said: {result.stderr[-800:]}"
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 20  # not a blank page
    colours = np.unique(pixels.reshape(-1, 3).astype(np.uint8), axis=0)
    assert len(colours) > 200  # text, tables, header gradient and figures, not a flat error page
    # The header band is the report's dark-blue banner, so the page's own CSS was applied.
    r, g, b = pixels[20:60, 20:400].mean(axis=(0, 1))
    assert b > 120 and b > r + 50
