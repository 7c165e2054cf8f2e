"""Settings typed as text (command line, grids) converted to the type of their default, with one set of rules."""

from __future__ import annotations

import math
from typing import Any

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def is_finite_number(value: Any) -> bool:
    """Whether `value` is a real number with a value to compute with: an int or float, finite, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def coerce(what: str, value: Any, default: Any) -> Any:
    """`value` converted to the type of `default`; ValueError naming `what` and the expected type.

    Text is converted (``"0.3"`` -> 0.3 for a float default, ``"1e5"`` -> 100000 for an int default,
    ``"true"`` -> True for a bool); values already of the right kind pass through; a default of None
    or of type str takes anything. Floats must be finite.
    """
    if default is None or isinstance(default, str):
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in TRUE:
            return True
        if lowered in FALSE:
            return False
        raise ValueError(f"{what}={value!r}: expected true or false")
    if isinstance(default, int):
        number = _number(what, value, "a whole number")
        if not float(number).is_integer():
            raise ValueError(f"{what}={value!r}: expected a whole number")
        return int(number)
    if isinstance(default, float):
        return float(_number(what, value, "a number"))
    return value


def _number(what: str, value: Any, expected: str) -> float | int:
    if isinstance(value, bool):
        raise ValueError(f"{what}={value!r}: expected {expected}")
    if isinstance(value, (int, float)):
        number = value
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"{what}={value!r}: expected {expected}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"{what}={value!r}: expected a finite number")
    return number
