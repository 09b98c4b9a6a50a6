"""kill -9 during a run: the next start fails the orphan, frees its pool slot and runs to completion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines.instance import write_instance_yaml

from pipelines.recovery import recover_orphaned_runs

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("crash_job.py")


def _start(home: Path, sleep: float) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(sleep)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_step(home: Path, proc: subprocess.Popen, timeout: float = 90.0) -> str:
    """The run id once its step has started (and so holds the pool slot)."""
    deadline = time.time() + timeout
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while time.time() < deadline:
            for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
                logs = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
                if logs:
                    return run.run_id
            if proc.poll() is not None:
                raise AssertionError(f"the run's process ended early: {proc.stdout.read()[-2000:]}")
            time.sleep(0.2)
    raise AssertionError("the run never started its step")


def _holders(instance: dg.DagsterInstance) -> set[str]:
    """Runs holding a slot of pool ``duckdb``."""
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots}


def _home(tmp_path: Path) -> Path:
    """A Dagster home with the shipped instance settings (pool ``duckdb`` limited to 1)."""
    home = tmp_path / "home"
    home.mkdir()
    write_instance_yaml(home)
    return home


def _killed_run(home: Path) -> str:
    """The id of a run SIGKILLed while its step held the pool slot."""
    victim = _start(home, sleep=120)
    run_id = _wait_for_step(home, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    return run_id


@pytest.mark.slow
def test_killed_run_is_failed_on_restart_and_the_next_run_gets_the_pool_slot(tmp_path):
    home = _home(tmp_path)
    run_id = _killed_run(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED  # the crash left it holding the slot
        assert _holders(instance) == {run_id}
        recovered = recover_orphaned_runs(instance)
        assert [r.run_id for r in recovered] == [run_id] and "is gone" in recovered[0].reason
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert _holders(instance) == set()
        assert recover_orphaned_runs(instance) == []  # idempotent
    nxt = _start(home, sleep=0)
    out, _ = nxt.communicate(timeout=120)  # without recovery this waits for the pool slot forever
    assert nxt.returncode == 0 and "done True" in out, out[-2000:]


def test_recover_orphaned_runs_leaves_a_live_run_alone(tmp_path):
    home = _home(tmp_path)
    live = _start(home, sleep=20)
    try:
        run_id = _wait_for_step(home, live)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert recover_orphaned_runs(instance) == []
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    finally:
        live.kill()
        live.wait(timeout=30)


@pytest.mark.slow
def test_recover_crashed_runs_sensor_frees_the_slot_of_a_killed_run(tmp_path):
    """What `make ui`'s daemon does every minute: the default launcher cannot report dead workers."""
    from pipelines.definitions import build_defs

    home = _home(tmp_path)
    run_id = _killed_run(home)
    sensor = build_defs(tmp_path / "data").resolve_sensor_def("recover_crashed_runs")
    with dg.DagsterInstance.from_config(str(home)) as instance, dg.build_sensor_context(instance=instance) as ctx:
        result = sensor.evaluate_tick(ctx)
        assert "recovered 1 crashed run" in (result.skip_message or "")
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert _holders(instance) == set()


def test_heal_market_data_sensor_reruns_the_days_with_candles_to_fetch_again(tmp_path):
    from datetime import date, datetime, timedelta, timezone

    import polars as pl

    from pipelines.definitions import build_defs
    from quantdag.store import Slice, Warehouse

    defs = build_defs(tmp_path)
    sensor = defs.resolve_sensor_def("heal_market_data")
    with dg.instance_for_test() as instance, dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def()) as ctx:
        assert "no warehouse" in sensor.evaluate_tick(ctx).skip_message
    day = date.today() - timedelta(days=3)
    gap = datetime(day.year, day.month, day.day, 5, tzinfo=timezone.utc)
    row = pl.DataFrame([{"exchange": "sim", "symbol": "ETH/USDT", "timeframe": "1h", "gap_start": gap, "gap_end": gap,
                         "missing": 1, "attempts": 1, "last_attempt_at": gap}],
                       schema_overrides={"gap_start": pl.Datetime("ms", "UTC"), "gap_end": pl.Datetime("ms", "UTC"),
                                         "last_attempt_at": pl.Datetime("ms", "UTC"), "attempts": pl.Int32})
    Warehouse(tmp_path / "quantdag.duckdb").replace_slices("raw.refetches", row, [Slice(where={"exchange": "sim"}, time_column=None)])
    with dg.instance_for_test() as instance, dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def()) as ctx:
        requests = sensor.evaluate_tick(ctx).run_requests
    assert len(requests) == 1
    tags = requests[0].tags
    assert tags["dagster/asset_partition_range_start"].startswith(day.isoformat())
    assert tags["dagster/asset_partition_range_end"].startswith(day.isoformat())
