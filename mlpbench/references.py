"""Reference models on the very same splits: is an MLP result good, or merely what every backend got?

A linear model (logistic or ridge regression) and a gradient-boosted tree ensemble
(scikit-learn's HistGradientBoosting), trained on each task's training part and scored by
the same metric functions as the backends, on the same test part. They are references,
not backends: they are not timed against the MLPs and never ranked with them.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from . import metrics
from .files import write_atomic
from .registry import Registry
from .task import Task

REFERENCES_FILE = "references.json"
#: Bump when the reference models or their settings change: cached scores of other versions are not reused.
VERSION = 1


def cache_dir() -> Path:
    """Where scores are kept between runs ($MLPBENCH_CACHE, else $XDG_CACHE_HOME/mlpbench, else ~/.cache/mlpbench)."""
    root = os.environ.get("MLPBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlpbench"
    )
    return Path(root) / "references"


def _models(kind: str, n_train: int) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    # Early stopping on an internal 10% split keeps the ensemble's cost to a few seconds on digits.
    boosting = {"random_state": 0, "early_stopping": n_train >= 100, "n_iter_no_change": 10}
    if kind == "regression":
        return {"ridge regression": Ridge(alpha=1.0), "HistGradientBoosting": HistGradientBoostingRegressor(**boosting)}
    return {
        "logistic regression": LogisticRegression(max_iter=2000),
        "HistGradientBoosting": HistGradientBoostingClassifier(**boosting),
    }


def reference_scores(task: Task, seed: int, fingerprint: str | None = None) -> list[dict[str, Any]]:
    """Each reference model's test metrics on `task`'s split for `seed` (one thread, like the jobs).

    With the split's data `fingerprint`, scores are cached on disk: the models are deterministic, so
    the same data, scikit-learn version and reference version give the same scores.
    """
    from threadpoolctl import threadpool_limits

    path = None
    if fingerprint:
        import sklearn

        path = cache_dir() / f"{task.kind}-{fingerprint}-sklearn{sklearn.__version__}-v{VERSION}.json"
        try:
            return [{**row, "seed": seed} for row in json.loads(path.read_text(encoding="utf-8"))]
        except (OSError, ValueError):
            pass
    with threadpool_limits(limits=1):
        rows = _scores(task, seed)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(rows))
        except OSError:
            pass  # a cache that cannot be written only costs time next run
    return rows


def _scores(task: Task, seed: int) -> list[dict[str, Any]]:
    split = task.load(seed)
    rows = []
    for name, model in _models(task.kind, len(split.X_train)).items():
        y_train = split.y_train.ravel() if task.kind == "regression" and split.y_train.shape[1] == 1 else split.y_train
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter of the linear models: the score says enough
            if task.kind == "regression" and getattr(y_train, "ndim", 1) > 1 and "Hist" in name:
                from sklearn.multioutput import MultiOutputRegressor

                model = MultiOutputRegressor(model)
            model.fit(split.X_train, y_train)
        if task.kind == "regression":
            p = model.predict(split.X_test).reshape(len(split.X_test), -1)
        else:
            p = model.predict_proba(split.X_test)
        scores = {f"test_{k}": v for k, v in metrics.evaluate(task.kind, split.y_test, p).items()}
        rows.append({"model": name, "seed": seed, **scores})
    return rows


def compute(registry: Registry, jobs: list[Any]) -> list[dict[str, Any]]:
    """Reference rows for every task, parameters and seed of the plan whose data can be had."""
    seen, rows = set(), []
    for job in jobs:
        key = json.dumps([job.task, job.task_params, job.seed], sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        try:
            task = registry.task(job.task)(**job.task_params)
            if task.unavailable() or not getattr(task, "references", True):
                continue
            for row in reference_scores(task, job.seed, job.data_fingerprint):
                rows.append({"task": job.task, "task_params": job.task_params, **row})
        except Exception as exc:  # noqa: BLE001 - a reference is an extra: it never stops or fails a run
            rows.append(
                {
                    "task": job.task,
                    "task_params": job.task_params,
                    "seed": job.seed,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
    return rows
