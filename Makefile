# Kuntur — one entry point for every routine task. `make test` is what CI runs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv tools test test-fast lint demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,eval]'
	touch $(STAMP)

## tools: Debian's `prometheus` package (promtool + prometheus) for the rule and scrape tests.
## Only the binaries are wanted: a temporary policy-rc.d keeps the package from starting its
## service, which is then disabled so it does not start at boot either (tests run their own).
tools:
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null; then :; \
	elif ! command -v apt-get >/dev/null; then echo "make tools: no apt-get; install Prometheus (promtool) by hand" >&2; \
	else \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); policy=/usr/sbin/policy-rc.d; added=; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' | $$sudo tee $$policy >/dev/null; \
	    $$sudo chmod 755 $$policy; added=1; fi; \
	  $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends prometheus; rc=$$?; \
	  [ -z "$$added" ] || $$sudo rm -f $$policy; \
	  [ $$rc -ne 0 ] || $$sudo systemctl --root=/ disable prometheus.service >/dev/null 2>&1 \
	    || $$sudo update-rc.d prometheus disable >/dev/null 2>&1 || true; \
	  exit $$rc; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

## test: lint + the whole suite (unit and end-to-end on a real Tansu broker)
test: venv lint tools
	$(BIN)/python -m pytest -q

## test-fast: skip the slow end-to-end tests
test-fast: venv tools
	$(BIN)/python -m pytest -q -m 'not slow'

## demo: embedded broker + worker + simulator, live summary, stops by itself
demo: venv
	$(BIN)/kuntur demo

## bench: throughput/latency/scale-out/state/profile benchmarks; tables on stdout, JSON in bench/results/
bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache data build *.egg-info
