"""`ModelSpec`: the one description of a network and its training that every backend builds."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .values import coerce, is_finite_number

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu")
LOSSES = ("cross_entropy", "binary_cross_entropy", "mse", "mae")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "rmsprop")
INITS = ("auto", "he", "glorot")
DTYPES = ("float32", "float64")
#: Where batch normalization sits in every hidden layer: nowhere, before or after the activation.
BATCH_NORMS = ("none", "before", "after")

#: Negative slope of leaky_relu, fixed so every backend computes the same function
#: (PyTorch's default; Keras' default of 0.3 is overridden by the Keras backend).
LEAKY_RELU_SLOPE = 0.01
#: alpha of elu (x < 0 -> alpha * (exp(x) - 1)), the default of every framework.
ELU_ALPHA = 1.0
#: With ``eval_every = 0`` ("auto"), a curve keeps at most about this many evaluated epochs: a long run
#: of a cheap model otherwise spends more time evaluating between epochs than training.
AUTO_CURVE_POINTS = 100


@dataclass(frozen=True)
class ModelSpec:
    """A multilayer perceptron and how to train it; validated on construction.

    Semantics every backend keeps (see DESIGN.md): reported loss is the mean over
    samples of the per-sample loss (mse also averages over outputs, no 1/2 factor);
    ``l2`` adds ``l2 * W`` to the gradient of every weight matrix (never biases);
    optimizers follow PyTorch's update rules; batch normalization follows PyTorch's
    ``BatchNorm1d`` (momentum convention, unbiased running variance). A hidden layer is
    ``Linear -> [BN if "before"] -> activation -> [BN if "after"] -> dropout``.
    """

    n_inputs: int  # features per sample
    n_outputs: int  # classes (multiclass), 1 (binary), targets (regression)
    hidden: tuple[int, ...] = (64,)  # width of each hidden layer, input side first
    activation: str = "relu"  # hidden activation, one of ACTIVATIONS
    loss: str = "cross_entropy"  # one of LOSSES; fixes the output layer (softmax / sigmoid / linear)
    optimizer: str = "adam"  # one of OPTIMIZERS
    lr: float = 1e-3  # learning rate
    momentum: float = 0.9  # for momentum and nesterov
    beta1: float = 0.9  # adam
    beta2: float = 0.999  # adam
    eps: float = 1e-8  # adam and rmsprop, added to the square root (sqrt(v_hat), sqrt(v)) as in PyTorch
    alpha: float = 0.99  # rmsprop's smoothing constant (PyTorch's alpha, Keras' rho): v = alpha*v + (1-alpha)*g^2
    batch_size: int = 32  # samples per mini-batch; the last batch of an epoch may be smaller
    epochs: int = 50  # passes over the training set
    l2: float = 0.0  # L2 coefficient: objective gets l2/2 * sum(W**2)
    dropout: float = 0.0  # inverted-dropout rate on every hidden layer's output, in [0, 1)
    batch_norm: str = "none"  # one of BATCH_NORMS: batch normalization on every hidden layer, before or after f
    bn_momentum: float = 0.1  # PyTorch's convention: running = (1 - bn_momentum) * running + bn_momentum * batch
    bn_eps: float = 1e-5  # added to the variance before its square root
    init: str = "auto"  # "auto": He for the relu family, Glorot for sigmoid/tanh; biases zero
    dtype: str = "float32"  # float64 for parity checks
    patience: int = 0  # early stopping on the validation loss, owned by the runner; 0 = off
    min_delta: float = 0.0  # an epoch improves when val_loss < best - min_delta
    restore_best: bool = True  # with early stopping, test metrics are those of the best epoch's weights
    eval_every: int = 0  # evaluate every N epochs (first and last always); 0 = auto, see evaluation_interval
    extra: dict = field(default_factory=dict, compare=False, hash=False)  # free-form notes

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        _check_int(self, "n_inputs", minimum=1)
        _check_int(self, "n_outputs", minimum=1)
        _check_int(self, "batch_size", minimum=1)
        _check_int(self, "epochs", minimum=1)
        _check_int(self, "patience", minimum=0)
        _check_int(self, "eval_every", minimum=0)
        if self.patience and self.eval_every > 1:
            raise ValueError(
                f"ModelSpec.eval_every = {self.eval_every}: early stopping (patience={self.patience}) reads the "
                "validation loss after every epoch; use eval_every=1 or auto with patience"
            )
        _check_range(self, "min_delta", 0.0, None)
        if not isinstance(self.restore_best, bool):
            raise ValueError(f"ModelSpec.restore_best = {self.restore_best!r}: must be true or false")
        for i, width in enumerate(self.hidden):
            if width < 1:
                raise ValueError(f"ModelSpec.hidden[{i}] = {width}: every hidden layer needs at least 1 unit")
        _check_choice(self, "activation", ACTIVATIONS)
        _check_choice(self, "loss", LOSSES)
        _check_choice(self, "optimizer", OPTIMIZERS)
        _check_choice(self, "init", INITS)
        _check_choice(self, "dtype", DTYPES)
        _check_range(self, "lr", 0.0, None, low_open=True)
        _check_range(self, "momentum", 0.0, 1.0, high_open=True)
        _check_range(self, "beta1", 0.0, 1.0, high_open=True)
        _check_range(self, "beta2", 0.0, 1.0, high_open=True)
        _check_range(self, "eps", 0.0, None, low_open=True)
        _check_range(self, "alpha", 0.0, 1.0, high_open=True)
        _check_range(self, "l2", 0.0, None)
        _check_range(self, "dropout", 0.0, 1.0, high_open=True)
        _check_choice(self, "batch_norm", BATCH_NORMS)
        _check_range(self, "bn_momentum", 0.0, 1.0)
        _check_range(self, "bn_eps", 0.0, None, low_open=True)
        if self.batch_norm != "none" and self.batch_size < 2:
            raise ValueError(
                f"ModelSpec.batch_size = {self.batch_size}: batch_norm={self.batch_norm!r} normalizes with the "
                "statistics of each batch, which needs at least 2 samples"
            )
        if self.loss == "binary_cross_entropy" and self.n_outputs != 1:
            raise ValueError(
                f"ModelSpec.n_outputs = {self.n_outputs}: binary_cross_entropy uses one sigmoid unit, "
                "so n_outputs must be 1 (use cross_entropy for several classes)"
            )
        if self.loss == "cross_entropy" and self.n_outputs < 2:
            raise ValueError(
                "ModelSpec.n_outputs = 1: cross_entropy (softmax) needs at least 2 classes; "
                "use binary_cross_entropy for a single sigmoid unit"
            )

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """All layer widths, input and output included."""
        return (self.n_inputs, *self.hidden, self.n_outputs)

    @property
    def evaluation_interval(self) -> int:
        """Every how many epochs the runner evaluates: `eval_every`, or with 0 ("auto") every epoch up to
        AUTO_CURVE_POINTS epochs (and always with early stopping), else every ceil(epochs / AUTO_CURVE_POINTS)."""
        if self.eval_every:
            return self.eval_every
        return 1 if self.patience else max(1, math.ceil(self.epochs / AUTO_CURVE_POINTS))

    def evaluates(self, epoch: int) -> bool:
        """Whether the runner evaluates after `epoch` (1-based): the first, every interval-th, and the last."""
        return epoch == 1 or epoch == self.epochs or epoch % self.evaluation_interval == 0

    @property
    def init_scheme(self) -> str:
        """The resolved weight-initialisation scheme: "he" or "glorot"."""
        if self.init != "auto":
            return self.init
        return "he" if self.activation in ("relu", "leaky_relu", "elu") else "glorot"

    @property
    def is_classifier(self) -> bool:
        """True for the softmax and sigmoid losses."""
        return self.loss in ("cross_entropy", "binary_cross_entropy")

    def n_parameters(self) -> int:
        """Number of trainable parameters: weights and biases, and with batch_norm each hidden unit's gamma and beta."""
        sizes = self.layer_sizes
        n = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
        return n + (2 * sum(self.hidden) if self.batch_norm != "none" else 0)

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def with_overrides(self, overrides: dict[str, str | Any]) -> ModelSpec:
        """A copy with fields set from text (``{"lr": "0.1", "hidden": "64,32"}``), as typed on a command line."""
        names = {f.name for f in dataclasses.fields(self)} - {"extra", "n_inputs", "n_outputs"}
        changes = {}
        for key, value in overrides.items():
            if key not in names:
                raise ValueError(f"unknown ModelSpec field {key!r}; valid fields: {', '.join(sorted(names))}")
            changes[key] = parse_field(key, value)
        return self.replace(**changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        """Inverse of `to_dict`."""
        return cls(**d)

    def __repr__(self) -> str:
        sizes = "-".join(str(s) for s in self.layer_sizes)
        return (
            f"ModelSpec({sizes}, {self.activation}, {self.loss}, {self.optimizer}(lr={self.lr:g}), "
            f"batch={self.batch_size}, epochs={self.epochs}, l2={self.l2:g}, dropout={self.dropout:g}, "
            + (f"batch_norm={self.batch_norm}, " if self.batch_norm != "none" else "")
            + f"{self.dtype})"
        )


def parse_field(name: str, value: Any) -> Any:
    """Convert a command-line string to the type of ModelSpec field `name`."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if name == "hidden":
            return tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip()) if text else ()
        if name == "eval_every" and text.lower() == "auto":
            return 0
        if name in ("n_inputs", "n_outputs", "batch_size", "epochs", "patience", "eval_every"):
            return int(text)
        if name in (
            "lr",
            "momentum",
            "beta1",
            "beta2",
            "eps",
            "alpha",
            "l2",
            "dropout",
            "min_delta",
            "bn_momentum",
            "bn_eps",
        ):
            return float(text)
        if name == "restore_best":
            return coerce("ModelSpec.restore_best", text, True)
    except ValueError:
        kinds = {"hidden": "comma-separated integers like 64,32", "restore_best": "true or false"}
        kind = kinds.get(name, "a number")
        raise ValueError(f"ModelSpec.{name} = {value!r}: expected {kind}") from None
    return text


def _check_int(spec: ModelSpec, name: str, minimum: int) -> None:
    value = getattr(spec, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"ModelSpec.{name} = {value!r}: must be an integer >= {minimum}")


def _check_choice(spec: ModelSpec, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(spec, name)
    if value not in allowed:
        raise ValueError(f"ModelSpec.{name} = {value!r}: allowed values are {', '.join(allowed)}")


def _check_range(
    spec: ModelSpec, name: str, low: float, high: float | None, low_open: bool = False, high_open: bool = False
) -> None:
    value = getattr(spec, name)
    ok = is_finite_number(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high)
        )
    if not ok:
        lo = f"{'(' if low_open else '['}{low:g}"
        hi = f"{high:g}{')' if high_open else ']'}" if high is not None else "inf)"
        raise ValueError(f"ModelSpec.{name} = {value!r}: must be a number in {lo}, {hi}")
