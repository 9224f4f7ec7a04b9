# The two commands a newcomer needs are `make run` and `make test`; the rest are what they call.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=

.PHONY: run serve test lint unit bench audit system-deps venv clean help

help:
	@echo "make run          the full local go-live rehearsal (golive rehearse deploy/golive/rehearsal.yaml)"
	@echo "make test         set up everything and run the whole suite (lint first)"
	@echo "make serve        just the API on embedded PostgreSQL, seeded, at http://$(HOST):$(PORT)"
	@echo "make lint         ruff, ruff format --check, mypy, import-linter"
	@echo "make unit         the unit tests alone (PYTEST_ARGS=... passes options to pytest)"
	@echo "make bench        every benchmark in bench/ in turn; figures go to bench/RESULTS.md"
	@echo "make audit        security scan: pip-audit, bandit, CycloneDX SBOM, summary in .data/audit/<version>/"
	@echo "make venv         the virtualenv in $(VENV) with the pinned packages"
	@echo "make system-deps  the Debian packages the suite and the rehearsal use (as root)"
	@echo "make clean        remove the virtualenv, .data and the tools' caches"
	@echo "make help         this list"

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is required"' \
	  || { echo "error: $(PYTHON) is older than 3.11; set PYTHON=python3.11"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); \
	  else echo "error: python3-venv is missing; install it (apt-get install python3-venv)"; exit 2; fi; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,train]'
	@touch $(STAMP)

# Debian packages the suite and the rehearsal use. Installed only when running as root;
# elsewhere the tests that need them are skipped with the reason printed.
SYSTEM_PACKAGES := curl jq wrk haproxy prometheus prometheus-alertmanager chromium
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "note: missing Debian packages:$$missing (install them as root; dependent tests will skip)"; fi; \
	fi

# The full local go-live rehearsal: blue and green slots, HAProxy, embedded PostgreSQL,
# background load, switch, traffic stages, report.
run: venv system-deps
	$(BIN)/golive rehearse deploy/golive/rehearsal.yaml

# Just the API on the embedded PostgreSQL, seeded.
serve: venv
	$(BIN)/credit-assessment seed --clients 500
	$(BIN)/credit-assessment serve --host $(HOST) --port $(PORT)

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test: venv system-deps lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: venv system-deps
	$(BIN)/python -m bench.run_all

# The release's security scan: pip-audit on the pinned runtime dependencies, bandit on src/,
# a CycloneDX SBOM, and summary.json (counts by severity, each finding, the version scanned),
# with the reviewed ignores of deploy/security/audit-ignore.yaml. Fails on a blocking finding.
audit: venv
	$(BIN)/golive audit --out .data/audit

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
