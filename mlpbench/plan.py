"""Planning: which jobs a run is made of, and the identity that names each one for --resume."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

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


@dataclass
class Job:
    """One training run: a backend on a task with a seed and a resolved spec."""

    backend: str  # label
    backend_name: str
    backend_options: dict[str, str]
    task: str
    task_params: dict[str, Any]
    seed: int
    spec: dict[str, Any]
    return_weights: bool = False
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            # The id names the job for --resume: identical settings give the identical id.
            digest = hashlib.sha1(json.dumps([self.task_params, self.spec], sort_keys=True).encode()).hexdigest()[:8]
            self.id = f"{self.backend}/{self.task}/seed={self.seed}/{digest}"

    def to_message(self) -> dict[str, Any]:
        """The job as sent to a worker."""
        return asdict(self)


def make_plan(
    registry: Registry,
    backends: list[BackendChoice],
    tasks: list[str],
    seeds: Iterable[int],
    overrides: dict[str, str] | None = None,
    task_params: dict[str, dict[str, Any]] | None = None,
) -> list[Job]:
    """backends x tasks x seeds, validated before any work starts (raises ValueError with the reason)."""
    overrides = overrides or {}
    task_params = task_params or {}
    for choice in backends:
        entry = registry.backends.get(choice.name)
        if entry is not None and entry.cls is None:
            continue  # an installed plugin that fails to import: the runner records the reason for each job
        cls = registry.backend(choice.name)
        cls(**dict(choice.options))  # unknown or ill-typed options fail here, not in a worker
    seeds = list(seeds)
    jobs = []
    for task_name in tasks:
        task = registry.task(task_name)(**task_params.get(task_name, {}))
        task.validate()
        spec = task.spec().with_overrides(overrides)
        for choice in backends:
            for seed in seeds:
                jobs.append(Job(backend=choice.label, backend_name=choice.name, backend_options=dict(choice.options),
                                task=task_name, task_params=task_params.get(task_name, {}), seed=seed,
                                spec=spec.to_dict()))  # fmt: skip
    return jobs


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
