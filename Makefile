# Two commands for a fresh machine:  `make run` (set up + a local federation)  and  `make test`.
# Everything installs into .venv from requirements.lock (exact versions) and pyproject.toml; the Java
# client builds with Maven from Maven Central (exact versions in android_client/**/pom.xml).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
ORT_TRAINING_VENV := .venv-ort-training
MVN ?= mvn -B -q -f android_client/pom.xml -Dpython=$(CURDIR)/$(BIN)/python
# Flower state (local SuperLink, installed apps) stays inside the checkout.
export FLWR_HOME ?= $(CURDIR)/.flwr
# Flower would otherwise `uv sync` our dependencies (torch!) for every run.
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION := 1
SUPERNODES ?= 10
RUN_CONFIG ?=

.PHONY: setup ort-training run test container-test lint vectors vector-artifacts java benchmarks stop clean

setup: $(VENV)/.installed $(ORT_TRAINING_VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# ONNX Runtime *training* (backend ort-training) in its own venv: onnxruntime-training-cpu installs the same
# `onnxruntime` module as .venv's pinned 1.29 (docs/ort-training.md); no torch, 1-2 minutes from the registry
ort-training: $(ORT_TRAINING_VENV)/.installed

$(ORT_TRAINING_VENV)/.installed: requirements-ort-training.lock
	$(PYTHON) -m venv $(ORT_TRAINING_VENV)
	$(ORT_TRAINING_VENV)/bin/pip install --quiet --no-deps -r requirements-ort-training.lock
	touch $@

run: setup
	$(BIN)/python -m server.launch --supernodes $(SUPERNODES) --output-dir $(CURDIR)/runs $(RUN_CONFIG)

# ruff + hadolint, the shared test vectors' graphs, the Java client (JUnit), then the whole pytest suite
test: setup lint vector-artifacts java
	$(BIN)/python -m pytest

# Builds the server image with podman/buildah (a debootstrap stand-in for its base: no registry here)
# and runs a TLS federation against it (tests/container/); needs root, installs its tools with apt-get.
CONTAINER_TOOLS := podman buildah runc debootstrap
container-test: setup
	@missing=""; for tool in $(CONTAINER_TOOLS); do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(CONTAINER_TOOLS); fi
	FEDMEF_CONTAINER_TEST=1 $(BIN)/python -m pytest tests/container -v -s

lint: setup
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile

# regenerate the committed test vectors of the client contract (tests/vectors/README.md)
vectors: setup
	$(BIN)/python tests/vectors/generate.py

vector-artifacts: setup
	$(BIN)/python tests/vectors/generate.py --artifacts-only

# the Java core + the virtual-phone node jar; runs the core's JUnit tests against tests/vectors/
java: setup vector-artifacts
	$(MVN) install

benchmarks: setup
	$(BIN)/python -m benchmarks.accuracy

stop:
	-$(BIN)/python -m server.launch --stop

clean: stop
	rm -rf $(VENV) .flwr
