"""The package layout a user installs: one top-level name, and dependencies that point one way."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlpbench"


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved against its package)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    if package.endswith(".__init__"):
        package = package[: -len(".__init__")]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names.add(stem)
            names.update(f"{stem}.{a.name}" for a in node.names)
    return names


def test_no_library_module_imports_the_cli() -> None:
    """cli -> library -> contracts: a library module that imported the CLI would make the layers a knot."""
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "backends").rglob("*.py"), *(ROOT / "tasks").rglob("*.py")]:
        if (PACKAGE / "cli") in path.parents:
            continue
        if any(name == "mlpbench.cli" or name.startswith("mlpbench.cli.") for name in _imports(path)):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"these modules import mlpbench.cli: {offenders}"


def test_the_core_never_names_a_backend_or_task_module() -> None:
    """The core finds backends and tasks through the registry (entry points), never by module name."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for name in _imports(path):
            if name.startswith(("mlpbench.backends", "mlpbench.tasks", "backends", "tasks")):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, offenders


@pytest.mark.slow
def test_the_wheel_installs_only_mlpbench(tmp_path: Path) -> None:
    """`pip install .` must not put packages called `backends` or `tasks` into site-packages."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("mlpbench-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top = {n.split("/", 1)[0] for n in names}
        dist_info = {t for t in top if t.endswith(".dist-info")}
        entry_points = z.read(f"{min(dist_info)}/entry_points.txt").decode()
    assert top - dist_info == {"mlpbench"}, sorted(top)
    assert len(dist_info) == 1
    # The built-in plugins and the report's template travel inside the package.
    assert "mlpbench/backends/numpy_mlp.py" in names
    assert "mlpbench/tasks/toy.py" in names
    assert "numpy = mlpbench.backends.numpy_mlp:NumpyMLP" in entry_points
    assert "backends." not in entry_points.replace("mlpbench.backends.", "")
