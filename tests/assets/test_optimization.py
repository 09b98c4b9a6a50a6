"""A sweep sharded into strategy × shard partitions stores exactly the tables of the one-process sweep."""

from __future__ import annotations

import json

import dagster as dg
import mlflow
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline_helpers import config_with, recent_days, run_job

#: What may differ between two runs of the same sweep: which runs wrote it.
RUN_COLUMNS = ("mlflow_run_id", "dagster_run_id")
SWEEP = {"strategies": ["sma_cross"], "min_trades": 1}


def _tables(wh) -> dict[str, pl.DataFrame]:
    sweeps = wh.query("SELECT * FROM optimize.sweeps ORDER BY strategy, exchange, symbol, timeframe").drop(RUN_COLUMNS)
    results = wh.query("SELECT * FROM optimize.results ORDER BY strategy, exchange, symbol, timeframe, params_hash")
    return {"optimize.sweeps": sweeps, "optimize.results": results}


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, sim):
    """Ten days of data; the SMA sweep in 3 shards (run out of order), merged; then the same sweep in one process."""
    from pipelines.definitions import build_defs

    tmp = tmp_path_factory.mktemp("sharded")
    defs = build_defs(tmp, config=config_with(optimization={**SWEEP, "shards": 3}), sim_url=sim.url)
    assert run_job(defs, "daily_data_job", recent_days(10)).success
    instance = dg.DagsterInstance.ephemeral()
    shard_job = defs.resolve_job_def("optimization_shards_job")
    shard_runs = {}
    for k in (2, 0, 1):
        result = shard_job.execute_in_process(partition_key=f"{k}|sma_cross", instance=instance)
        assert result.success
        shard_runs[k] = result.run_id
    merge = defs.resolve_job_def("optimization_job").execute_in_process(partition_key="sma_cross", instance=instance)
    assert merge.success
    wh = defs.resources["warehouse"].get()
    from_shards = _tables(wh)
    mlflow_run_id = wh.query("SELECT mlflow_run_id FROM optimize.sweeps")["mlflow_run_id"][0]
    single_defs = build_defs(tmp, config=config_with(optimization={**SWEEP, "shards": 1}), sim_url=sim.url)
    assert single_defs.resolve_job_def("optimization_job").execute_in_process(partition_key="sma_cross", instance=instance).success
    return {"defs": defs, "tmp": tmp, "instance": instance, "shard_runs": shard_runs, "merge": merge,
            "from_shards": from_shards, "single": _tables(wh), "mlflow_run_id": mlflow_run_id}  # fmt: skip


def test_sharded_sweep_stores_the_one_process_tables_bit_for_bit(sharded):
    for table, frame in sharded["single"].items():
        assert frame.height > 0, table
        assert_frame_equal(sharded["from_shards"][table], frame, check_exact=True)
    results = sharded["single"]["optimize.results"]
    assert sharded["single"]["optimize.sweeps"]["n_evaluated"][0] == results.height > 50


def test_merge_records_the_shard_runs_it_used(sharded):
    mat = sharded["merge"].asset_materializations_for_node("optimization")[0]
    used = mat.metadata["shards"].value
    assert sorted((s["shard"], s["dagster_run_id"]) for s in used) == sorted(sharded["shard_runs"].items())
    client = mlflow.MlflowClient(sharded["defs"].resources["mlflow"].tracking_uri)
    tags = client.get_run(sharded["mlflow_run_id"]).data.tags
    assert tags["sweep_id"] == mat.metadata["sweep_id"].value
    assert sorted(s["dagster_run_id"] for s in json.loads(tags["sweep_shards"])) == sorted(sharded["shard_runs"].values())


def test_shard_assets_read_duckdb_only_so_they_are_outside_the_writer_pool(sharded):
    graph = sharded["defs"].resolve_asset_graph()
    assert graph.get(dg.AssetKey("sweep_shards")).pools == set()
    assert graph.get(dg.AssetKey("optimization")).pools == {"duckdb"}
    assert sorted(k.to_user_string() for k in graph.get(dg.AssetKey("optimization")).parent_keys) == ["candles", "sweep_shards"]
    keys = sharded["defs"].resolve_job_def("optimization_shards_job").partitions_def.get_partition_keys()
    assert {k for k in keys if k.endswith("|sma_cross")} == {"0|sma_cross", "1|sma_cross", "2|sma_cross"}


def test_merge_with_a_shard_file_missing_fails_naming_the_shard(sharded):
    files = sorted((sharded["tmp"] / "sweep_shards").rglob("shard-0001-of-0003.parquet"))
    assert len(files) == 1  # older sweeps' shard folders were pruned after the merge
    files[0].unlink()
    result = sharded["defs"].resolve_job_def("optimization_job").execute_in_process(
        partition_key="sma_cross", instance=sharded["instance"], raise_on_error=False
    )
    assert not result.success
    error = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    chain = []
    while error is not None:  # Dagster wraps the step's exception: look along the chain
        chain.append((error.cls_name, error.message))
        error = error.cause
    assert any(name == "MissingShards" and "shard(s) 1 of 3 missing" in message for name, message in chain), chain
