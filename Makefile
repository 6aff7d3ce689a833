# One entry point for installing, running every phase, and testing.
# Every target installs what it needs first and is quick when it is already there.

SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
RUN_DIR ?= $(CURDIR)/run
export RUN_DIR

.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- install

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed  ## create .venv with the project and its dev tools

# ---------------------------------------------------------------- infrastructure
# (see docs/infrastructure.md)

redis-install:  ## install redis-server from the Debian package when it is missing
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }

# ---------------------------------------------------------------- phase 1

# ---------------------------------------------------------------- checks

lint: venv  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

docs: venv  ## build the docs site strictly
	$(BIN)/mkdocs build --strict --site-dir $(CURDIR)/site

test: venv redis-install  ## lint, every test, and the docs build
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q
	$(BIN)/mkdocs build --strict --site-dir $(CURDIR)/site

.PHONY: help venv redis-install lint docs test
