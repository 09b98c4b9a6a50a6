"""MlflowResource on a real sqlite store: runs, tags, experiment kind, a relocatable data dir."""

import shutil
from pathlib import Path

import dagster as dg
import mlflow
import pytest

from resources import MlflowResource


def test_mlflow_resource_store_is_sqlite_file_with_artifacts_beside_it(tmp_path):
    res = MlflowResource.at(tmp_path)
    with res.start_run(None, "unit", run_name="r1", tags={"k": "v"}) as run:
        mlflow.log_param("fast", 10)
        mlflow.log_metric("sharpe", 1.25)
        mlflow.log_text("hello", "notes/hello.txt")
    assert (tmp_path / "mlflow.db").is_file()
    client = mlflow.MlflowClient(res.tracking_uri)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params["fast"] == "10" and got.data.metrics["sharpe"] == 1.25
    assert got.data.tags["k"] == "v"
    artifact = tmp_path / "mlartifacts" / "unit" / run.info.run_id / "artifacts" / "notes" / "hello.txt"
    assert artifact.read_text() == "hello"


def test_mlflow_run_is_tagged_with_dagster_run_asset_and_partition(tmp_path):
    res = MlflowResource.at(tmp_path)
    seen = {}

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["p1"]))
    def tracked(context: dg.AssetExecutionContext, mlflow_store: MlflowResource) -> None:
        with mlflow_store.start_run(context, "unit") as run:
            seen["run_id"] = run.info.run_id
            seen["dagster_run_id"] = context.run_id

    with dg.instance_for_test() as instance:  # an explicit instance: an ephemeral one can be collected mid-run
        assert dg.materialize([tracked], resources={"mlflow_store": res}, partition_key="p1", instance=instance).success
    tags = mlflow.MlflowClient(res.tracking_uri).get_run(seen["run_id"]).data.tags
    assert tags["dagster_run_id"] == seen["dagster_run_id"]
    assert tags["dagster_asset_key"] == "tracked"
    assert tags["dagster_partition"] == "p1"


def test_mlflow_run_ends_failed_when_body_raises(tmp_path):
    res = MlflowResource.at(tmp_path)
    run_id = None
    try:
        with res.start_run(None, "unit") as run:
            run_id = run.info.run_id
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert mlflow.MlflowClient(res.tracking_uri).get_run(run_id).info.status == "FAILED"


# ---- experiment kind: MLflow 3.x opens an experiment as GenAI unless it is model development ----


def test_mlflow_experiment_created_by_resource_is_tagged_model_development(tmp_path):
    res = MlflowResource.at(tmp_path)
    exp_id = res.experiment_id("backtests")
    tags = mlflow.MlflowClient(res.tracking_uri).get_experiment(exp_id).tags
    # the tag and value MLflow 3.17's UI reads and writes (server/js: "mlflow.experimentKind")
    assert tags.get("mlflow.experimentKind") == "custom_model_development"


def test_mlflow_existing_experiment_without_kind_is_tagged_on_use_and_user_choice_kept(tmp_path):
    res = MlflowResource.at(tmp_path)
    res.experiment_id("seed")  # creates the store as the pipeline does
    client = mlflow.MlflowClient(res.tracking_uri)
    old = client.create_experiment("old", artifact_location=f"{res.artifact_root}/old")  # as before the fix: no tag
    chosen = client.create_experiment("chosen", artifact_location=f"{res.artifact_root}/chosen",
                                      tags={"mlflow.experimentKind": "genai_development"})
    with res.start_run(None, "old"):
        pass
    res.experiment_id("chosen")
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"
    assert client.get_experiment(chosen).tags["mlflow.experimentKind"] == "genai_development"


def test_mlflow_new_store_default_experiment_lives_under_its_artifact_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's own default would be ./mlruns of the working directory
    res = MlflowResource.at(tmp_path / "data")
    res.experiment_id("unit")
    default = mlflow.MlflowClient(res.tracking_uri).get_experiment("0")
    assert default.artifact_location == f"{res.artifact_root}/0"


# ---- relocatable data dir: a copied store writes into the copy, never the original ----


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _log_run(res, experiment, name):
    with res.start_run(None, experiment, run_name=name) as run:
        mlflow.log_text(name, "notes/name.txt")
    return run.info.run_id


def test_mlflow_store_copied_to_new_dir_writes_artifacts_under_new_dir_only(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    old_run = _log_run(MlflowResource.at(a), "backtests", "old")
    shutil.copytree(a, b)
    before = _files(a)
    res_b = MlflowResource.at(b)
    new_run = _log_run(res_b, "backtests", "new")
    assert (b / "mlartifacts" / "backtests" / new_run / "artifacts" / "notes" / "name.txt").read_text() == "new"
    assert _files(a) == before  # nothing new in the original
    client = mlflow.MlflowClient(res_b.tracking_uri)
    assert client.get_experiment_by_name("backtests").artifact_location == f"{res_b.artifact_root}/backtests"
    # the copied run's artifacts are read from the copy: the original can go
    assert client.get_run(old_run).info.artifact_uri == f"{res_b.artifact_root}/backtests/{old_run}/artifacts"
    shutil.rmtree(a)
    got = mlflow.artifacts.download_artifacts(run_id=old_run, artifact_path="notes/name.txt", tracking_uri=res_b.tracking_uri,
                                              dst_path=str(tmp_path / "dl"))
    assert Path(got).read_text() == "old"


def test_mlflow_store_db_copied_without_artifacts_keeps_old_runs_and_writes_new_ones_locally(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    res_a = MlflowResource.at(a)
    old_run = _log_run(res_a, "backtests", "old")
    b.mkdir()
    shutil.copy(a / "mlflow.db", b / "mlflow.db")  # the artifacts stayed in a
    before = _files(a)
    res_b = MlflowResource.at(b)
    new_run = _log_run(res_b, "backtests", "new")
    client = mlflow.MlflowClient(res_b.tracking_uri)
    assert client.get_run(new_run).info.artifact_uri == f"{res_b.artifact_root}/backtests/{new_run}/artifacts"
    assert (b / "mlartifacts" / "backtests" / new_run / "artifacts" / "notes" / "name.txt").is_file()
    assert client.get_run(old_run).info.artifact_uri == f"{res_a.artifact_root}/backtests/{old_run}/artifacts"
    assert _files(a) == before


def test_mlflow_adopt_store_cli_relocates_and_tags_every_experiment_of_a_copied_dir(tmp_path, capsys):
    from resources.mlflow import main

    a, b = tmp_path / "a", tmp_path / "b"
    res_a = MlflowResource.at(a)
    for name in ("backtests", "optimization"):
        _log_run(res_a, name, "r")
    untagged = mlflow.MlflowClient(res_a.tracking_uri).create_experiment("manual", artifact_location=f"{res_a.artifact_root}/manual")
    shutil.copytree(a, b)
    assert main([str(b)]) == 0
    assert "backtests" in capsys.readouterr().out
    res_b = MlflowResource.at(b)
    client = mlflow.MlflowClient(res_b.tracking_uri)
    for name in ("backtests", "optimization", "manual"):
        exp = client.get_experiment_by_name(name)
        assert exp.artifact_location == f"{res_b.artifact_root}/{name}", name
    assert client.get_experiment(untagged).tags["mlflow.experimentKind"] == "custom_model_development"


# ---- what the assets' metadata shows in Dagster: links into the MLflow UI, readable metrics ----


def test_mlflow_run_link_opens_run_page_in_model_view_and_drops_credentials(monkeypatch):
    from assets.common import mlflow_run_link

    monkeypatch.delenv("QUANTDAG_MLFLOW_UI", raising=False)
    link = mlflow_run_link("3", "abc123")
    assert isinstance(link, dg.UrlMetadataValue)
    assert link.url == "http://127.0.0.1:5000/#/experiments/3/runs/abc123?workflowType=machine_learning"
    monkeypatch.setenv("QUANTDAG_MLFLOW_UI", "https://bob:s3cret-canary@mlflow.example.com:8443/team/")
    url = mlflow_run_link("3", "abc123").url
    assert url == "https://mlflow.example.com:8443/team/#/experiments/3/runs/abc123?workflowType=machine_learning"
    assert "s3cret-canary" not in url and "bob" not in url


def test_metrics_table_fractions_shown_as_labelled_percentages_per_symbol_tf_market():
    import numpy as np

    from assets.common import metrics_table

    table = metrics_table(
        {"BTC/USDT:1h": {"total_return": np.float64(0.1234), "sharpe": np.float64(1.23456), "max_drawdown": 0.05, "n_trades": np.int64(7)},
         "ETH/USDT:1h": {"total_return": -0.5, "sharpe": float("nan"), "max_drawdown": 0.6, "n_trades": 0}},
        ("total_return", "sharpe", "max_drawdown", "n_trades"),
    )
    cols = {c.name: c for c in table.schema.columns}
    assert list(cols) == ["market", "total_return %", "sharpe", "max_drawdown %", "n_trades"]
    assert cols["total_return %"].type == "float" and cols["n_trades"].type == "int"
    assert [r.data for r in table.records] == [
        {"market": "BTC/USDT:1h", "total_return %": 12.34, "sharpe": 1.235, "max_drawdown %": 5.0, "n_trades": 7},
        {"market": "ETH/USDT:1h", "total_return %": -50.0, "sharpe": None, "max_drawdown %": 60.0, "n_trades": 0},
    ]


# ---- make demo / ui / mlflow-ui use the configuration's data dir (DATA_DIR overrides it) ----

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path, data_dir):
    import yaml

    cfg = tmp_path / "quantdag.yaml"
    cfg.write_text(yaml.safe_dump({
        "data_dir": str(data_dir),
        "universe": {"markets": [{"symbol": "BTC/USDT"}], "research_markets": ["BTC/USDT:1h"]},
    }))
    return cfg


def _make(target, *variables, env, **popen):
    """``make target`` with this interpreter's venv (already set up: never reinstalled by the test)."""
    import os
    import subprocess
    import sys

    venv = Path(sys.executable).parent.parent
    args = ["make", "-s", "-C", str(ROOT), "-o", f"{venv}/.installed", f"VENV={venv}", f"PY={sys.executable}", *variables, target]
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "QUANTDAG_DATA_DIR", "DAGSTER_HOME", "QUANTDAG_CONFIG")} | env
    if popen:
        return subprocess.Popen(args, env=env, **popen)
    return subprocess.run(args, check=False, env=env, capture_output=True, text=True, timeout=300)


