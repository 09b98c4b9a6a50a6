"""Canary API keys set in the environment never reach logs, Dagster event logs, DuckDB or MLflow."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipeline_helpers import config_with, recent_days
from pipelines.demo import range_tags
from quantdag.config import DEFAULT_CONFIG_PATH
from quantdag.strategies.keys import param_set_key
from quantdag.strategies import create_strategy

KEY = "canaryKEY-7d1f0c9e4b2a6f3e8d5c"
SECRET = "canarySECRET-a9b8c7d6e5f4a3b2c1d0"


def _files_containing(root: Path, needles: tuple[str, ...]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            if any(n.encode() in blob for n in needles):
                hits.append(str(path))
    return hits


@pytest.mark.slow
def test_canary_keys_absent_from_event_logs_duckdb_mlflow_and_logs(tmp_path, sim, monkeypatch, caplog):
    from pipelines.definitions import build_defs

    monkeypatch.setenv("QUANTDAG_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("QUANTDAG_BINANCE_SECRET", SECRET)
    data = tmp_path / "data"
    # one retry, not the shipped 5: the failing run below then gives up after one back-off (under 1 s) rather than
    # five (about 8 s), and the retry's own log lines are scanned all the same
    exchange = {**yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())["exchange"], "max_retries": 1}
    config = config_with(strategies={"param_sets": [{"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}}],
                                     "paper": ["sma_cross"]}, exchange=exchange)
    defs = build_defs(data, config=config, sim_url=sim.url)
    key = param_set_key(create_strategy("sma_cross", {"fast": 5, "slow": 20}))
    home = tmp_path / "dagster_home"
    home.mkdir()
    logging.getLogger("ccxt").setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG), dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions("param_sets", [key])
        job = defs.resolve_job_def("daily_data_job")
        runs = [job.execute_in_process(instance=instance, tags=range_tags(job.partitions_def, recent_days(3)))]
        for name in ("backtest_job", "paper_trade_job"):
            runs.append(defs.resolve_job_def(name).execute_in_process(instance=instance, partition_key=key))
        # a failing run: its error and traceback land in the event log too
        sim.inject("server_error", count=100, path="/api/v3/klines")
        unfetched_day = recent_days(6)[:1]
        failed = job.execute_in_process(
            instance=instance, tags=range_tags(job.partitions_def, unfetched_day), raise_on_error=False
        )
        sim.faults = None
        assert all(r.success for r in runs) and not failed.success
        event_text = "\n".join(
            str(e) for r in [*runs, failed] for e in instance.all_logs(r.run_id)
        )
    assert KEY not in event_text and SECRET not in event_text
    assert KEY not in caplog.text and SECRET not in caplog.text
    # the keys were really in use: ccxt held them
    client = defs.resources["exchange"].client()
    assert client.ccxt.apiKey == KEY
    # nothing on disk: DuckDB, MLflow's store and artifacts, Dagster's storage and compute logs
    assert _files_containing(tmp_path, (KEY, SECRET)) == []
