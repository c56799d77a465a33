# SignalSmith Organizations: `make run` to try it, `make test` to check it.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_DEFAULT := postgres://postgres@127.0.0.1:5432/signalsmith

.PHONY: run test lint format worker bench load venv migrate demo e2e topology topology-down faults

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

## run: set everything up and serve on http://127.0.0.1:8000 (SQLite, eager Celery, console email)
run: venv
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver 127.0.0.1:8000

## test: the whole suite; DATABASE_URL if set, else local PostgreSQL if it answers, else SQLite
test: venv
	@db="$${DATABASE_URL:-}"; \
	if [ -z "$$db" ]; then \
	  if $(BIN)/python -c "import psycopg; psycopg.connect('$(PG_DEFAULT)'.rsplit('/',1)[0]+'/postgres', connect_timeout=2).close()" 2>/dev/null; then \
	    db="$(PG_DEFAULT)"; else db="sqlite:///$(CURDIR)/var/test.sqlite3"; fi; \
	fi; \
	echo "make test: database $$db; redis $${REDIS_URL:-none (real-worker tests skipped)}"; \
	mkdir -p var; \
	DATABASE_URL="$$db" $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## worker: Celery worker with beat, against REDIS_URL (required)
worker: venv
	@test -n "$$REDIS_URL" || (echo "Set REDIS_URL, e.g. redis://127.0.0.1:6379/0"; exit 1)
	$(BIN)/celery -A config worker --beat --loglevel=info --concurrency=2

## bench: generate an org at scale in <db>_bench and measure it (BENCH_ARGS="--scale large --json var/bench.json")
bench: venv
	DATABASE_URL="$${DATABASE_URL:-$(PG_DEFAULT)}" $(BIN)/python manage.py bench $(BENCH_ARGS)

## load: 60 s, 50 users, gunicorn with 4 workers on 127.0.0.1 against the bench database
load: venv
	DATABASE_URL="$${DATABASE_URL:-$(PG_DEFAULT)}" $(BIN)/python tests/load/run.py

## e2e: the browser journeys only (Chromium at /usr/bin/chromium; screenshots in test-artifacts/)
e2e: venv
	DATABASE_URL="$${DATABASE_URL:-$(PG_DEFAULT)}" $(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

## topology: nginx :8500 → 2 gunicorn → PgBouncer :6432 → primary :5432 + streaming replica :5433; 2 workers, 1 beat
topology: venv
	PY=$(CURDIR)/$(BIN)/python DATABASE_URL="$${DATABASE_URL:-$(PG_DEFAULT)}" bash deploy/topology/topology.sh up

topology-down:
	DATABASE_URL="$${DATABASE_URL:-$(PG_DEFAULT)}" bash deploy/topology/topology.sh down

## faults: the topology under load while an app server, the replica and a worker fail (RUN_PG_RESTART=1 adds the primary)
faults: venv
	DATABASE_URL="$${DATABASE_URL:-$(PG_DEFAULT)}" $(BIN)/python tests/load/faults.py
