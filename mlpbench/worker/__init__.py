"""The child-process side of a run: protocol, job execution, memory measurement, shared splits."""

from .execute import Diverged, execute
from .memory import PeakRSS
from .splits import SPLIT_CACHE_ENV, SplitCache

__all__ = ["Diverged", "PeakRSS", "SPLIT_CACHE_ENV", "SplitCache", "execute"]
