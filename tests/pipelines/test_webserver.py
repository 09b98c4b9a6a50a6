"""The real `dagster dev` webserver + daemon loads the code location with every asset (GraphQL)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines.instance import write_instance_yaml

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_ASSETS = {"raw_candles", "candles", "indicators", "market_events", "signals", "backtests", "optimization", "paper_trades", "paper_drift_check"}
QUERY = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename ... on PythonError { message } } } } } "
    "assetNodes { assetKey { path } } }"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


@pytest.mark.slow
def test_dagster_dev_loads_code_location_with_all_assets(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    write_instance_yaml(home)
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        data = None
        while time.monotonic() < deadline:
            try:
                data = _graphql(port)["data"]
                entries = data["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    break
            except (OSError, KeyError, TypeError, ValueError):
                pass
            time.sleep(1)
        assert data is not None, "webserver never answered"
        entry = data["workspaceOrError"]["locationEntries"][0]
        assert entry["name"] == "quantdag"
        assert entry["loadStatus"] == "LOADED"
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
        assets = {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]}
        assert EXPECTED_ASSETS <= assets
        _dashboard_reads_runs(home, port)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _dashboard_reads_runs(home: Path, port: int) -> None:
    """The dashboard's Pipeline page query against this real webserver: a failed run stored in the
    instance comes back with its job, status and partition tag."""
    import dagster as dg
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    from quantdag.dashboard.pipeline import recent_runs

    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_run(DagsterRun(job_name="daily_data_job", run_id="0f0f0f0f-1111-2222-3333-444444444444",
                                    status=DagsterRunStatus.FAILURE, tags={"dagster/partition": "2026-11-01"}))  # fmt: skip
    got = recent_runs(f"http://127.0.0.1:{port}")
    assert got["error"] is None, got
    (run,) = got["runs"]
    assert (run["run_id"], run["job"], run["status"]) == ("0f0f0f0f-1111-2222-3333-444444444444", "daily_data_job", "FAILURE")
    assert run["tags"] == {"dagster/partition": "2026-11-01"} and got["failed"] == 1
