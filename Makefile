# s3stagger — every target installs what it needs; a fresh clone needs no manual step.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# Node tools the tests use (package.json / package-lock.json): Mermaid's parser for the docs' diagrams.
NODE_STAMP := node_modules/.installed
HAVE_NPM := $(shell command -v npm 2>/dev/null)
# Tests run in parallel workers (pytest-xdist): most of the time of the e2e, local and iac layers is
# waiting on a pipeline, a server or terraform, not CPU. `make test PYTEST_WORKERS=0` runs serially.
PYTEST_WORKERS ?= 4
PYTEST := $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist worksteal
PY_SOURCES := src tests benchmarks scripts

# simulate / monitor parameters (seed-compatible)
BUCKET ?=
FILES ?= 10
ROWS ?= 50
WORKERS ?= 10
QUEUE ?=
STATE_MACHINE ?=
FUNCTION ?=
BENCH_ARGS ?=
DEMO_ARGS ?=
ENDPOINT ?=
ENDPOINT_FLAG := $(if $(ENDPOINT),--endpoint-url $(ENDPOINT))

.PHONY: help install node-tools lock test unit functional local e2e iac repo lint format format-check typecheck demo local-terraform bench-processor bench-downstream bench-pipeline bench-autoscale perf-test simulate monitor redrive chaos package terraform-docs checkov security clean

help: ## list targets
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

$(STAMP): $(UV) requirements/dev.txt pyproject.toml
	$(UV) pip sync --python $(BIN)/python --require-hashes requirements/dev.txt
	$(UV) pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## create .venv/ from the pinned lock and install s3stagger (editable)

lock: $(UV) ## re-pin requirements/*.txt from pyproject.toml (URL-free, hashed)
	$(UV) pip compile pyproject.toml --extra cli --extra local --extra dev --python-version 3.11 \
		--generate-hashes --no-header -o requirements/dev.txt
	$(UV) pip compile requirements/checkov.in --python-version 3.11 --generate-hashes --no-header \
		-o requirements/checkov.txt
	$(BIN)/python scripts/build_lambda_package.py lock

$(CHECKOV): $(UV) requirements/checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(UV) pip sync --python $(CHECKOV_VENV)/bin/python --require-hashes requirements/checkov.txt

checkov: $(CHECKOV) ## install checkov into its own venv

security: $(STAMP) $(CHECKOV) ## bandit on src/, checkov on terraform/, trivy config + fs when a trivy binary exists
	$(BIN)/bandit -q -r src -c pyproject.toml
	$(CHECKOV) -d terraform --compact --quiet
	@if command -v trivy >/dev/null 2>&1; then \
		trivy config --exit-code 1 terraform/ && trivy fs --exit-code 1 --scanners vuln,secret,misconfig .; \
	else \
		echo "trivy: skipped (no trivy binary on PATH; bandit and checkov ran)"; \
	fi

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

node-tools: $(NODE_STAMP) ## install the Node tools the tests use (Mermaid's parser) into node_modules/

lint: $(STAMP) ## ruff lint
	$(BIN)/ruff check $(PY_SOURCES)

format: $(STAMP) ## ruff format + autofix
	$(BIN)/ruff format $(PY_SOURCES)
	$(BIN)/ruff check --fix $(PY_SOURCES)

format-check: $(STAMP)
	$(BIN)/ruff format --check $(PY_SOURCES)

typecheck: $(STAMP) ## mypy (strict) on src/
	$(BIN)/mypy

# One layer of tests alone, without the coverage gate (tests/conftest.py marks each test by its folder).
unit: $(STAMP) ## tests/unit: pure logic, seconds
	$(PYTEST) tests/unit

functional: $(STAMP) ## tests/functional: one component against real local servers
	$(PYTEST) tests/functional

local: $(STAMP) ## tests/local: local mode's pieces on the embedded emulator
	$(PYTEST) tests/local

e2e: $(STAMP) ## tests/e2e: the whole local pipeline and the CLI
	$(PYTEST) tests/e2e

iac: $(STAMP) $(CHECKOV) ## tests/iac: Terraform sources, checkov, the Lambda package, terraform test
	$(PYTEST) tests/iac

