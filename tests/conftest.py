"""Shared fixtures: the registry and small helpers to build a NumPy backend on a task."""

from __future__ import annotations

import pytest

from mlpbench.registry import discover


@pytest.fixture(scope="session")
def registry():
    """Every registered backend and task (entry points of the installed distribution)."""
    return discover()
