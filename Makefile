# Kuntur — one entry point for every routine task. `make test` is what CI runs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test test-fast lint demo clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

## test: lint + the whole suite (unit and end-to-end on a real Tansu broker)
test: venv lint
	$(BIN)/python -m pytest -q

## test-fast: skip the slow end-to-end tests
test-fast: venv
	$(BIN)/python -m pytest -q -m 'not slow'

## demo: embedded broker + worker + simulator, live summary, stops by itself
demo: venv
	$(BIN)/kuntur demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache data build *.egg-info
