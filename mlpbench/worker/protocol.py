"""The JSON-lines protocol between the runner and a worker.

Messages in:  {"type": "init", "backend", "options", "plugins", "threads"}, {"type": "job", "job": {...}},
              {"type": "exit"}
Messages out: {"type": "ready", ...} | {"type": "init_error", ...}, {"type": "epoch", ...}, {"type": "result", ...}
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line of JSON (NumPy scalars as numbers, non-finite floats as null)."""
    return (json.dumps(message, default=_json_default) + "\n").encode("utf-8")


def decode(line: bytes | str) -> dict[str, Any]:
    """One line back into a message; raises ValueError for anything that is not a JSON object."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError(f"not a message: {str(line)[:200]!r}")
    return message


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
