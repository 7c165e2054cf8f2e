"""Live progress of a run: job, epoch and ETA (rich), or one line per job when not on a terminal."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

_STATUS_STYLE = {"ok": "green", "skipped": "yellow", "not_installed": "yellow", "unavailable": "yellow"}


class Progress:
    """Receives the runner's events and shows them. Total work is counted in epochs."""

    def __init__(self, enabled: bool = True) -> None:
        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self._bar = (
            RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("epochs"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            if self.live
            else None
        )
        self._task_id = None
        self._job_epochs: dict[str, int] = {}

    def __enter__(self) -> Progress:
        if self._bar:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.__exit__(*exc)

    def _print(self, text: str) -> None:
        if self._bar:
            self._bar.console.print(text, highlight=False)
        else:
            self.console.print(text, highlight=False, soft_wrap=True)
            sys.stderr.flush()

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Handle one runner event (plan, worker_start, worker_ready, job_start, epoch, job_done)."""
        if kind == "plan":
            total = sum(j.spec["epochs"] for j in data["jobs"])
            if data["skipped_done"]:
                self._print(f"resuming: {data['skipped_done']} finished jobs kept, {len(data['jobs'])} to run")
            else:
                self._print(f"{len(data['jobs'])} jobs, {total} epochs in all")
            if self._bar:
                self._task_id = self._bar.add_task("starting", total=total)
        elif kind == "worker_start":
            self._describe(f"{data['backend']}: starting worker (importing the framework)")
        elif kind == "worker_ready":
            self._print(f"[dim]{escape(data['backend'])}: worker ready, import took {data.get('import_s', 0):.1f} s[/]")
        elif kind == "job_start":
            job = data["job"]
            self._job_epochs[job.id] = 0
            self._describe(
                f"{job.backend} · {job.task}{_point(job.grid_point)} · seed {job.seed} · epoch 0/{job.spec['epochs']}"
            )
        elif kind == "epoch":
            job = data["job"]
            self._job_epochs[job.id] = data["epoch"]
            self._describe(
                f"{job.backend} · {job.task}{_point(job.grid_point)} · seed {job.seed} · "
                f"epoch {data['epoch']}/{data['epochs']}"
            )
            if self._bar:
                self._bar.advance(self._task_id, 1)
        elif kind == "job_done":
            if self._bar and self._task_id is not None:
                # Epochs a job did not run (failure, skip) still leave the plan: keep the bar honest.
                planned = (data.get("spec") or {}).get("epochs", 0)
                self._bar.advance(self._task_id, max(0, planned - self._job_epochs.get(data["id"], 0)))
            self._print(_job_line(data))

    def _describe(self, text: str) -> None:
        if self._bar and self._task_id is not None:
            self._bar.update(self._task_id, description=escape(text))


def _job_line(r: dict[str, Any]) -> str:
    status = r.get("status", "?")
    style = _STATUS_STYLE.get(status, "red")
    head = (
        f"[{style}]{status:>9}[/] {escape(str(r['backend']))} · {escape(str(r['task']))}"
        f"{escape(_point(r.get('grid_point')))} · seed {r['seed']}"
    )
    if status == "ok":
        metric = next((k for k in r if k.startswith("test_")), None)
        parts = [f"{metric[5:]}={r[metric]:.4f}" if metric else ""]
        if r.get("epoch_time_s") is not None:
            parts.append(f"epoch {1000 * r['epoch_time_s']:.2f} ms")
        if r.get("train_time_s") is not None:
            parts.append(f"train {r['train_time_s']:.2f} s")
        return head + "  " + "  ".join(p for p in parts if p)
    reason = (r.get("error") or "").splitlines()[0] if r.get("error") else ""
    return head + f"  [dim]{escape(reason[:160])}[/]"


def _point(point: dict | None) -> str:
    """A job's grid point for a progress line: `` · hidden=64 lr=0.01``."""
    return " · " + " ".join(f"{k}={v}" for k, v in point.items()) if point else ""
