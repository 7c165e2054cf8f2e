# The README's two quick-start commands: `make bench` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: bench quick test lint benchmarks clean chromium

$(STAMP): pyproject.toml examples/jax_backend/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned to 2.13.0 (CPU build); an unpinned torch pulls several GB of CUDA packages.
	$(PY) -m pip install --quiet -e ".[all]"
	# The out-of-tree plugin example (a JAX backend), installed the way a user installs a plugin.
	$(PY) -m pip install --quiet -e examples/jax_backend
	touch $(STAMP)

bench: $(STAMP)  ## set up and run the default benchmark
	$(PY) run_bench.py

quick: $(STAMP)
	$(PY) run_bench.py --quick

test: $(STAMP) chromium  ## set up and run the test suite
	# One pytest process per core (pytest-xdist), a test file per process so that a module's shared
	# run (its fixture) is made once; most tests wait on the worker subprocesses they start.
	$(PY) -m pytest -q -n auto --dist loadfile

# Headless Chromium for the report's real-browser test; the test skips with a reason where it cannot be had.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: the browser test will be skipped"; \
	  else echo "chromium not found and cannot be installed here: the browser test will be skipped"; fi; }

lint: $(STAMP)  ## ruff: lint and formatting
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

benchmarks: $(STAMP)  ## time one epoch per backend and task, print the comparison table
	$(PY) -m pytest tests/benchmarks --benchmark-enable --benchmark-only --benchmark-columns=min,median,iqr,rounds

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks
