"""``python -m mlpbench.worker``: the worker process (see `mlpbench.worker.child`)."""

from .child import main

main()
