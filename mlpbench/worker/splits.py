"""The data splits a run's workers share, so that no backend pays for loading data in its time or memory."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from ..task import Split, Task

SPLIT_CACHE_ENV = "MLPBENCH_SPLIT_CACHE"
_SPLIT_CACHE_MAX_BYTES = 64 * 2**20  # larger splits (the scaling task) are rebuilt by each worker


class SplitCache:
    """Splits per (task, params, seed): in memory, and shared between a run's workers on disk.

    The first worker that needs a split builds it and saves it as .npz in the run's cache
    directory; the other workers read it instead of loading the data set again (and never
    import scikit-learn for it).
    """

    def __init__(self, directory: str | None = None) -> None:
        self._cache: dict[str, Split] = {}
        self.directory = directory

    def get(self, task: Task, seed: int) -> Split:
        key = self._key(task, seed)
        if key not in self._cache:
            self._cache[key] = self._from_disk(key) or self._build(key, task, seed)
        return self._cache[key]

    def share(self, task: Task, seed: int) -> Split | None:
        """Build the split and save it for the workers, without keeping it in memory here.

        Returns the split when this call built it, None when it was already shared.
        """
        key = self._key(task, seed)
        path = self._path(key)
        if path and not os.path.exists(path):
            return self._build(key, task, seed)
        return None

    @staticmethod
    def _key(task: Task, seed: int) -> str:
        return json.dumps([task.name, task.config, seed], sort_keys=True, default=str)

    def _path(self, key: str) -> str | None:
        if not self.directory:
            return None
        return os.path.join(self.directory, hashlib.sha1(key.encode()).hexdigest() + ".npz")

    def _from_disk(self, key: str) -> Split | None:
        path = self._path(key)
        if not path or not os.path.exists(path):
            return None
        with np.load(path, allow_pickle=False) as data:
            return Split(**{name: data[name] for name in data.files})

    def _build(self, key: str, task: Task, seed: int) -> Split:
        split = task.load(seed)
        path = self._path(key)
        arrays = vars(split)
        if path and sum(a.nbytes for a in arrays.values()) <= _SPLIT_CACHE_MAX_BYTES:
            tmp = f"{path}.{os.getpid()}.tmp.npz"
            np.savez(tmp, **arrays)
            os.replace(tmp, path)  # atomic: another worker never reads half a file
        return split
