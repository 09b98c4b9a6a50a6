# quantdag: `make demo` sets up and runs the pipeline offline; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
MLFLOW_PORT ?= 5000
UI_PORT ?= 3000
# The data dir (DuckDB file, MLflow store, Dagster home) is the configuration's `data_dir`, or
# $QUANTDAG_DATA_DIR (quantdag.config's data_path). DATA_DIR=dir, on the command line or in the
# environment, sets QUANTDAG_DATA_DIR for every target and every process they start.
ifneq ($(filter environment command,$(firstword $(origin DATA_DIR))),)
export QUANTDAG_DATA_DIR := $(abspath $(DATA_DIR))
endif
# Only the project's Python reads the configuration, so recipes ask it when they run (after `setup`
# has built the venv): D is the data dir, exported as QUANTDAG_DATA_DIR so every process agrees.
DATA_ENV = D="$$($(PY) -c 'from quantdag.config import load_config; print(load_config().data_path)')" \
	&& export QUANTDAG_DATA_DIR="$$D"
# ... and Dagster's home: $DAGSTER_HOME if you set it, else D/dagster_home; DAGSTER_ENV also writes the
# instance settings there from the configuration's `instance` section (pipelines/instance.py: SQLite, or
# PostgreSQL with $QUANTDAG_PG_PASSWORD, whose tables and pool rows it also prepares).
USER_DAGSTER_HOME := $(if $(filter environment command,$(firstword $(origin DAGSTER_HOME))),$(DAGSTER_HOME))
HOME_ENV = $(DATA_ENV) && export DAGSTER_HOME="$(or $(USER_DAGSTER_HOME),$$D/dagster_home)"
DAGSTER_ENV = $(HOME_ENV) && $(PY) -m pipelines.instance --home "$$DAGSTER_HOME"
# the test targets' home, known before the venv exists (their tests make their own instances)
export DAGSTER_HOME ?= $(or $(QUANTDAG_DATA_DIR),$(CURDIR)/data)/dagster_home
# cache bytecode: without it every process recompiles dagster, mlflow and ccxt from source
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo test test-fast ui dashboard mlflow-ui data-dir sim stream bench lock clean postgres postgres-stop

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install -q --python $(PY) -r requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	touch $@

# The test targets' instance: the shipped configuration's (SQLite); the tests make their own besides.
$(DAGSTER_HOME)/dagster.yaml: pipelines/dagster.yaml pipelines/instance.py quantdag.yaml | $(VENV)/.installed
	QUANTDAG_CONFIG="$(CURDIR)/quantdag.yaml" $(PY) -m pipelines.instance --home "$(DAGSTER_HOME)" && touch $@

demo: setup
	@$(DAGSTER_ENV) && $(PY) -m pipelines.demo

test: setup $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m pytest -q

test-fast: setup $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m pytest -q -m "not slow"

ui: setup
	@$(DAGSTER_ENV) && echo "data dir $$D, Dagster home $$DAGSTER_HOME" \
	  && exec $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

# The web dashboard on 127.0.0.1:$QUANTDAG_DASHBOARD_PORT (default 8050); refuses to start without
# QUANTDAG_DASHBOARD_PASSWORD (user: QUANTDAG_DASHBOARD_USER, default admin). README "Dashboard".
dashboard: setup
	@$(DATA_ENV) && exec $(PY) -m quantdag.dashboard

# First tags and relocates the store's experiments (python -m resources.mlflow; see resources/mlflow.py).
# MLflow 3.17's UI opens in its GenAI view until its sidebar switch says "Machine learning".
mlflow-ui: setup
	@$(DATA_ENV) && $(PY) -m resources.mlflow "$$D" \
	  && echo "MLflow store $$D/mlflow.db: http://127.0.0.1:$(MLFLOW_PORT)/#/experiments?workflowType=machine_learning" \
	  && exec $(VENV)/bin/mlflow ui --backend-store-uri "sqlite:///$$D/mlflow.db" \
	  --default-artifact-root "file://$$D/mlartifacts" --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1

# Prints the data dir and Dagster home that demo, ui and mlflow-ui use (creates nothing).
data-dir: setup
	@$(HOME_ENV) && echo "$$D" && echo "$$DAGSTER_HOME"

# A local PostgreSQL server (Debian's `postgresql` package) for `instance: {storage: postgres}`, on the
# configuration's port, database and role, its cluster in PG_DIR (default: the data dir's postgres/);
# scripts/postgres.sh prints the settings. `make postgres-stop` stops it.
PG_SETTINGS = eval "$$($(PY) -c 'from quantdag.config import load_config; p = load_config().instance.postgres; \
	print(f"port={p.port} db={p.db} user={p.user}")')" && dir="$(or $(PG_DIR),$$D/postgres)"
postgres: setup
	@$(DATA_ENV) && $(PG_SETTINGS) && scripts/postgres.sh start "$$dir" "$$port" "$$db" "$$user"

postgres-stop: setup
	@$(DATA_ENV) && $(PG_SETTINGS) && scripts/postgres.sh stop "$$dir"

sim: setup
	$(PY) -m quantdag.sim --port 8765 --seed 7

# Stream the configured markets' 1m candles over websockets (the simulator offline) until Ctrl-C;
# closed candles land in <data_dir>/landing and move into market.candles whenever the file is free.
stream: setup
	@$(DATA_ENV) && exec $(PY) -m quantdag.stream

bench: setup
	$(PY) benchmarks/pipeline.py

lock:
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	@if test -x $(PY); then $(DATA_ENV) || exit 1; else D="$(or $(QUANTDAG_DATA_DIR),$(CURDIR)/data)"; fi \
	  && echo "rm -rf $$D" && rm -rf -- "$$D"
