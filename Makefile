# The two commands: `make repro` (the pipeline) and `make test` (the test suite).
# Both create or reuse .venv; no conda needed.
PYTHON ?= python3.11
VENV ?= .venv
CORES ?= 2
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(BIN):$(PATH)
# One BLAS thread per process (jobs run in parallel on 2 cores; more threads thrash).
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

LOCK := requirements.lock
LOCK_VENV ?= .venv-lock
LATEST_VENV ?= .venv-latest

.PHONY: repro test test-latest lock lint format install report figures clean-results

install: $(STAMP)

# .venv holds exactly the locked set (versions and hashes: the tested one); when the lock or
# pyproject changes it is rebuilt from scratch, so nothing stale survives in a reused .venv.
$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)"; exit 2; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	# torch is locked as the 2.13.0 CPU build; any other version pulls gigabytes of CUDA packages.
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Re-resolve the lock to the newest releases that pyproject's ranges allow (then run make test).
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
		$(LOCK_VENV)/bin/python -m pip install --quiet pip-tools==7.6.2; }
	$(LOCK_VENV)/bin/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe \
		--strip-extras --extra dev --extra smt --no-emit-index-url --no-emit-find-links \
		--output-file $(LOCK) pyproject.toml
	$(PYTHON) tools/deps.py environment

# Early warning: the newest release of every dependency (no lock, no upper bounds; torch stays
# 2.13.0) in a throwaway venv, then the test suite without the notebooks.
test-latest:
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(PYTHON) tools/deps.py latest > $(LATEST_VENV)/latest.txt
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet -r $(LATEST_VENV)/latest.txt
	$(LATEST_VENV)/bin/python -m pip install --quiet --no-deps -e .
	$(LATEST_VENV)/bin/python -m pip list --format=freeze | \
		grep -iE '^(highspy|z3-solver|cvc5|pysmt|maraboupy|numpy|scipy|torch|onnx|onnxruntime)=='
	$(LATEST_VENV)/bin/python -m pytest -n $(CORES) -m "not slow" -p no:cacheprovider

# The pipeline, then its HTML report (results/report.html); results/run.json records the commit,
# this invocation's wall time and the jobs' summed cost from their benchmark files (make figures
# puts them beside the claims in the README).
repro: $(STAMP)
	@start=$$(date +%s); snakemake --cores $(CORES) && \
	snakemake --report results/report.html && \
	$(BIN)/python tools/run_record.py "$$(( $$(date +%s) - start ))"

report: $(STAMP)
	snakemake --report results/report.html

# Copy the last run's figures and claims table to the committed snapshot the README shows.
figures: $(STAMP)
	$(BIN)/python tools/snapshot.py

test: $(STAMP)
	ruff check paper_repro tests benchmarks tools
	ruff format --check paper_repro tests benchmarks tools
	# the unit tests and the four notebooks (default parameters: a tiny demo set under
	# results/demo) in one run, so that both workers stay busy; --dist loadfile keeps each
	# notebook's cells on one worker (one kernel per notebook)
	$(BIN)/python -m pytest -n $(CORES) --dist loadfile -m "not slow" --nbval-lax tests notebooks

lint: $(STAMP)
	ruff check paper_repro tests benchmarks tools
	snakemake --lint

format: $(STAMP)
	ruff format paper_repro tests benchmarks tools
	ruff check --fix paper_repro tests benchmarks tools

clean-results:
	rm -rf results .snakemake
