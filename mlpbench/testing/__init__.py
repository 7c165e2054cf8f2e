"""The conformance kit: the backend contract, checked in-process, for built-in and third-party backends.

    from mlpbench.testing import check_backend
    check_backend(MyBackend)                    # raises ConformanceError at the first broken rule

    from mlpbench.testing import parametrize_backend_checks
    @parametrize_backend_checks(MyBackend)      # one pytest test per check
    def test_conformance(check):
        check()

Every check builds small networks on data it makes itself and compares what the backend
does with the NumPy reference backend (the built-in ``numpy``), which is exact by
construction. Only what the backend declares is checked: a loss it does not list is not
trained, a float32-only backend is compared in float32 with a looser tolerance (and the
check says so). The kit imports no framework itself: it calls ``prepare(threads=1)`` once
per kit run (one `backend_checks` call: one backend class and its options), as a worker
does, after putting the backend's ``worker_env`` into ``os.environ``. Where the
framework's rule differs from the spec, the class's `parity_notes` say so, and the
parity check of that optimizer is a known difference (a note under ``"batch_norm"``:
the running-statistics check, ``parity[batch_norm_running]``). Batch normalization is
checked where the class declares ``supports_batch_norm = True``; with False, `skip`
must decline batch_norm specs.

Modules: `kit` (the entry points), `run` (`KitRun`, what one run owns), `core` (the
exceptions and `Tolerances`), `data` (`make_data`, `reference_backend`) and the checks:
`checks_meta` (metadata, lazy import, skip), `checks_weights` (weights in and out,
predict), `checks_training` (training parity, given batches), `checks_behaviour`
(determinism, XOR, batch normalization at prediction time) and `checks_native` (native
mode: XOR with the backend's own loop, and its timing form; skipped with the `skip_mode`
reason where there is no native mode).
"""

from __future__ import annotations

from .core import CheckSkipped, ConformanceError, Tolerances
from .data import make_data, reference_backend
from .kit import backend_checks, check_backend, parametrize_backend_checks, pytest_params

__all__ = [
    "CheckSkipped",
    "ConformanceError",
    "Tolerances",
    "backend_checks",
    "check_backend",
    "make_data",
    "parametrize_backend_checks",
    "pytest_params",
    "reference_backend",
]
