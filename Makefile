# wardwatch: two commands on a fresh machine (Python 3.11+ and make):
#   make demo   - embedded broker + database, 24 simulated patients, the dashboard
#   make test   - the whole suite against real Mosquitto, PostgreSQL and headless Chromium
# Everything installs into .venv; nothing downloads at run time.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test lint bench clean install browser help

help:
	@echo "make demo [ARGS='--minutes 2 --speed 60']  run the pipeline on a simulated ward"
	@echo "make test                                  lint + the whole test suite"
	@echo "make bench                                 benchmarks (figures in docs/benchmarks.md)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "wardwatch needs Python 3.11+, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Browser tests drive Debian's Chromium (a test tool's own browser download needs the internet).
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "browser tests need Chromium at $(CHROMIUM): sudo apt-get install chromium"; \
	  fi; \
	fi

demo: $(STAMP)
	$(BIN)/wardwatch demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: $(STAMP) browser lint
	$(BIN)/python -m pytest -p no:cacheprovider $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)
	$(BIN)/python -m bench.signals
	$(BIN)/python -m bench.jobs
	$(BIN)/python -m bench.derive
	$(BIN)/python -m bench.faults
	$(BIN)/python -m bench.latency

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .hypothesis .import_linter_cache
