"""Two-dimensional toy tasks: XOR and the two moons."""

from __future__ import annotations

import numpy as np

from mlpbench import ModelSpec, Split, Task

from ._split import ScaledTask


class XOR(Task):
    """The four points of exclusive-or: the smallest problem a linear model cannot solve."""

    name = "xor"
    kind = "binary"
    target_metric = "accuracy"
    target = 1.0
    description = "4 points, 2 features, exclusive-or (train = validation = test)"

    def load(self, seed: int) -> Split:
        X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
        y = np.array([0, 1, 1, 0], dtype=np.int64)
        # Centred inputs make the problem well conditioned for every activation.
        X = (X - 0.5) * 2.0
        return Split(X, y, X.copy(), y.copy(), X.copy(), y.copy())

    def spec(self) -> ModelSpec:
        return ModelSpec(
            n_inputs=2,
            n_outputs=1,
            hidden=(8,),
            activation="tanh",
            loss="binary_cross_entropy",
            optimizer="adam",
            lr=0.05,
            batch_size=4,
            epochs=200,
        )


class Moons(ScaledTask):
    """Two interleaving half circles with Gaussian noise (scikit-learn's make_moons)."""

    name = "moons"
    kind = "binary"
    target_metric = "accuracy"
    target = 0.95
    params = {**ScaledTask.params, "n_samples": 1000, "noise": 0.2}
    description = "1000 points, 2 features, two noisy half moons"

    def load(self, seed: int) -> Split:
        from sklearn.datasets import make_moons

        X, y = make_moons(n_samples=int(self.config["n_samples"]), noise=float(self.config["noise"]), random_state=seed)
        return self.split(X, y, seed)

    def spec(self) -> ModelSpec:
        return ModelSpec(
            n_inputs=2,
            n_outputs=1,
            hidden=(32, 32),
            activation="relu",
            loss="binary_cross_entropy",
            optimizer="adam",
            lr=0.01,
            batch_size=32,
            epochs=40,
        )
