"""The instance's SQLite event log (pipelines/event_log.py) stores what Dagster's own class stores."""


from pathlib import Path

import dagster as dg
import pytest
import yaml

import pipelines.event_log  # noqa: F401  (sets DAGSTER_EVENT_BATCH_SIZE, as loading the instance does)
from pipelines.demo import RANGE_END, RANGE_START

KEYS = [f"p{i:03d}" for i in range(60)]
PARTS = dg.StaticPartitionsDefinition(KEYS)


@dg.asset(partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run(),
          check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
def numbers(context: dg.AssetExecutionContext):
    if context.run.tags.get("fail") == "yes":
        raise RuntimeError("asked to fail")
    yield dg.MaterializeResult(metadata={"n": len(context.partition_keys)})
    yield dg.AssetCheckResult(check_name="positive", passed=True)


@dg.asset(partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run(), deps=[numbers])
def doubled(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"n": len(context.partition_keys)})


JOB = dg.define_asset_job("numbers_job", selection=[numbers, doubled], partitions_def=PARTS)
DEFS = dg.Definitions(assets=[numbers, doubled], jobs=[JOB])


def _instance(home: Path, fast: bool) -> dg.DagsterInstance:
    home.mkdir()
    settings = {"telemetry": {"enabled": False}}
    if fast:
        settings["event_log_storage"] = {"module": "pipelines.event_log", "class": "FastSqliteEventLogStorage",
                                         "config": {"base_dir": str(home / "history" / "runs")}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    return dg.DagsterInstance.from_config(str(home))


def _state(instance: dg.DagsterInstance) -> dict:
    """What the UI and the sensors read: partitions done and failed, asset rows, run events, checks."""
    out = {}
    for key in (dg.AssetKey("numbers"), dg.AssetKey("doubled")):
        record = instance.get_latest_materialization_event(key)
        out[key.path[0]] = {
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "latest_partition": record.dagster_event.partition if record else None,
            "planned": sorted(
                r.event_log_entry.dagster_event.partition or "subset"
                for r in instance.fetch_planned_materializations(dg.AssetKey(key.path), limit=1000).records
            ),
        }
        status = instance.event_log_storage.get_asset_records([key])
        out[key.path[0]]["has_record"] = bool(status)
    runs = instance.get_runs()
    out["run_status"] = sorted(r.status.value for r in runs)
    out["event_types"] = sorted(
        sorted(e.dagster_event_type.value for e in instance.all_logs(r.run_id) if e.is_dagster_event) for r in runs
    )
    check = dg.AssetCheckKey(dg.AssetKey("numbers"), "positive")
    out["checks"] = sorted(
        str(r.status) for r in instance.event_log_storage.get_asset_check_execution_history(check, limit=10)
    )
    return out


def _exercise(instance: dg.DagsterInstance) -> None:
    job = DEFS.resolve_job_def("numbers_job")
    ok = job.execute_in_process(instance=instance, tags={RANGE_START: KEYS[0], RANGE_END: KEYS[39]})
    assert ok.success
    failed = job.execute_in_process(
        instance=instance, tags={RANGE_START: KEYS[40], RANGE_END: KEYS[-1], "fail": "yes"}, raise_on_error=False
    )
    assert not failed.success


def test_batched_event_log_stores_what_the_stock_sqlite_log_stores(tmp_path: Path) -> None:
    stock, fast = _instance(tmp_path / "stock", False), _instance(tmp_path / "fast", True)
    assert type(fast.event_log_storage).__name__ == "FastSqliteEventLogStorage"
    for instance in (stock, fast):
        _exercise(instance)
    expected, got = _state(stock), _state(fast)
    assert got == expected
    assert got["numbers"]["materialized"] == KEYS[:40]
    assert got["doubled"]["materialized"] == KEYS[:40]
    assert len(got["numbers"]["planned"]) == len(KEYS)  # one per partition: a failed run's partitions show failed
    # a failed run's partitions are failed in the status the UI and automation read
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

    for instance in (stock, fast):
        cache = get_and_update_asset_status_cache_value(instance, dg.AssetKey("numbers"), PARTS)
        failed = cache.deserialize_failed_partition_subsets(PARTS).get_partition_keys()
        assert sorted(failed) == KEYS[40:]


def test_the_instance_file_names_the_event_logs_folder_of_its_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The template names no folder (a storage class is never told its home): the writer fills it in,
    so an instance opened from its directory writes there whatever $DAGSTER_HOME says."""
    from pipelines.event_log import FastSqliteEventLogStorage
    from pipelines.instance import write_instance_yaml
    from quantdag.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="base_dir"):
        FastSqliteEventLogStorage()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    write_instance_yaml(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert Path(instance.event_log_storage._base_dir) == (tmp_path / "home" / "history" / "runs").resolve()
