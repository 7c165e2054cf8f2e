"""Writing results files so that a failure never leaves half a file or a raw traceback."""

from __future__ import annotations

import os
from pathlib import Path


class StoreWriteError(OSError):
    """A results file could not be written; the message says what happened, where, and how to continue."""

    def __init__(self, path: Path, cause: OSError) -> None:
        why = cause.strerror or str(cause)
        super().__init__(
            cause.errno,
            f"could not write to {path}: {why}. Every record written before this one is intact; "
            f"free space (or raise the limit), then continue with: run_bench.py run --resume {path.parent}",
        )


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write a derived file (text as UTF-8) under a temporary name and rename it: no reader sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one per process: writers never collide
    try:
        tmp.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))  # umask permissions
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreWriteError(path, exc) from exc
    except BaseException:  # an interrupt halfway: no temporary file left behind
        tmp.unlink(missing_ok=True)
        raise
