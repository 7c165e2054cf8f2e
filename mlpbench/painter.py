"""Drawing the report's figures, several at once when the machine has cores to spare.

Laying out and rasterising a figure is most of what a report costs (about half a second each
with matplotlib; the default suite's report has eleven), and every figure is independent: its
own `Figure` on the Agg canvas, its own file. So `Painter` hands them to a pool of processes,
one per core, and calls back in the order the figures were asked for: the report is the one
drawn figure by figure, byte for byte.

The processes come from multiprocessing's fork server, a fresh interpreter that has imported
matplotlib and the figure modules once, and forks a worker per process from there: cheap to
start (a run starts it while it plans), and safe in a parent that runs
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
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .workerproc import pinned_cores

MAX_PROCESSES = 4  # a report has about a dozen figures: more processes would mostly wait
# What the fork server imports before forking workers: the drawing code (matplotlib with it), and
# the main module, so that a worker does not import it again.
PRELOAD = ["__main__", "mlpbench.report.figures", "mlpbench.report.figures_sweep", "mlpbench.report.figures_modes"]


def _cores() -> int:
    cores = pinned_cores()
    return len(cores) if cores is not None else os.cpu_count() or 1


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


def _drawing_process(parent: int) -> None:
    """Set up a drawing process: it outlives nothing, holds none of the run's output, leaves Ctrl-C to the run.

    Its parent is the fork server, not the run, so it watches the run's pid itself: a run killed with
    SIGKILL takes its drawing processes (and with them the fork server) along within a second. Its
    standard output and error go to /dev/null, so a reader of the run's output (``| tee``, a test's
    pipe) sees the end of it when the run ends; a drawing error comes back through the pool.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run ends the pool itself (no traceback from here)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    threading.Thread(target=_end_with, args=(parent,), name="mlpbench-painter-watch", daemon=True).start()


def _end_with(parent: int) -> None:
    """End this process once `parent` has ended (a zombie counts: its own parent may wait for our pipes first)."""
    import psutil

    try:
        run = psutil.Process(parent)
        while run.is_running() and run.status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.5)
    except psutil.Error:
        pass
    os._exit(0)


class Painter:
    """Draws figures (``draw(function, *args, then=...)``) and hands each result to its `then`, in order.

    `start` starts the pool's processes in the background (a run starts it while it plans, so that
    it is ready when the report is drawn); `finish` waits for every figure asked for and calls the
    callbacks in order (an exception raised by a drawing function is raised there, as if it had
    been drawn here); `close` ends the pool. As a context manager: start, then finish and close.
    ``Painter(0)`` draws each figure at once, in this process. A pool that breaks (a worker that
    cannot start or dies) costs no figure: what it did not draw is drawn here.
    """

    def __init__(self, processes: int | None = None) -> None:
        self.processes = parallel_processes() if processes is None else processes
        self._pool: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._starter: threading.Thread | None = None
        self._orders: list[_Order] = []

    def start(self) -> Painter:
        """Start the pool in the background (once; nothing for a painter that draws here)."""
        if self.processes >= 2 and self._starter is None:
            self._starter = threading.Thread(target=self._start, name="mlpbench-painter", daemon=True)
            self._starter.start()
        return self

    def wait_ready(self) -> None:
        """Return once the pool has started (or failed to): nothing of it runs beside a measurement after this."""
        if self._starter is not None:
            self._starter.join()

    def _start(self) -> None:
        pool = None
        try:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)  # no effect once this process's fork server runs
            pool = ProcessPoolExecutor(
                self.processes, mp_context=context, initializer=_drawing_process, initargs=(os.getpid(),)
            )
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

    def finish(self) -> None:
        """Wait for every figure asked for and hand each to its callback, in the order they were asked for."""
        self.wait_ready()
        orders, self._orders = self._orders, []
        try:
            for order in orders:
                self._submit(order)
            for order in orders:
                order.then(self._result(order))
        except BaseException:
            for order in orders:  # the other figures are not wanted
                if order.future is not None:
                    order.future.cancel()
            raise

    def close(self) -> None:
        """End the pool (after waiting for its start); the painter then draws in this process."""
        self.wait_ready()
        pool, self._pool, self._starter, self._orders = self._pool, None, None, []
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Painter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.finish()
        finally:
            self.close()
