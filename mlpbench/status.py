"""The one vocabulary of job statuses. Every record has exactly one of these."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """How a job ended. A `StrEnum`, so a status compares equal to its text in records and tables."""

    OK = "ok"  # trained and evaluated
    ERROR = "error"  # the backend or the task raised; the record holds the traceback
    CRASHED = "crashed"  # the worker process died (signal, abort, out of memory)
    TIMEOUT = "timeout"  # ran past --timeout; the worker was killed
    DIVERGED = "diverged"  # a non-finite loss or prediction
    SKIPPED = "skipped"  # the backend cannot run this spec; the record says why
    NOT_INSTALLED = "not_installed"  # the backend's framework cannot be imported here
    UNAVAILABLE = "unavailable"  # the task's data cannot be had here (a download without network)


#: Every status a finished job can have; a job without one of these is run again by --resume.
FINISHED = frozenset(Status)
#: Statuses that mean something went wrong: the run exits with status 1 when any job has one.
FAILED = frozenset({Status.ERROR, Status.CRASHED, Status.TIMEOUT, Status.DIVERGED})
