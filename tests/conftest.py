"""Shared fixtures: the registry and small helpers to build a NumPy backend on a task."""

from __future__ import annotations

import os
import tempfile

import pytest

from mlpbench.registry import discover

# The reference models' score cache of this test session only (workers and CLI subprocesses inherit it),
# so no test depends on what an earlier run left in the user's cache.
os.environ["MLPBENCH_CACHE"] = tempfile.mkdtemp(prefix="mlpbench-test-cache-")


@pytest.fixture(scope="session")
def registry():
    """Every registered backend and task (entry points of the installed distribution)."""
    return discover()
