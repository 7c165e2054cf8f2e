"""What every part of the kit shares: its exceptions, its tolerances, and small helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ..spec import ACTIVATIONS, DTYPES, LOSSES, OPTIMIZERS


class ConformanceError(AssertionError):
    """A backend breaks the contract; the message names the check and what differed."""


class CheckSkipped(Exception):
    """A check that does not apply here: a capability the backend does not declare, or a missing module."""


Check = Callable[[], "str | None"]  # runs one check; returns a note (or None); raises on failure


@dataclass(frozen=True)
class Tolerances:
    """How close to the NumPy reference a backend must stay.

    The keyword arguments of `check_backend` and the other entry points with these names
    (``check_backend(MyBackend, rtol=1e-5)``) replace the defaults below; or pass a whole
    object as ``tolerances=``.
    """

    rtol: float = 1e-6  # float64: max |w - w_ref| <= rtol * max |w_ref| per layer, after one epoch
    float32_rtol: float = 1e-4  # the same, for backends that declare no float64
    xor_epochs: int = 2000  # the most epochs the XOR check trains before giving up

    def for_dtype(self, dtype: str) -> float:
        """The relative tolerance of a comparison in `dtype`."""
        return self.rtol if dtype == "float64" else max(self.rtol, self.float32_rtol)

    @classmethod
    def split(cls, tolerances: Tolerances | None, kwargs: dict[str, Any]) -> tuple[Tolerances, dict[str, Any]]:
        """`tolerances` with the keyword arguments named like its fields applied, and the other ones (options)."""
        names = {f.name for f in dataclasses.fields(cls)}
        changes = {k: v for k, v in kwargs.items() if k in names}
        options = {k: v for k, v in kwargs.items() if k not in names}
        return dataclasses.replace(tolerances or cls(), **changes), options


#: The capability attributes the kit reads, and the values it knows for each (read-only, like every module global here).
CAPABILITIES = MappingProxyType(
    {"activations": ACTIVATIONS, "losses": LOSSES, "optimizers": OPTIMIZERS, "dtypes": DTYPES}
)


def declares_batch_norm(cls: type) -> bool:
    """The class's ``supports_batch_norm`` (the Backend base class declares False: a backend that says
    nothing must decline batch_norm specs, which the base class's `skip` does)."""
    return bool(getattr(cls, "supports_batch_norm", False))


def known(cls: type, attr: str) -> tuple[str, ...]:
    """The declared values of a capability that the kit knows (unknown ones fail the metadata check)."""
    value = getattr(cls, attr, ())
    return tuple(v for v in value if v in CAPABILITIES[attr]) if isinstance(value, tuple) else ()


def relative_error(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """(max |got - want|, max |want|), both as floats."""
    got64, want64 = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got64 - want64), initial=0.0)), float(np.max(np.abs(want64), initial=0.0))
