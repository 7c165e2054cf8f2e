"""The split and preprocessing shared by the built-in tasks (fitted on the training part only)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from mlpbench import Split, Task

# train / validation / test fractions
FRACTIONS = (0.6, 0.2, 0.2)
#: Feature preprocessing, fitted on the training part only: StandardScaler, MinMaxScaler (to [0, 1]), or none.
SCALERS = ("standard", "minmax", "none")


class ScaledTask(Task):
    """A built-in task whose features are scaled by its `scaler` parameter (``--task-param digits.scaler=minmax``)."""

    params: ClassVar[dict[str, Any]] = {"scaler": "standard"}

    def validate(self) -> None:
        if self.config["scaler"] not in SCALERS:
            raise ValueError(
                f"task {self.name}: scaler={self.config['scaler']!r}: allowed values are {', '.join(SCALERS)}"
            )

    def split(self, X: np.ndarray, y: np.ndarray, seed: int) -> Split:
        """The task's split of (X, y) for `seed`, preprocessed by its scaler."""
        return split_and_scale(X, y, seed, classification=self.kind != "regression", scaler=self.config["scaler"])


def split_and_scale(X: np.ndarray, y: np.ndarray, seed: int, classification: bool, scaler: str = "standard") -> Split:
    """Shuffle and split 60/20/20 (stratified for classification), then scale the features.

    Features are scaled with the training part's statistics only (mean and deviation for
    ``standard``, minimum and maximum for ``minmax``, as the digits tutorials do); regression
    targets are always standardised, so losses are in units of the training target's deviation.
    """
    # Imported here, not at module level: listing tasks and starting workers stays cheap.
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    strat = y if classification else None
    _, val_frac, test_frac = FRACTIONS
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=test_frac, random_state=seed, stratify=strat)
    strat = y_rest if classification else None
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_frac / (1 - test_frac), random_state=seed, stratify=strat
    )
    if scaler != "none":
        fitted = (StandardScaler() if scaler == "standard" else MinMaxScaler()).fit(X_train)
        X_train, X_val, X_test = (fitted.transform(a) for a in (X_train, X_val, X_test))
    if classification:
        y_train, y_val, y_test = (a.astype(np.int64) for a in (y_train, y_val, y_test))
    else:
        ys = [a.astype(np.float64).reshape(len(a), -1) for a in (y_train, y_val, y_test)]
        mean, std = ys[0].mean(axis=0), ys[0].std(axis=0)
        std[std == 0] = 1.0
        y_train, y_val, y_test = ((a - mean) / std for a in ys)
    return Split(X_train, y_train, X_val, y_val, X_test, y_test)
