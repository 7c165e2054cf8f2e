"""How the reports show values: numbers as text, and text made safe for Markdown.

HTML needs no helper here: the page's template escapes every value it is given.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

DASH = "–"  # shown for a missing value


def threads_text(n: int | str) -> str:
    """``1 thread``, ``2 threads`` (env.json keys its per-thread-count peaks by the count as text)."""
    return f"{n} thread{'' if str(n) == '1' else 's'}"


def missing(v: Any) -> bool:
    """True for a value that has no number to show: None, NaN or an infinity."""
    return v is None or (isinstance(v, float) and not math.isfinite(v))


def fmt_g(v: Any, digits: int = 3) -> str:
    """A number in `digits` significant figures, thousands separated from 1000 up; a dash when missing."""
    if missing(v):
        return DASH
    v = float(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def fmt_metric(v: Any) -> str:
    """A test metric: four decimals (accuracy 0.9650, r2 0.4143)."""
    if missing(v):
        return DASH
    return f"{float(v):.4f}" if abs(float(v)) < 1000 else fmt_g(v)


def fmt_int(v: Any) -> str:
    """A large count or rate, thousands separated."""
    return DASH if missing(v) else f"{float(v):,.0f}"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_text(value: Any) -> str:
    """Text for a Markdown table cell or line: HTML and Markdown syntax neutralised, one line."""
    s = html.escape(str(value), quote=False)
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def code_span(value: Any) -> str:
    """Text for inside a Markdown code span (shown literally): only backticks and line breaks must go."""
    return " ".join(str(value).replace("`", "'").split())
