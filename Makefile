# Kuntur — one entry point for every routine task. `make test` is what CI runs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv tools kafka java-tools browser test test-fast lint demo bench clean

## kafka: Apache Kafka 3.9 server jars (+ dependencies, a log4j binding) from Maven Central, once,
## into a git-ignored cache; the integration suite starts real KRaft brokers from them
## (stream/dev/kafka.py). Needs Java 17 and Maven: `make java-tools` installs them with apt-get.
KAFKA_POM := stream/dev/kafka.pom.xml
KAFKA_LIBS := .cache/kafka/libs
KAFKA_STAMP := $(KAFKA_LIBS)/.fetched

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

## browser: Debian's chromium + chromium-driver for the console's browser tests (Selenium drives them;
## Playwright's own browser download needs the internet). Only when missing.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif ! command -v apt-get >/dev/null; then echo "make browser: no apt-get; install chromium and chromedriver by hand" >&2; \
	else \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); $$sudo apt-get update -q && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver; \
	fi

kafka: $(KAFKA_STAMP)

$(KAFKA_STAMP): $(KAFKA_POM)
	@command -v java >/dev/null && command -v mvn >/dev/null || $(MAKE) --no-print-directory java-tools
	rm -rf $(KAFKA_LIBS).tmp
	mvn -q -B -f $(KAFKA_POM) dependency:copy-dependencies -DincludeScope=runtime \
	  -DoutputDirectory=$(CURDIR)/$(KAFKA_LIBS).tmp
	rm -rf $(KAFKA_LIBS) && mv $(KAFKA_LIBS).tmp $(KAFKA_LIBS)
	touch $(KAFKA_STAMP)

## java-tools: OpenJDK 17 and Maven from Debian (only when missing)
java-tools:
	@if ! command -v apt-get >/dev/null; then echo "make kafka: install Java 17 and Maven by hand" >&2; exit 1; fi
	sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); $$sudo apt-get update -q && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	  openjdk-17-jre-headless maven

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

## test: lint + the whole suite (unit tests; end-to-end and fault tests on Apache Kafka)
test: venv lint tools kafka browser
	$(BIN)/python -m pytest -q

## test-fast: skip the slow end-to-end tests
test-fast: venv tools kafka
	$(BIN)/python -m pytest -q -m 'not slow'

## demo: embedded broker + worker + simulator, live summary, stops by itself
demo: venv
	$(BIN)/kuntur demo

## bench: throughput/latency/scale-out/state/profile benchmarks; tables on stdout, JSON in bench/results/
bench: venv kafka
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache data build *.egg-info .cache