repo: $(STAMP) $(if $(HAVE_NPM),$(NODE_STAMP)) ## tests/repo: pre-commit hooks over the tree, Mermaid diagrams
	$(PYTEST) tests/repo

test: lint format-check typecheck $(STAMP) $(CHECKOV) $(if $(HAVE_NPM),$(NODE_STAMP)) ## CI: lint, format check, mypy, every layer with the 90 % coverage gate
	$(PYTEST) --cov --cov-report=term --durations=15

demo: $(STAMP) ## the main job on the embedded emulator
	$(BIN)/s3stagger demo $(DEMO_ARGS)

# The demo on the resources Terraform builds: terraform/examples/local applied to the emulator.
# Terraform's progress and the live view go to stderr; the report is the last line, one JSON object.
local-terraform: $(STAMP) ## the demo on what `terraform apply` builds on the emulator (needs terraform)
	$(BIN)/s3stagger demo --via-terraform --json $(DEMO_ARGS)

bench-processor: $(STAMP) ## processor benchmark: one JSON line of figures
	$(BIN)/python benchmarks/bench_processor.py $(BENCH_ARGS)

bench-downstream: $(STAMP) ## simulator throughput against C / L: one JSON line of figures
	$(BIN)/python benchmarks/bench_downstream.py $(BENCH_ARGS)

bench-pipeline: $(STAMP) ## whole-pipeline benchmark on the demo workload: one JSON line of figures
	$(BIN)/python benchmarks/bench_pipeline.py $(BENCH_ARGS)

bench-autoscale: $(STAMP) ## autoscaler scenarios (capacity step, unknown capacity, queue mode, priority): PNG plots + one JSON line
	$(BIN)/python benchmarks/bench_autoscale.py $(BENCH_ARGS)

PERF_ARGS ?=
perf-test: $(STAMP) ## dispatchers x scenarios, plots + report [PERF_ARGS=--quick]; existing: BUCKET= QUEUE= STATE_MACHINE= FUNCTION= [ENDPOINT=]
	$(BIN)/s3stagger perf-test $(if $(BUCKET),--bucket "$(BUCKET)" --queue "$(QUEUE)" --state-machine "$(STATE_MACHINE)" --function "$(FUNCTION)" $(ENDPOINT_FLAG)) $(PERF_ARGS)

simulate: $(STAMP) ## upload generated CSV files: make simulate BUCKET= FILES= ROWS= WORKERS= [ENDPOINT=]
	$(BIN)/s3stagger simulate --bucket "$(BUCKET)" --files $(FILES) --rows $(ROWS) --workers $(WORKERS) $(ENDPOINT_FLAG)

monitor: $(STAMP) ## live view: make monitor QUEUE= STATE_MACHINE= FUNCTION= [ENDPOINT=]
	$(BIN)/s3stagger monitor --queue "$(QUEUE)" --state-machine "$(STATE_MACHINE)" --function "$(FUNCTION)" $(ENDPOINT_FLAG)

CHAOS_ARGS ?= --objects-per-kind 1000 --stack-objects 1000
CHAOS_TIMEOUT_S ?= 3600
chaos: $(STAMP) ## chaos suite: every fault kind over 1,000 objects (processor-level and on the full local stack), lost/duplicate accounting, redrive, at most CHAOS_TIMEOUT_S s; docs/chaos.{md,json,png}, one JSON line last
	timeout $(CHAOS_TIMEOUT_S) $(BIN)/python benchmarks/chaos.py $(CHAOS_ARGS)

REDRIVE_ARGS ?=
redrive: $(STAMP) ## move dead-lettered work back (priority DLQs, ingest DLQ by route): make redrive [ENDPOINT=] [REDRIVE_ARGS="--dry-run --key-prefix normal/ --limit 10"]
	$(BIN)/s3stagger redrive $(ENDPOINT_FLAG) $(REDRIVE_ARGS)

terraform-docs: $(STAMP) ## regenerate the inputs/outputs tables of the Terraform module READMEs
	$(BIN)/python scripts/terraform_docs.py

package: $(STAMP) ## build the Lambda deployment zip (python3.13, reproducible) into dist/
	$(BIN)/python scripts/build_lambda_package.py

clean: ## remove venvs and caches
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .coverage build dist
