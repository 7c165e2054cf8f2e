"""A synthetic task whose size is a parameter, for measuring how training time grows with work."""

from __future__ import annotations

import numpy as np

from mlpbench import ModelSpec, Split, Task
from mlpbench.flops import training_flops

N_CLASSES = 10
TEACHER_WIDTH = 32  # hidden units of the random network that labels the data
#: With ``epochs="auto"``, a size above this many FLOPs per epoch trains 2 epochs (one warm-up, one timed), not 3.
BIG_EPOCH_FLOPS = 1e11


class Scaling(Task):
    """Gaussian inputs labelled into 10 classes by a random teacher MLP; every size is a parameter.

    ``n_samples`` is the size of the training set (what one epoch processes); the
    validation and test sets have ``n_samples // 5`` samples each (at least 200).
    The student's hidden layers are ``depth`` layers of ``width`` units, so the work
    per epoch grows linearly with ``n_samples`` and quadratically with ``width``.
    ``epochs="auto"`` trains 3 epochs (the first is warm-up), 2 for the biggest sizes.
    """

    name = "scaling"
    kind = "multiclass"
    share_split = False  # up to 100,000 x 1024 floats: each worker regenerates it from the seed
    references = False  # a synthetic timing task: reference models on it would only cost time
    target_metric = "accuracy"
    target = 0.5
    params = {"n_samples": 10000, "n_features": 64, "width": 256, "depth": 2, "epochs": "auto", "batch_size": 512}
    description = "synthetic: Gaussian inputs, 10 classes from a random teacher network; size set by parameters"

    def _int(self, key: str) -> int:
        """A parameter as a whole number >= 1 ("100000" and "1e5" both work on the command line)."""
        value = self.config[key]
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not (number >= 1 and number.is_integer()):
            raise ValueError(f"task scaling: {key}={value!r} must be a whole number >= 1")
        return int(number)

    def validate(self) -> None:
        for key in self.params:
            if not (key == "epochs" and self.config[key] == "auto"):
                self._int(key)

    def load(self, seed: int) -> Split:
        n_train, n_features = self._int("n_samples"), self._int("n_features")
        n_eval = max(200, n_train // 5)
        rng = np.random.default_rng([seed, 7])
        # The teacher: features -> tanh(32) -> 10 logits; a label is the logit's argmax.
        # Its weights depend on the seed and n_features only, so every size of the
        # task shares one labelling rule.
        teacher = np.random.default_rng([seed, 7, n_features])
        W1 = teacher.standard_normal((n_features, TEACHER_WIDTH)) / np.sqrt(n_features)
        W2 = teacher.standard_normal((TEACHER_WIDTH, N_CLASSES)) * 2.0
        parts = []
        for n in (n_train, n_eval, n_eval):
            X = rng.standard_normal((n, n_features))
            y = np.argmax(np.tanh(X @ W1) @ W2, axis=1).astype(np.int64)
            parts += [X, y]  # already standardised: no scaler needed
        return Split(*parts)

    def spec(self) -> ModelSpec:
        spec = ModelSpec(
            n_inputs=self._int("n_features"),
            n_outputs=N_CLASSES,
            hidden=(self._int("width"),) * self._int("depth"),
            activation="relu",
            loss="cross_entropy",
            optimizer="adam",
            lr=1e-3,
            batch_size=self._int("batch_size"),
            epochs=3,
        )
        if self.config["epochs"] != "auto":
            return spec.replace(epochs=self._int("epochs"))
        return spec.replace(epochs=2 if training_flops(spec, self._int("n_samples")) > BIG_EPOCH_FLOPS else 3)
