"""Smoke and snapshot tests of the code location: it loads, and its graph is what we think it is."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from pipelines.definitions import build_defs, defs

ROOT = Path(__file__).resolve().parents[2]


def _today_at(hour: int, minute: int) -> datetime:
    """A tick of today (UTC): the partitions start a configured number of days back from today."""
    now = datetime.now(timezone.utc)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0)

def tick_schedule(d: dg.Definitions, name: str, instance: dg.DagsterInstance, when):
    """Evaluate schedule ``name`` of ``d`` at ``when`` the way Dagster's code server does: in a closed context.

    ``build_schedule_context`` keeps only the instance's ref; the first ``context.instance`` opens a
    second instance from it, and entering an instance installs its defs-state storage in a process-wide
    ContextVar. Unless the context is closed here (inside the caller's ``instance_for_test`` block), that
    instance is exited whenever it is garbage-collected, resetting the ContextVar to the already disposed
    outer instance's storage, and the next ``Definitions`` load anywhere in the process fails with
    "Attempted to resolve undefined DagsterInstance weakref".
    """
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=d.get_repository_def()
    ) as ctx:
        return d.resolve_schedule_def(name).evaluate_tick(ctx)

ASSET_SNAPSHOT = {
    "raw_candles": ("ingestion", []),
    "candles": ("normalization", ["raw_candles"]),
    "indicators": ("indicators", ["candles"]),
    "market_events": ("events", ["candles"]),
    "signals": ("signals", ["candles"]),
    "backtests": ("backtests", ["signals"]),
    "optimization": ("optimization", ["candles"]),
    "paper_trades": ("paper", ["signals"]),
    "paper_drift_check": ("paper", ["paper_trades"]),
    "raw_news": ("sentiment", []),
    "sentiment_items": ("sentiment", ["raw_news"]),
    "sentiment_bars": ("sentiment", ["candles", "sentiment_items"]),
    "ml_features": ("ml_features", ["candles", "market_events", "sentiment_bars"]),
    "ml_labels": ("ml", ["candles"]),
    "ml_model": ("ml", ["ml_features", "ml_labels"]),
    "ml_predictions": ("ml", ["ml_model"]),
}

JOB_SNAPSHOT = {
    "daily_data_job": ["candles", "indicators", "market_events", "ml_features", "raw_candles", "raw_news", "sentiment_bars",
                       "sentiment_items"],
    "sentiment_job": ["raw_news", "sentiment_bars", "sentiment_items"],
    "ml_features_job": ["ml_features"],
    "ml_job": ["ml_labels", "ml_model", "ml_predictions"],
    "ingestion_job": ["raw_candles"],
    "normalization_job": ["candles"],
    "indicators_job": ["indicators"],
    "events_job": ["market_events"],
    "backtest_job": ["backtests", "signals"],
    "optimization_job": ["optimization"],
    "paper_trade_job": ["paper_trades"],
    "paper_drift_job": ["paper_drift_check"],
}


def test_definitions_validate_loadable():
    dg.Definitions.validate_loadable(defs)


def test_asset_graph_matches_snapshot():
    graph = defs.resolve_asset_graph()
    got = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        got[key.to_user_string()] = (node.group_name, sorted(k.to_user_string() for k in node.parent_keys))
    for name, expected in ASSET_SNAPSHOT.items():
        assert got[name] == expected, name


def test_jobs_select_assets_by_group_as_snapshotted():
    for name, expected in JOB_SNAPSHOT.items():
        job = defs.resolve_job_def(name)
        keys = sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys)
        assert keys == expected, name


def test_every_writer_asset_is_in_the_duckdb_pool():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.pools == {"duckdb"}, key


def test_candles_checks_are_blocking():
    checks = list(defs.resolve_asset_graph().asset_check_keys)
    assert {c.name for c in checks} >= {"duplicate_keys", "broken_ohlc", "unclosed", "off_grid", "missing_unrecorded"}
    node = defs.resolve_assets_def("candles")
    assert all(spec.blocking for spec in node.check_specs)


def test_daily_schedule_requests_yesterday_in_one_run_of_every_market():
    """A data partition is a UTC day of every configured market: yesterday is one run."""
    with dg.instance_for_test() as instance:
        result = tick_schedule(defs, "daily_data_job_schedule", instance, _today_at(0, 15))
    yesterday = (_today_at(0, 15) - timedelta(days=1)).date().isoformat()
    assert [r.partition_key for r in result.run_requests] == [yesterday]


def test_build_defs_puts_every_file_under_the_data_dir(tmp_path):
    d = build_defs(tmp_path)
    assert d.resources["warehouse"].path == str(tmp_path.resolve() / "quantdag.duckdb")
    assert d.resources["mlflow"].tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"


def test_dagster_definitions_validate_cli_passes(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_register_param_sets_sensor_adds_every_default_once():
    from quantdag.strategies.keys import default_param_sets

    sensor = defs.resolve_sensor_def("register_param_sets")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance) as ctx:
            result = sensor.evaluate_tick(ctx)
        added = [k for r in result.dynamic_partitions_requests for k in r.partition_keys]
        assert sorted(added) == sorted(default_param_sets())
        instance.add_dynamic_partitions("param_sets", added)
        with dg.build_sensor_context(instance=instance) as ctx:
            again = sensor.evaluate_tick(ctx)
        assert not again.dynamic_partitions_requests


def test_daily_backtest_schedule_runs_a_parameter_set_it_cannot_build_alone():
    """A key whose strategy is gone would stop everyone's batch: it gets a run of its own."""
    from pipelines.batches import RANGE_END, RANGE_START

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("param_sets", ["rsi", "gone_strategy-0123456789ab", "macd", "sma_cross"])
        result = tick_schedule(defs, "daily_backtest_schedule", instance, _today_at(1, 0))
    ranges = [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in result.run_requests if RANGE_START in r.tags]
    alone = [r.partition_key for r in result.run_requests if RANGE_START not in r.tags]
    assert ranges == [("rsi", "rsi"), ("macd", "sma_cross")] and alone == ["gone_strategy-0123456789ab"]


def test_daily_backtest_schedule_requests_every_param_set_in_one_run():
    from pipelines.batches import RANGE_END, RANGE_START

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("param_sets", ["rsi", "macd", "sma_cross"])
        result = tick_schedule(defs, "daily_backtest_schedule", instance, _today_at(1, 0))
    (request,) = result.run_requests
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("rsi", "sma_cross")


def test_run_failure_sensor_logs_scrubbed_alert():
    from pipelines.sensors import alert_text
    from quantdag.exchange import Credentials

    Credentials(api_key="canary-key-abcdef123456", secret="canary-secret-654321fedcba")
    text = alert_text("r1", "daily_data_job", "boom with canary-key-abcdef123456")
    assert "canary-key" not in text and "ALERT run r1 of job daily_data_job failed" in text


def test_mark_to_market_schedule_requests_only_paper_enabled_param_sets():

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("param_sets", ["sma_cross-0123456789ab", "rsi", "consensus"])
        result = tick_schedule(defs, "paper_mark_to_market_schedule", instance, _today_at(3, 5))
    assert sorted(r.partition_key for r in result.run_requests) == ["consensus", "sma_cross-0123456789ab"]


def test_paper_schedule_follows_the_dashboards_paper_switches(tmp_path):
    """A strategy switched off by hand (paper.switches) gets no paper run; one switched on does."""
    from quantdag.stages.paper import switch_paper
    from quantdag.store import Warehouse

    d = build_defs(tmp_path)
    wh = Warehouse(tmp_path / "quantdag.duckdb")
    switch_paper(wh, "sma_cross", False, "test")
    switch_paper(wh, "rsi", True, "test")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("param_sets", ["sma_cross-0123456789ab", "rsi", "consensus"])
        result = tick_schedule(d, "paper_mark_to_market_schedule", instance, _today_at(3, 5))
    assert sorted(r.partition_key for r in result.run_requests) == ["consensus", "rsi"]


def test_schedule_ticks_leave_no_dead_instance_behind_for_later_definitions(tmp_path):
    """Regression: ticks under two short-lived test instances, then a fresh ``build_defs`` still loads.

    An unclosed schedule context used to leave the process-wide defs-state storage pointing at a disposed
    instance, so a later test's first ``resolve_job_def`` died with "undefined DagsterInstance weakref".
    """
    import gc

    from dagster._core.storage.defs_state.base import DefsStateStorage

    before = DefsStateStorage.get()
    when = _today_at(3, 5)
    for i in range(2):
        d = build_defs(tmp_path / f"defs{i}")
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("param_sets", ["sma_cross", "rsi"])
            for name in ("daily_data_job_schedule", "daily_backtest_schedule", "paper_mark_to_market_schedule",
                         "daily_paper_drift_schedule", "daily_portfolio_schedule", "portfolio_paper_schedule"):
                assert tick_schedule(d, name, instance, when).run_requests, name
                # nothing the tick opened is still installed: it would be reset to a dead instance later
                assert DefsStateStorage.get() is instance.defs_state_storage, name
            with dg.build_sensor_context(instance=instance, repository_def=d.get_repository_def()) as ctx:
                d.resolve_sensor_def("register_param_sets").evaluate_tick(ctx)
        del d, instance
        gc.collect()
        assert DefsStateStorage.get() is before
    fresh = build_defs(tmp_path / "fresh")
    assert fresh.resolve_job_def("daily_data_job").name == "daily_data_job"


def test_portfolio_schedules_run_after_the_backtests_and_paper_only_when_enabled(tmp_path):
    from pipeline_helpers import config_with

    defs = build_defs(tmp_path, config=config_with(automation={"paper_trading": False}))
    daily, paper = defs.resolve_schedule_def("daily_portfolio_schedule"), defs.resolve_schedule_def("portfolio_paper_schedule")
    assert daily.cron_schedule == "20 1 * * *" and daily.job_name == "portfolio_job"  # after the 01:00 backtests
    assert daily.default_status == dg.DefaultScheduleStatus.RUNNING
    assert paper.job_name == "portfolio_paper_job" and paper.default_status == dg.DefaultScheduleStatus.STOPPED
