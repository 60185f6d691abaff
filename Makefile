# Every target builds .venv on first use, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format sandbox clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A local Pendo sandbox on port 8787 with the demo's fields, for trying a mapping by hand.
sandbox: $(STAMP)
	$(BIN)/python -m pendo_assets.sandbox --port 8787 --config pendo_assets/sandbox/demo_sandbox.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
