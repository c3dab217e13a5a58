# The README's commands. Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/dagster_home

.PHONY: run sweep dev test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m dynalloc_dagster.pipeline

sweep: $(STAMP)
	$(BIN)/python -m engine

dev: $(STAMP)
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/engine_sweep.py
	$(BIN)/python bench/optimise.py
	$(BIN)/python bench/proposers.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
