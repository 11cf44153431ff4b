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

.PHONY: repro test lint format install report clean-results

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: any other version pulls gigabytes of CUDA packages.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

repro: $(STAMP)
	snakemake --cores $(CORES)

report: $(STAMP)
	snakemake --report results/report.html

test: $(STAMP)
	ruff check paper_repro tests benchmarks
	ruff format --check paper_repro tests benchmarks
	$(BIN)/python -m pytest -n $(CORES) -m "not slow"
	# the four notebooks with their default parameters (a tiny demo set under results/demo);
	# --dist loadfile keeps each notebook's cells on one worker (one kernel per notebook)
	$(BIN)/python -m pytest -n $(CORES) --dist loadfile --nbval-lax notebooks

lint: $(STAMP)
	ruff check paper_repro tests benchmarks
	snakemake --lint

format: $(STAMP)
	ruff format paper_repro tests benchmarks
	ruff check --fix paper_repro tests benchmarks

clean-results:
	rm -rf results .snakemake
