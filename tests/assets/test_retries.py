"""Steps retry only transient failures (#14 item 5): an exchange outage is retried, a read-only data dir is not."""

from __future__ import annotations

import os
import stat

import dagster as dg
import pytest

from pipeline_helpers import config_with, recent_days, run_job


def _events(result, kind: dg.DagsterEventType) -> int:
    return sum(1 for e in result.all_events if e.event_type == kind)


def test_exchange_outage_is_retried_then_fails(tmp_path, sim, monkeypatch):
    import assets.common

    from pipelines.definitions import build_defs

    monkeypatch.setattr(assets.common, "RETRY_WAIT_SECONDS", 0.05)
    config = config_with(exchange={"mode": "simulated", "max_retries": 0, "timeout_ms": 2000})
    defs = build_defs(tmp_path, config=config, sim_url=sim.url)
    sim.inject("server_error", count=1000, path="/api/v3/klines")
    try:
        result = run_job(defs, "ingestion_job", recent_days(1), raise_on_error=False)
    finally:
        sim.faults = None
    assert not result.success
    assert _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == 2  # MAX_RETRIES, then the failure stands


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_read_only_data_dir_fails_once_without_retries(tmp_path, sim):
    from pipelines.definitions import build_defs

    data = tmp_path / "data"
    data.mkdir()
    defs = build_defs(data, sim_url=sim.url)
    data.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = run_job(defs, "ingestion_job", recent_days(1), raise_on_error=False)
    finally:
        data.chmod(stat.S_IRWXU)
    assert not result.success and _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == 0


def test_deterministic_failure_is_not_retried(tmp_path, sim):
    """A bug-like failure (here: the warehouse path is a directory) fails the step at once."""
    from pipelines.definitions import build_defs

    data = tmp_path / "data"
    (data / "quantdag.duckdb").mkdir(parents=True)  # not a file: DuckDB cannot open it, every attempt would fail
    defs = build_defs(data, sim_url=sim.url)
    result = run_job(defs, "ingestion_job", recent_days(1), raise_on_error=False)
    assert not result.success and _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == 0
