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

.PHONY: help install lock test unit lint format format-check typecheck demo bench-processor bench-downstream bench-pipeline bench-autoscale simulate monitor package terraform-docs checkov clean

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

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

lint: $(STAMP) ## ruff lint
	$(BIN)/ruff check src tests benchmarks

format: $(STAMP) ## ruff format + autofix
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

format-check: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP) ## mypy (strict) on src/
	$(BIN)/mypy

unit: $(STAMP) ## pytest without the coverage gate
	$(BIN)/pytest -q

test: lint format-check typecheck $(STAMP) $(CHECKOV) ## lint, format check, mypy, pytest with the 90 % coverage gate
	$(BIN)/pytest -q --cov --cov-report=term

demo: $(STAMP) ## the main job on the embedded emulator
	$(BIN)/s3stagger demo $(DEMO_ARGS)

bench-processor: $(STAMP) ## processor benchmark: one JSON line of figures
	$(BIN)/python benchmarks/bench_processor.py $(BENCH_ARGS)

bench-downstream: $(STAMP) ## simulator throughput against C / L: one JSON line of figures
	$(BIN)/python benchmarks/bench_downstream.py $(BENCH_ARGS)

bench-pipeline: $(STAMP) ## whole-pipeline benchmark on the demo workload: one JSON line of figures
	$(BIN)/python benchmarks/bench_pipeline.py $(BENCH_ARGS)

bench-autoscale: $(STAMP) ## autoscaler scenarios (capacity step, unknown capacity, queue mode, priority): PNG plots + one JSON line
	$(BIN)/python benchmarks/bench_autoscale.py $(BENCH_ARGS)

simulate: $(STAMP) ## upload generated CSV files: make simulate BUCKET= FILES= ROWS= WORKERS= [ENDPOINT=]
	$(BIN)/s3stagger simulate --bucket "$(BUCKET)" --files $(FILES) --rows $(ROWS) --workers $(WORKERS) $(ENDPOINT_FLAG)

monitor: $(STAMP) ## live view: make monitor QUEUE= STATE_MACHINE= FUNCTION= [ENDPOINT=]
	$(BIN)/s3stagger monitor --queue "$(QUEUE)" --state-machine "$(STATE_MACHINE)" --function "$(FUNCTION)" $(ENDPOINT_FLAG)

terraform-docs: $(STAMP) ## regenerate the inputs/outputs tables of the Terraform module READMEs
	$(BIN)/python scripts/terraform_docs.py

package: $(STAMP) ## build the Lambda deployment zip (python3.13, reproducible) into dist/
	$(BIN)/python scripts/build_lambda_package.py

clean: ## remove venvs and caches
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache .coverage build dist
