"""The runner's side of a worker subprocess: start it with its thread budget and cores, talk, end it.

The worker (mlpbench/worker/) sets nothing itself that must be set before import: the thread
environment comes in its environment, and the cores it may use come through an exec wrapper
that pins the process before the interpreter (and BLAS's thread pool) starts.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .choices import BackendChoice
from .env import thread_env
from .worker.protocol import decode, encode

STARTUP_TIMEOUT_S = 180.0  # worker start-up: importing TensorFlow can take a while on a busy machine
STDERR_TAIL_LINES = 15


class WorkerDied(Exception):
    """The worker process ended without answering."""


class Worker:
    """A backend's worker subprocess and its JSON-lines pipe."""

    def __init__(
        self,
        choice: BackendChoice,
        backend_cls: type,
        threads: int,
        plugins: tuple[str, ...],
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        cores: list[int] | None = None,
    ) -> None:
        env = {**os.environ, **thread_env(threads), **backend_cls.worker_env(dict(choice.options)), **(extra_env or {})}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["PYTHONUNBUFFERED"] = "1"
        env["MLPBENCH_PARENT_PID"] = str(os.getpid())  # the worker ends itself when the runner is gone
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            _command(cores),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the runner only; the runner stops the worker
        )
        self._buffer = b""
        self.send(
            {
                "type": "init",
                "backend": choice.name,
                "options": dict(choice.options),
                "plugins": list(plugins),
                "threads": threads,
            }
        )

    def send(self, message: dict[str, Any]) -> None:
        """Write one message; a dead worker raises WorkerDied."""
        try:
            self.proc.stdin.write(encode(message))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(str(exc)) from exc

    def receive(self, deadline: float) -> dict[str, Any] | None:
        """The next message, None at the deadline; WorkerDied when the pipe closes.

        Also WorkerDied when `stop` closed the pipe meanwhile (a Ctrl-C stops every worker from the main
        thread while the runner's threads wait on them).
        """
        try:
            return self._receive(deadline)
        except (OSError, ValueError) as exc:  # EBADF, or "I/O operation on closed file"
            raise WorkerDied(f"the worker's pipe was closed: {exc}") from exc

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if not ready:
                # A child the worker forked (a data loader, say) can keep the pipe open after the
                # worker died, so the end of the pipe may never come: look at the process itself.
                if self.exit_code() is not None and not select.select([fd], [], [], 0)[0]:
                    raise WorkerDied("worker exited")
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerDied("worker closed its pipe")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return decode(line)
        except ValueError:
            raise WorkerDied(f"unreadable message from the worker: {line[:200]!r}") from None

    def exit_code(self, wait_s: float = 0.0) -> int | None:
        """The worker's exit code (negative: killed by that signal), or None while it runs.

        The process is not reaped (WNOWAIT), so its pid, which is also its process group's
        id, cannot be reused before `stop` has killed what is left of the group.
        """
        end = time.monotonic() + wait_s
        while True:
            try:
                info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # already reaped
                return self.proc.returncode
            if info is not None:
                return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
            if time.monotonic() >= end:
                return None
            time.sleep(0.02)

    def death_reason(self) -> str:
        """Exit code or signal of a dead worker, with the tail of its stderr."""
        code = self.exit_code(wait_s=5)
        if code is None:
            how = "worker stopped answering"
        elif code < 0:
            how = f"worker killed by signal {signal.Signals(-code).name}"
            if code == -signal.SIGKILL:
                how += " (sent by another process: often the kernel's out-of-memory killer)"
        else:
            how = f"worker exited with code {code}"
        return f"{how}; last stderr lines:\n{self.stderr_tail()}"

    def stderr_tail(self) -> str:
        """The last lines the worker wrote to stderr."""
        if not self._log.closed:  # `stop` closes it
            self._log.flush()
        try:
            lines = self.log_path.read_bytes().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-STDERR_TAIL_LINES:])

    def stop(self, kill: bool = False) -> None:
        """End the worker (politely unless `kill`) and everything it started, and close its files.

        Its process group ends with it; so do descendants that left the group (a compiler's pool of
        processes in a session of its own), found before the worker goes and its children are orphaned.
        """
        if self.proc.returncode is None:
            descendants = _descendants(self.proc.pid)
            if not kill:
                try:
                    self.send({"type": "exit"})
                except WorkerDied:
                    pass
                self.exit_code(wait_s=10)
            # The worker is alive or an unreaped zombie, so its process group still exists: this
            # also ends the children it left behind.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for child in descendants:
                try:
                    child.kill()
                except Exception:  # noqa: BLE001 - already gone (psutil.NoSuchProcess) or not ours
                    pass
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self._log):
            try:
                f.close()
            except OSError:
                pass


def _descendants(pid: int) -> list[Any]:
    """Every live descendant process of `pid` (psutil handles), or [] where that cannot be read."""
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - the process is gone, or psutil cannot read it here
        return []


def _command(cores: list[int] | None) -> list[str]:
    """The worker's command line; with `cores`, pinned to them before the interpreter starts.

    Affinity is inherited across exec, so the pinned wrapper's exec of the worker starts every
    thread the worker will ever have (BLAS's pool is made at import) inside the core set.
    """
    worker = [sys.executable, "-m", "mlpbench.worker"]
    if not cores or not hasattr(os, "sched_setaffinity"):
        return worker
    pin = f"import os, sys; os.sched_setaffinity(0, {sorted(cores)!r}); os.execv(sys.executable, {worker!r})"
    return [sys.executable, "-c", pin]


def pinned_cores() -> list[int] | None:
    """The cores this process may run on (None where the platform cannot say or pin)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return sorted(os.sched_getaffinity(0))
