# Clientele - the front door. `make report` and `make test` are all a newcomer needs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CONFIG ?= config/sample.yaml
RUN_ID ?=
RUN ?= reports/latest
PYTEST_ARGS ?=
BENCH_SIZES ?= S M L
LAB_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup report test lab sample pdf bench clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  (variables: CONFIG=$(CONFIG) RUN_ID=<name> PYTEST_ARGS='-k clv' BENCH_SIZES='S M')"

setup: $(STAMP) ## create .venv from pyproject.toml and register the Jupyter kernel (idempotent)

# --compile-bytecode: each notebook of a run imports pandas, scipy, scikit-learn ... in a fresh kernel. uv writes no
# .pyc files by default, and where Python may not write them (PYTHONDONTWRITEBYTECODE, a read-only .venv) every
# kernel compiles those libraries again: more than twice the import time.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name clientele --display-name "Python (clientele)" >/dev/null
	@touch $(STAMP)
	@echo "environment ready: $(VENV)"

report: setup ## run every notebook on CONFIG (default: the bundled sample) -> reports/<run_id>/index.html
	$(BIN)/analysis run --config $(CONFIG) $(if $(RUN_ID),--run-id $(RUN_ID))

test: setup ## run the test suite (unit, notebooks, browser)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lab: setup ## start JupyterLab with the project kernel (LAB_ARGS=--no-browser on a server)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

pdf: setup ## print a run (RUN=reports/<run_id>, default the latest) as one PDF with headless Chromium
	$(BIN)/analysis pdf --run $(RUN)

sample: setup ## regenerate data/sample/ with the synthetic generator
	$(BIN)/analysis sample --out data/sample

bench: setup ## time features vs hand-written DuckDB/polars/pandas and every step at S/M/L -> benchmarks/RESULTS.md (BENCH_SIZES="S M")
	$(BIN)/python benchmarks/run.py --sizes $(BENCH_SIZES)

clean: ## remove generated reports and caches (keeps .venv)
	rm -rf reports/*/ reports/.staging reports/latest .pytest_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +

distclean: clean ## also remove the virtual environment
	rm -rf $(VENV)
