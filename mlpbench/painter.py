"""Drawing the report's figures, several at once when the machine has cores to spare.

Laying out and rasterising a figure is most of what a report costs (about half a second each
with matplotlib; the default suite's report has eleven), and every figure is independent: its
own `Figure` on the Agg canvas, its own file. So `Painter` hands them to a pool of processes,
one per core, and calls back in the order the figures were asked for: the report is the one
drawn figure by figure, byte for byte.

The processes come from multiprocessing's fork server, a fresh interpreter that has imported
matplotlib and the figure modules once, and forks a worker per process from there: cheap to
start (it starts while the report's tables are computed), and safe in a parent that runs
threads of its own (forking such a parent, as JAX and TensorFlow warn, can leave the child stuck
on a lock).

A process that multiprocessing starts imports the program's main module again; a script without
an ``if __name__ == "__main__":`` guard would run once more in it. So the pool is used only while
mlpbench's own command line is the program (`command_line`), whose main modules are guarded: a
report written from your script or notebook (`mlpbench.run`) is drawn in your process, as it is
where there is one core, no fork server (Windows), or the pool cannot start.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_PROCESSES = 4  # a report has about a dozen figures: more processes would mostly wait
# What the fork server imports before forking workers: the drawing code (matplotlib with it), and
# the main module, so that a worker does not import it again.
PRELOAD = ["__main__", "mlpbench.report.figures", "mlpbench.report.figures_sweep", "mlpbench.report.figures_modes"]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _main_importable() -> bool:
    """Whether a worker process can import this process's main module again, as multiprocessing will.

    A main module read from standard input (``python - <<EOF``) or from ``-c`` has a file name that
    names no file: every worker would fail at start.
    """
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None):
        return True  # python -m module
    path = getattr(main, "__file__", None)
    return path is None or os.path.isfile(path)  # no file at all (a notebook) is fine too


_command_line = False  # True while mlpbench's command line runs this process


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Mark this process as running mlpbench's command line (its main module is safe to import again)."""
    global _command_line
    before, _command_line = _command_line, True
    try:
        yield
    finally:
        _command_line = before


def parallel_processes() -> int:
    """How many processes `Painter` draws with here: 0 (in this process, one by one) or 2 and more."""
    n = min(_cores(), MAX_PROCESSES)
    if not _command_line or n < 2 or "forkserver" not in multiprocessing.get_all_start_methods():
        return 0
    return n if _main_importable() else 0


@dataclass
class _Order:
    function: Callable[..., Path | None]
    args: tuple[Any, ...]
    then: Callable[[Path | None], None]
    future: Future | None = None  # once submitted to the pool


class Painter:
    """Draws figures (``draw(function, *args, then=...)``) and hands each result to its `then`, in order.

    Use as a context manager: leaving it waits for every figure and calls the callbacks (an
    exception raised by a drawing function is raised there, as if it had been drawn here).
    ``Painter(0)`` draws each figure at once, in this process. A pool that breaks (a worker that
    cannot start or dies) costs no figure: what it did not draw is drawn here.
    """

    def __init__(self, processes: int | None = None) -> None:
        self.processes = parallel_processes() if processes is None else processes
        self._pool: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._starter: threading.Thread | None = None
        self._orders: list[_Order] = []

    def __enter__(self) -> Painter:
        if self.processes >= 2:
            self._starter = threading.Thread(target=self._start, name="mlpbench-painter", daemon=True)
            self._starter.start()
        return self

    def _start(self) -> None:
        """Start the pool's processes (the fork server's imports take a second or two) while the caller goes on."""
        pool = None
        try:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)  # no effect once this process's fork server runs
            pool = ProcessPoolExecutor(self.processes, mp_context=context)
            for warm in [pool.submit(int) for _ in range(self.processes)]:
                warm.result()
            self._pool = pool
        except Exception:  # noqa: BLE001  no pool: the figures are drawn here instead
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        finally:
            self._ready.set()

    def draw(self, function: Callable[..., Path | None], *args: Any, then: Callable[[Path | None], None]) -> None:
        """Draw ``function(*args)`` (it returns the PNG's path, or None for nothing to draw); `then` gets that."""
        if self._starter is None:
            then(function(*args))
            return
        order = _Order(function, args, then)
        if self._ready.is_set():
            self._submit(order)
        self._orders.append(order)

    def _submit(self, order: _Order) -> None:
        if self._pool is not None and order.future is None:
            try:
                order.future = self._pool.submit(order.function, *order.args)
            except BrokenProcessPool:
                pass  # drawn here

    def _result(self, order: _Order) -> Path | None:
        if order.future is not None:
            try:
                return order.future.result()
            except BrokenProcessPool:  # the pool's worker died: draw it here
                pass
        return order.function(*order.args)

    def __exit__(self, *exc: object) -> None:
        if self._starter is None:
            return
        self._starter.join()
        orders, self._orders = self._orders, []
        finished = False
        try:
            if exc[0] is None:
                for order in orders:
                    self._submit(order)
                for order in orders:
                    order.then(self._result(order))
                finished = True
        finally:
            pool, self._pool, self._starter = self._pool, None, None
            if pool is not None:  # after an error the other figures are not wanted
                pool.shutdown(wait=True, cancel_futures=not finished)
