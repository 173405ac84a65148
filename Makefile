PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint types pytest demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check vidpipe tests bench
	$(BIN)/ruff format --check vidpipe tests bench
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint types pytest

demo: $(STAMP)
	$(BIN)/vidpipe demo

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/importer.py
	$(BIN)/python bench/settings.py
	$(BIN)/python bench/download.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
