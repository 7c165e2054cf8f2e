"""How backends and seeds are named on a command line or in an experiment file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .registry import Registry

#: The default suite's tasks: a toy problem, a classification and a regression.
DEFAULT_TASKS = ("xor", "digits", "diabetes")


@dataclass(frozen=True)
class BackendChoice:
    """A backend and its options, as named on the command line (``keras[engine=torch]``)."""

    name: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        """The name results are reported under: the backend name, with options when any are set."""
        if not self.options:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in self.options)}]"


def parse_backend_list(text: str) -> list[BackendChoice]:
    """Parse ``numpy,keras[engine=torch,jit=true]`` (commas inside brackets belong to the options)."""
    items, depth, current = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    out = []
    for raw in (i.strip() for i in items):
        if not raw:
            continue
        if "[" in raw:
            if not raw.endswith("]"):
                raise ValueError(f"backend {raw!r}: options go in brackets at the end, like keras[engine=torch]")
            name, opts = raw[:-1].split("[", 1)
            pairs = []
            for kv in filter(None, (o.strip() for o in opts.split(","))):
                if "=" not in kv:
                    raise ValueError(f"backend option {kv!r} in {raw!r}: expected key=value")
                k, v = kv.split("=", 1)
                pairs.append((k.strip(), v.strip()))
            out.append(BackendChoice(name.strip(), tuple(pairs)))
        else:
            out.append(BackendChoice(raw))
    return out


def expand_seeds(text: str | int) -> list[int]:
    """``5`` means seeds 0..4; ``1,7,9`` means exactly those."""
    text = str(text).strip()
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            n = int(text)
            if n < 1:
                raise ValueError
            seeds = list(range(n))
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected a count like 3 or a list like 0,4,7") from None
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ValueError(f"--seeds {text!r}: seeds must be distinct non-negative integers")
    return seeds


def default_backends(registry: Registry, keep_broken: bool = True) -> list[str]:
    """Every installed backend: what a run without ``--backends`` means on this machine.

    With `keep_broken`, an installed plugin whose import fails stays in the list, so its jobs are
    recorded as errors instead of silently left out.
    """
    return [
        n
        for n, e in sorted(registry.backends.items())
        if (e.cls is None and keep_broken) or (e.cls is not None and not e.cls.missing_requirements())
    ]
