#!/usr/bin/env python3
"""The benchmark script: `python run_bench.py --help`. A thin wrapper over mlpbench.cli."""

import sys

from mlpbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
