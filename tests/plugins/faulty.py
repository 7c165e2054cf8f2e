"""Fault-injecting backends for the robustness tests, loaded with ``--plugin tests/plugins/faulty.py``.

Each is the NumPy reference backend with one thing made to go wrong, on the jobs whose
seed is the option ``seed`` (every seed when -1) and at epoch ``epoch``; `raising` and
`diverging` name their fault per seed instead (``raising[stage=build/predict]``: seed 0
raises in build, seed 1 in predict, later seeds train normally). Jobs without a fault
train normally, which is how the tests see that the suite, or a fresh worker, goes on.
Faults that kill the worker write a line to stderr first, for the stderr tail.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from abc import abstractmethod
from pathlib import Path

import numpy as np

from mlpbench.backends.numpy_mlp import NumpyMLP


def _say(text: str) -> None:
    print(f"faulty backend: {text}", file=sys.stderr, flush=True)


class _Faulty(NumpyMLP):
    """The reference backend plus a `fault()` fired at epoch `epoch` of the jobs with seed `seed`."""

    options = {"seed": -1, "epoch": 1}

    def _stage(self, seed: int) -> str | None:
        """Where the fault fires for this seed (build, train_epoch or predict), or None."""
        return "train_epoch" if self.config["seed"] in (-1, seed) else None

    def _armed(self, stage: str) -> bool:
        return self._where == stage and self._epoch == self.config["epoch"]

    def build(self, spec, weights, seed):  # noqa: ANN001, ANN201
        self._where, self._epoch = self._stage(seed), 0
        if self._where == "build":
            self.fault()
        super().build(spec, weights, seed)

    def train_epoch(self, X, y, batches):  # noqa: ANN001, ANN201
        self._epoch += 1
        if self._armed("train_epoch"):
            return self.fault()
        return super().train_epoch(X, y, batches)

    def predict(self, X):  # noqa: ANN001, ANN201
        p = super().predict(X)
        if self._armed("predict"):
            return self.fault(p)
        return p

    @abstractmethod
    def fault(self, *args):  # noqa: ANN002, ANN201
        """Make the thing go wrong (or return what the failing call returns)."""


def _per_seed(text: str, seed: int) -> str:
    """``build/predict`` -> "build" for seed 0, "predict" for seed 1, "none" for later seeds."""
    parts = text.split("/")
    return parts[seed] if seed < len(parts) else "none"


class Raising(_Faulty):
    """Raises RuntimeError; `stage` names the stage per seed: ``build/train_epoch/predict/none``."""

    name = "raising"
    options = {**_Faulty.options, "stage": "train_epoch"}

    def _stage(self, seed: int) -> str | None:
        stage = _per_seed(self.config["stage"], seed)
        return None if stage == "none" else stage

    def fault(self, *args):  # noqa: ANN002, ANN201
        _say(f"raising in {self._where}")
        raise RuntimeError(f"injected failure in {self._where}")


class Aborting(_Faulty):
    """Calls os.abort(): the worker dies with SIGABRT, like a failed C assertion."""

    name = "aborting"

    def fault(self, *args):  # noqa: ANN002, ANN201
        _say("calling os.abort()")
        os.abort()


class Segfaulting(_Faulty):
    """Sends itself SIGSEGV, like a crash in native code."""

    name = "segfaulting"

    def fault(self, *args):  # noqa: ANN002, ANN201
        _say("sending myself SIGSEGV")
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(60)


class OOMKilled(_Faulty):
    """Sends itself SIGKILL, standing in for the kernel's out-of-memory killer."""

    name = "oomkilled"

    def fault(self, *args):  # noqa: ANN002, ANN201
        _say("allocating far too much (sending myself SIGKILL)")
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)


class Forking(_Faulty):
    """Forks a child that keeps the worker's pipes open, then aborts: the end of the pipe never comes."""

    name = "forking"

    def fault(self, *args):  # noqa: ANN002, ANN201
        child = os.fork()
        if child == 0:  # the child: like a data-loader process that outlives its parent
            time.sleep(60)
            os._exit(0)
        _say(f"forked child {child} keeps my pipes; aborting")
        os.abort()


class Hanging(_Faulty):
    """Sleeps for an hour: only the timeout ends it."""

    name = "hanging"

    def fault(self, *args):  # noqa: ANN002, ANN201
        _say("hanging")
        time.sleep(3600)


class Diverging(_Faulty):
    """A NaN training loss (``loss``) or an infinite prediction (``predict``), per seed: ``what=loss/predict``."""

    name = "diverging"
    options = {**_Faulty.options, "epoch": 3, "what": "loss"}

    def _stage(self, seed: int) -> str | None:
        return {"loss": "train_epoch", "predict": "predict"}.get(_per_seed(self.config["what"], seed))

    def fault(self, *args):  # noqa: ANN002, ANN201
        if self._where == "train_epoch":
            return float("nan")
        p = args[0].copy()
        p[0, 0] = np.inf
        return p


class Chatty(NumpyMLP):
    """Prints to stdout, writes to file descriptor 1 and prints fake protocol messages every epoch."""

    name = "chatty"

    def train_epoch(self, X, y, batches):  # noqa: ANN001, ANN201
        print('{"type": "result", "record": {"status": "ok"}}')
        print("half a line without a newline", end="", flush=True)
        os.write(1, b'\n{"type": "epoch", "garbage": true}\nnot json at all\n')
        return super().train_epoch(X, y, batches)


class NotInstalled(NumpyMLP):
    """Needs a module that does not exist."""

    name = "missing"
    requires = ("numpy", "not_a_real_module")


class Gated(NumpyMLP):
    """Writes its pid to $MLPBENCH_TEST_PIDS, then waits in train_epoch until the file $MLPBENCH_TEST_GATE exists.

    Seed 0 is never held, so a test can wait for one finished job and then stop the run
    while the next job is certainly running.
    """

    name = "gated"

    def prepare(self, threads: int) -> None:
        super().prepare(threads)
        pids = os.environ.get("MLPBENCH_TEST_PIDS")
        if pids:
            with open(pids, "a") as f:
                f.write(f"{os.getpid()}\n")

    def build(self, spec, weights, seed):  # noqa: ANN001, ANN201
        self._seed = seed
        super().build(spec, weights, seed)

    def train_epoch(self, X, y, batches):  # noqa: ANN001, ANN201
        gate = os.environ.get("MLPBENCH_TEST_GATE")
        if gate and self._seed != 0:
            while not Path(gate).exists():
                time.sleep(0.05)
        return super().train_epoch(X, y, batches)


class Spawning(NumpyMLP):
    """Starts a helper process in a session of its own (as a compiler's worker pool does), then trains slowly.

    The helper's pid goes to $MLPBENCH_TEST_PIDS; killing the run must end it too.
    """

    name = "spawning"

    def build(self, spec, weights, seed):  # noqa: ANN001, ANN201
        import subprocess

        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
        with open(os.environ["MLPBENCH_TEST_PIDS"], "a") as f:
            f.write(f"{helper.pid}\n")
        super().build(spec, weights, seed)

    def train_epoch(self, X, y, batches):  # noqa: ANN001, ANN201
        time.sleep(0.5)
        return super().train_epoch(X, y, batches)


class Slow(NumpyMLP):
    """The reference backend with 0.3 s added to every epoch, so a test can act while jobs run."""

    name = "slow"

    def train_epoch(self, X, y, batches):  # noqa: ANN001, ANN201
        time.sleep(0.3)
        return super().train_epoch(X, y, batches)