def test_make_data_dir_without_DATA_DIR_is_the_configured_data_dir(tmp_path):
    from quantdag.config import load_config

    cfg = _config(tmp_path, "research-data")  # relative: against the file's folder
    out = _make("data-dir", env={"QUANTDAG_CONFIG": str(cfg)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(load_config(cfg).data_path), str(tmp_path / "research-data" / "dagster_home")]
    assert not (tmp_path / "research-data").exists()  # printing creates nothing


def test_make_data_dir_with_DATA_DIR_moves_data_and_dagster_home_together(tmp_path):
    cfg = _config(tmp_path, "research-data")
    for how in ("command line", "environment"):
        target = tmp_path / how.replace(" ", "_")
        variables, env = ([f"DATA_DIR={target}"], {}) if how == "command line" else ([], {"DATA_DIR": str(target)})
        out = _make("data-dir", *variables, env={"QUANTDAG_CONFIG": str(cfg), **env})
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [str(target), str(target / "dagster_home")], how


@pytest.mark.slow
def test_make_mlflow_ui_serves_the_configured_data_dirs_store_adopted_after_a_copy(tmp_path):
    import json
    import os
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    old, data = tmp_path / "old", tmp_path / "data"
    _log_run(MlflowResource.at(old), "backtests", "r")
    shutil.copytree(old, data)
    cfg = _config(tmp_path, data)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "mlflow-ui.log").open("w")
    proc = _make("mlflow-ui", f"MLFLOW_PORT={port}", env={"QUANTDAG_CONFIG": str(cfg)},
                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=backtests"
        deadline, exp = time.monotonic() + 180, None
        while exp is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    exp = json.load(r)["experiment"]
            except OSError:
                time.sleep(1)
        assert exp is not None, (tmp_path / "mlflow-ui.log").read_text()
        assert exp["artifact_location"] == f"{(data / 'mlartifacts').as_uri()}/backtests"
        assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in exp["tags"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # make, and the MLflow server it started in its session
        proc.wait(timeout=60)
        log.close()
