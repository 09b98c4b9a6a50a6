# quantdag: `make demo` sets up and runs the pipeline offline; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(DATA_DIR)/dagster_home
UV_VERSION := 0.13.9
# cache bytecode: without it every process recompiles dagster, mlflow and ccxt from source
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo test test-fast ui mlflow-ui sim bench lock clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install -q --python $(PY) -r requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	touch $@

$(DAGSTER_HOME)/dagster.yaml: pipelines/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp pipelines/dagster.yaml $@

demo: setup $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m pipelines.demo --data-dir $(DATA_DIR)

test: setup $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m pytest -q

test-fast: setup $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m pytest -q -m "not slow"

ui: setup $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

mlflow-ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(DATA_DIR)/mlflow.db \
	  --default-artifact-root file://$(DATA_DIR)/mlartifacts --host 127.0.0.1 --port 5000 --workers 1

sim: setup
	$(PY) -m quantdag.sim --port 8765 --seed 7

bench: setup
	$(PY) benchmarks/pipeline.py

lock:
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(DATA_DIR)
