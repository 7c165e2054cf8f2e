"""ModelSpec validation: every bad value names the field and what is allowed."""

from __future__ import annotations

import pytest

from mlpbench import ModelSpec


def _spec(**kw):
    return ModelSpec(**{"n_inputs": 4, "n_outputs": 3, **kw})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"activation": "swish"}, "ModelSpec.activation = 'swish': allowed values are sigmoid, tanh, relu"),
        ({"loss": "hinge"}, "ModelSpec.loss = 'hinge': allowed values are cross_entropy"),
        ({"optimizer": "adagrad"}, "allowed values are sgd, momentum, nesterov, adam, rmsprop"),
        ({"lr": -0.1}, "ModelSpec.lr = -0.1: must be a number in (0, inf)"),
        ({"lr": 0.0}, "ModelSpec.lr = 0.0"),
        ({"batch_size": 0}, "ModelSpec.batch_size = 0: must be an integer >= 1"),
        ({"epochs": 0}, "ModelSpec.epochs = 0"),
        ({"dropout": 1.0}, "ModelSpec.dropout = 1.0: must be a number in [0, 1)"),
        ({"dropout": -0.1}, "ModelSpec.dropout"),
        ({"l2": -1.0}, "ModelSpec.l2"),
        ({"momentum": 1.5}, "ModelSpec.momentum"),
        ({"dtype": "float16"}, "allowed values are float32, float64"),
        ({"hidden": (8, 0)}, "ModelSpec.hidden[1] = 0"),
        ({"loss": "binary_cross_entropy"}, "n_outputs must be 1"),
        ({"lr": float("nan")}, "ModelSpec.lr = nan"),
    ],
)
def test_invalid_values_raise_with_field_and_allowed_values(changes: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        _spec(**changes)
    assert message in str(info.value)


def test_overrides_from_text_are_parsed_and_validated() -> None:
    spec = _spec().with_overrides({"lr": "0.1", "hidden": "128,64", "epochs": "5", "activation": "tanh"})
    assert spec.lr == 0.1 and spec.hidden == (128, 64) and spec.epochs == 5 and spec.activation == "tanh"
    with pytest.raises(ValueError, match="unknown ModelSpec field 'learning_rate'; valid fields:.* lr"):
        _spec().with_overrides({"learning_rate": "0.1"})
    with pytest.raises(ValueError, match="ModelSpec.lr = 'fast': expected a number"):
        _spec().with_overrides({"lr": "fast"})


def test_round_trip_and_derived_values() -> None:
    spec = _spec(hidden=[10, 5], activation="tanh")
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.layer_sizes == (4, 10, 5, 3)
    assert spec.n_parameters() == 5 * 10 + 11 * 5 + 6 * 3
    assert spec.init_scheme == "glorot" and _spec(activation="elu").init_scheme == "he"
    assert "4-10-5-3" in repr(spec)
