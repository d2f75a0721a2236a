# qwen3vl-aws — every target sets up what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install dev test test-fast lint fmt apply destroy status demo bench clean help

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/qwen3vl-aws: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/qwen3vl-aws ## virtual environment with the toolkit (.venv)

apply: install ## stand up the endpoint (ARGS="--instance-type g6.xlarge --allow 203.0.113.7/32")
	$(BIN)/qwen3vl-aws apply $(ARGS)

destroy: install ## remove everything apply created (asks first)
	$(BIN)/qwen3vl-aws destroy $(ARGS)

status: install ## what is deployed
	$(BIN)/qwen3vl-aws status $(ARGS)

lint: install ## ruff and terraform fmt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/qwen3vl-aws-terraform fmt -check -recursive terraform

clean: ## remove virtual environments and caches
	rm -rf $(VENV) .venv-* .pytest_cache .ruff_cache
