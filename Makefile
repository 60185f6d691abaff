# Every target builds .venv on first use, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format sandbox demo dev clean bench scale-demo

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

# The main job: demo warehouse -> Dagster (real instance in .dagster_home) -> local Pendo sandbox.
demo: $(STAMP)
	$(BIN)/python -m pendo_assets.demo

# The sandbox plus `dagster dev` on the same data: http://127.0.0.1:3000
dev: $(STAMP)
	$(BIN)/python -m pendo_assets.demo --dev

# A local Pendo sandbox on port 8787 with the demo's fields, for trying a mapping by hand.
sandbox: $(STAMP)
	$(BIN)/python -m pendo_assets.sandbox --port 8787 --config pendo_assets/sandbox/demo_sandbox.yaml

# Metadata through `dagster asset materialize` beside the loop a user would write (1M rows
# first, unchanged and 1% changed, a 3M memory point); the engine in-process and track pacing
# under a cap; track events through the CLI beside a raw load generator; value conversion of a
# million PostgreSQL timestamps against the vectorised floor. About 14 minutes; needs the local
# PostgreSQL; results also go to benchmarks/latest_*results.md. Last, the shared rate budget's
# cost, fairness and pause at 100 requests/s from 8 processes, beside pyrate-limiter.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sync.py
	$(BIN)/python benchmarks/bench_sync_cli.py
	$(BIN)/python benchmarks/bench_track_cli.py
	$(BIN)/python benchmarks/bench_values.py
	$(BIN)/python benchmarks/bench_rate_budget.py

# Backfills of 8 days of events and of visitor metadata on two Celery workers (local RabbitMQ),
# dagster-daemon and the instance on the local PostgreSQL (deploy/dagster.yaml), under one cap
# of 40 requests/s, measured at the sandbox; then again with a worker SIGKILLed mid-backfill.
# About 4 minutes; needs PostgreSQL and RabbitMQ on 127.0.0.1.
scale-demo: $(STAMP)
	$(BIN)/python -m pendo_assets.scale_demo; backfill=$$?; \
	$(BIN)/python -m pendo_assets.scale_demo --kill-worker && exit $$backfill

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
