"""deploy/: what can be checked without Docker, Helm or a cluster (see deploy/README.md).

The files parse and agree with each other and with the project's instance settings, hold no secret,
and the deployment's instance (deploy/dagster.yaml, PostgreSQL from the environment) loads against a
real server, where `dagster instance info` and `dagster definitions validate` pass.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.instance import PG_SCHEME, PG_STORAGES, prepare_instance, template

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PG_ENV = ("QUANTDAG_PG_HOST", "QUANTDAG_PG_PORT", "QUANTDAG_PG_DB", "QUANTDAG_PG_USER", "QUANTDAG_PG_PASSWORD")


def _load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def _env_refs(node: object) -> set[str]:
    """Every ``{env: NAME}`` of a Dagster config tree."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node))
    return set()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


def test_every_file_parses_and_none_holds_a_password():
    for name in ("dagster.yaml", "workspace.yaml", "docker-compose.yml", "helm/values.yaml"):
        assert isinstance(_load(name), dict), name
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"(?i)password:\s*['\"]?[A-Za-z0-9]", text.replace("password: {env: QUANTDAG_PG_PASSWORD}", "")), path
            assert not re.search(r"postgres(ql)?(\+\w+)?://[^/\s]*:[^@\s]*@", text), path  # no URL with credentials


def test_the_instance_is_postgres_from_the_environment_with_the_projects_pools_and_monitoring():
    instance = _load("dagster.yaml")
    storages = {k: v for k, v in instance.items() if k.endswith("storage")}
    assert {k: (v["module"], v["class"]) for k, v in storages.items()} == PG_STORAGES  # the pool-safe event log included
    for block in storages.values():
        assert block["config"] == {"postgres_db": {
            "hostname": {"env": "QUANTDAG_PG_HOST"}, "port": {"env": "QUANTDAG_PG_PORT"}, "db_name": {"env": "QUANTDAG_PG_DB"},
            "username": {"env": "QUANTDAG_PG_USER"}, "password": {"env": "QUANTDAG_PG_PASSWORD"}, "scheme": PG_SCHEME}}
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    shared = template()
    for key in ("concurrency", "run_monitoring", "telemetry"):
        assert instance[key] == shared[key], key


def test_compose_services_agree_with_the_instance_and_the_workspace():
    compose = _load("docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"postgres", "code", "webserver", "daemon"}
    needed = _env_refs(_load("dagster.yaml"))
    assert needed == set(PG_ENV)
    for name in ("code", "webserver", "daemon"):
        env = services[name]["environment"]
        assert needed <= set(env), (name, needed - set(env))
        assert env["DAGSTER_HOME"] == "/opt/dagster/dagster_home"
        assert env["QUANTDAG_PG_PASSWORD"].startswith("${QUANTDAG_PG_PASSWORD:?")  # from the shell, required
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert {"postgres"} <= set(services[name]["depends_on"])
    env = services["code"]["environment"]
    pg = services["postgres"]
    assert env["QUANTDAG_PG_HOST"] == "postgres" and env["QUANTDAG_PG_PORT"] == "5432"
    assert pg["environment"]["POSTGRES_DB"] == env["QUANTDAG_PG_DB"]
    assert pg["environment"]["POSTGRES_USER"] == env["QUANTDAG_PG_USER"]
    assert pg["environment"]["POSTGRES_PASSWORD"].startswith("${QUANTDAG_PG_PASSWORD:?")
    # the code location serves the module and port the workspace names, after preparing the instance
    (location,) = _load("workspace.yaml")["load_from"]
    server = location["grpc_server"]
    assert server["host"] == "code" and server["location_name"] == "quantdag"
    command = shlex.split(services["code"]["command"][-1])
    assert command[:3] == ["python", "-m", "pipelines.instance"] and "--prepare" in command
    grpc = command[command.index("dagster"):]
    assert grpc[:3] == ["dagster", "api", "grpc"]
    assert grpc[grpc.index("-p") + 1] == str(server["port"]) and grpc[grpc.index("-m") + 1] == "pipelines.definitions"
    # only the code location mounts the data (the one DuckDB writer); the others read the workspace from it
    assert env["QUANTDAG_DATA_DIR"] == "/data" and any(v.endswith(":/data") for v in services["code"]["volumes"])
    for name in ("webserver", "daemon"):
        assert "deploy/workspace.yaml" in services[name]["command"]
        assert not any(v.endswith(":/data") for v in services[name]["volumes"])
    assert services["webserver"]["ports"] == ["127.0.0.1:3000:3000"]  # loopback only: no login
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "-r requirements.lock" in dockerfile and "-e ." in dockerfile and "deploy/dagster.yaml" in dockerfile


def test_helm_values_mirror_the_instance():
    values = _load("helm/values.yaml")
    shared = template()
    assert values["concurrency"] == {"pools": {"defaultLimit": shared["concurrency"]["pools"]["default_limit"]},
                                     "runs": {"maxConcurrentRuns": shared["concurrency"]["runs"]["max_concurrent_runs"]}}
    assert values["dagsterDaemon"]["runMonitoring"] == {_camel(k): v for k, v in shared["run_monitoring"].items()}
    assert values["telemetry"] == shared["telemetry"]
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert values["postgresql"]["postgresqlScheme"] == PG_SCHEME
    assert "postgresqlPassword" not in values["postgresql"] and values["generatePostgresqlPasswordSecret"] is False
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "pipelines.definitions"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert {m["mountPath"] for m in deployment["volumeMounts"]} == {"/data"}
    assert {"name": "QUANTDAG_DATA_DIR", "value": "/data"} in deployment["env"]


@pytest.mark.slow
def test_dagster_validates_the_definitions_against_the_deployments_postgres_instance(tmp_path, postgres, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    env = dict(zip(PG_ENV, (postgres.host, str(postgres.port), postgres.create_database("deploy"), postgres.user,
                            postgres.password)))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with dg.DagsterInstance.from_config(str(home)) as instance:  # what the code service's --prepare does
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PoolSafePostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        prepare_instance(instance)
        assert [p.name for p in instance.event_log_storage.get_pool_limits()] == ["duckdb"]
    # the code location's module, validated with the deployment's instance ($DAGSTER_HOME) as the CLI loads it
    run_env = {**os.environ, **env, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT)}
    dagster = str(Path(sys.executable).with_name("dagster"))
    validate = subprocess.run([dagster, "definitions", "validate", "-m", "pipelines.definitions", "--verbose"], cwd=ROOT,
                              env=run_env, capture_output=True, text=True, timeout=180)
    out = validate.stdout + validate.stderr
    assert validate.returncode == 0 and "Validation successful" in out, out[-3000:]
