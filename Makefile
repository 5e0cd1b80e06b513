# Two commands for a fresh machine:  `make run` (set up + a local federation)  and  `make test`.
# Everything installs into .venv from requirements.lock (exact versions) and pyproject.toml.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Flower state (local SuperLink, installed apps) stays inside the checkout.
export FLWR_HOME ?= $(CURDIR)/.flwr
# Flower would otherwise `uv sync` our dependencies (torch!) for every run.
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION := 1
SUPERNODES ?= 10
RUN_CONFIG ?=

.PHONY: setup run test lint benchmarks stop clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: setup
	$(BIN)/python -m server.launch --supernodes $(SUPERNODES) --output-dir $(CURDIR)/runs $(RUN_CONFIG)

test: setup
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m pytest

benchmarks: setup
	$(BIN)/python -m benchmarks.accuracy

stop:
	-$(BIN)/python -m server.launch --stop

clean: stop
	rm -rf $(VENV) .flwr
