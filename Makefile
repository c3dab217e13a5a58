# The README's commands. Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := deployment/aws/requirements.lock
export DAGSTER_HOME := $(CURDIR)/dagster_home
# numpy's advice to back large arrays with huge pages, off unless the caller sets it: on a
# VM whose host backs guest memory lazily (Firecracker, where this was measured) a huge
# page's first touch is some 13x slower than small pages' (docs/engine.md, "Memory")
export NUMPY_MADVISE_HUGEPAGE ?= 0

.PHONY: run run-portfolio sweep dev test lint bench clean

# the runtime dependencies at the lock's versions, the ones the image installs, so the
# tests run what is deployed and a new release upstream changes nothing here until the
# lock is regenerated (deployment/aws/lock.sh); the dev tools at their newest compatible.
# Installed by uv (the same resolution as pip's, downloads in parallel; the byte-code
# compiled once here, as pip does, since the suite's many processes would each compile
# what they import where PYTHONDONTWRITEBYTECODE is set)
$(STAMP): pyproject.toml $(LOCK) $(VENV)/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'uv>=0.9,<1'
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python \
	    -e '.[dev]' --constraint $(VENV)/constraints.txt
	touch $(STAMP)

# the lock's name==version pins without their hashes (pip takes no hashes in constraints)
$(VENV)/constraints.txt: $(LOCK)
	mkdir -p $(VENV)
	sed -n 's/^\([A-Za-z0-9_.-]*==[^ ]*\).*/\1/p' $(LOCK) > $@

# the whole pipeline, each stage a run launched through the instance (see docs/dagster.md)
run: $(STAMP)
	$(BIN)/python -m dynalloc_dagster

# the same pipeline on the shipped six-asset portfolio (examples/global_six.yaml)
run-portfolio: $(STAMP)
	$(BIN)/python -m dynalloc_dagster --config examples/global_six.yaml

sweep: $(STAMP)
	$(BIN)/python -m engine

# Dagster's notices nobody here can act on: `dagster dev` is superseded by `dg dev` (the
# dg CLI is not a dependency) and backfill_policy is a beta parameter
QUIET := ignore:Function `dev_command` is superseded,ignore:Parameter `backfill_policy` of function `asset` is currently in beta

dev: $(STAMP)
	PYTHONWARNINGS='$(QUIET)' $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# the engine's numba kernels compiled first, one process per core (engine/precompile.py),
# instead of by every test worker that calls them; then each test module whole on one
# worker, the longest modules first; temporary files in /dev/shm when TMPDIR is unset and
# it has room (tests/conftest.py)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m engine.precompile
	$(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/engine_sweep.py
	$(BIN)/python bench/optimise.py
	$(BIN)/python bench/reports_stage.py
	$(BIN)/python bench/proposers.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/calibration.py
	$(BIN)/python bench/aws_vs_local.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
