"""Signals and backtests over dynamic parameter-set partitions, logged to a real MLflow store."""

from __future__ import annotations

import json

import dagster as dg
import mlflow
import polars as pl
import pytest

from pipeline_helpers import config_with, recent_days, run_job
from quantdag.stages.backtests import leaderboard
from quantdag.strategies.keys import default_param_sets, param_set_key, strategy_from_key, strategy_name_of
from quantdag.strategies import create_strategy

KEY_COLS = ("strategy", "params_hash", "exchange", "symbol", "timeframe")


@pytest.fixture(scope="module")
def research(tmp_path_factory, sim):
    """Ten days of data, then the SMA crossover's signals and backtests, run twice."""
    from pipelines.definitions import build_defs

    tmp = tmp_path_factory.mktemp("research")
    config = config_with(strategies={"param_sets": [{"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}}],
                                     "paper": ["sma_cross", "regime_ma", "consensus"]})
    defs = build_defs(tmp, config=config, sim_url=sim.url)
    assert run_job(defs, "daily_data_job", recent_days(10)).success
    key = param_set_key(create_strategy("sma_cross", {"fast": 5, "slow": 20}))
    job = defs.resolve_job_def("backtest_job")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("param_sets", [key])
        first = job.execute_in_process(instance=instance, partition_key=key)
        wh = defs.resources["warehouse"].get()
        hashes = {t: wh.table_hash(t, (*KEY_COLS, c)) for t, c in (("backtest.trades", "trade_id"), ("backtest.equity", "ts"), ("signals.signals", "ts"))}
        second = job.execute_in_process(instance=instance, partition_key=key)
        yield {"defs": defs, "key": key, "first": first, "second": second, "hashes": hashes, "wh": wh}


def test_backtest_job_writes_one_run_per_research_market_with_mlflow_id(research):
    assert research["first"].success and research["second"].success
    runs = research["wh"].read("backtest.runs")
    assert sorted(runs["symbol"].to_list()) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert runs["n_candles"].to_list() == [240, 240, 240]
    assert runs["mlflow_run_id"].null_count() == 0
    settings = json.loads(runs["settings"][0])
    assert settings["fill"] == "next_open" and settings["fee"] > 0 and settings["slippage"] > 0


def test_backtest_mlflow_run_has_params_metrics_equity_curve_and_artifacts(research):
    runs = research["wh"].read("backtest.runs")
    store = research["defs"].resources["mlflow"]
    client = mlflow.MlflowClient(store.tracking_uri)
    row = runs.row(0, named=True)
    run = client.get_run(row["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["param.fast"] == "5" and run.data.params["setting.fill"] == "next_open"
    assert run.data.metrics["final_equity"] == pytest.approx(row["final_equity"])
    assert run.data.tags["dagster_partition"] == research["key"]
    assert run.data.tags["dagster_asset_key"] == "backtests"
    artifacts = {a.path for a in client.list_artifacts(row["mlflow_run_id"])}
    assert {"trades.parquet", "equity.parquet", "report.html"} <= artifacts
    curve = pl.read_parquet(client.download_artifacts(row["mlflow_run_id"], "equity.parquet"))
    assert curve.height == 240  # the whole curve, exactly as stored in backtest.equity
    stored = research["wh"].query(
        "SELECT ts, equity FROM backtest.equity WHERE symbol = ? AND strategy = ? ORDER BY ts", [row["symbol"], row["strategy"]]
    )
    assert curve.select("ts", "equity").equals(stored)
    assert client.get_metric_history(row["mlflow_run_id"], "equity") == []  # not thousands of metric rows


def test_rerun_of_backtest_job_gives_identical_trades_equity_and_signals(research):
    wh = research["wh"]
    for table, col in (("backtest.trades", "trade_id"), ("backtest.equity", "ts"), ("signals.signals", "ts")):
        assert wh.table_hash(table, (*KEY_COLS, col)) == research["hashes"][table], table
    assert wh.query("SELECT count(*) AS n FROM backtest.runs")["n"][0] == 3


def test_signals_act_on_next_open_in_stored_trades(research):
    wh = research["wh"]
    joined = wh.query(
        "SELECT t.entry_ts, s.ts AS signal_ts FROM backtest.trades t JOIN signals.signals s "
        "ON s.symbol = t.symbol AND s.strategy = t.strategy AND s.entry AND s.ts = t.entry_ts - INTERVAL 1 HOUR"
    )
    trades = wh.query("SELECT count(*) AS n FROM backtest.trades")["n"][0]
    assert trades > 0 and joined.height == trades


def test_leaderboard_lists_every_stored_backtest(research):
    board = leaderboard(research["wh"])
    assert board.height == 3
    assert {"strategy", "total_return", "sharpe", "max_drawdown", "n_trades"} <= set(board.columns)


def test_param_set_with_fast_not_below_slow_is_rejected_naming_parameter():
    with pytest.raises(Exception, match="fast"):
        strategy_from_key("sma_cross-000000000000", {"sma_cross-000000000000": ("sma_cross", {"fast": 50, "slow": 10})})
    with pytest.raises(Exception, match="no_such"):
        strategy_from_key("no_such_strategy-0123456789ab")


def test_param_set_key_with_unknown_params_is_refused_naming_where_to_add_them():
    with pytest.raises(Exception, match="strategies.param_sets"):
        strategy_from_key("sma_cross-0123456789ab")


def test_default_param_sets_cover_every_registered_strategy_with_ui_legal_keys():
    keys = default_param_sets()
    assert {strategy_name_of(k) for k in keys} >= {"sma_cross", "rsi", "macd", "regime_ma", "consensus"}
    for k in keys:
        assert param_set_key(strategy_from_key(k)) == k
        assert not set(k) & set(' ,[]{}"|'), k  # the UI's add-partition dialog accepts it


def test_optimization_asset_stores_sweep_with_dsr_pbo_and_mlflow_children(research):
    from pipelines.sensors import promotion_decision

    defs = research["defs"]
    job = defs.resolve_job_def("optimization_job")
    result = job.execute_in_process(
        partition_key="sma_cross", run_config={"ops": {"optimization": {"config": {"min_trades": 1}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    wh = research["wh"]
    sweep = wh.read("optimize.sweeps").row(0, named=True)
    n_results = wh.query("SELECT count(*) AS n FROM optimize.results")["n"][0]
    assert sweep["n_evaluated"] == n_results > 100
    assert 0.0 <= sweep["pbo"] <= 1.0 and 0.0 <= sweep["dsr"] <= 1.0
    from quantdag.stages.signals import resolve_param_set

    assert resolve_param_set(wh, sweep["best_param_set"]).name == "sma_cross"
    client = mlflow.MlflowClient(defs.resources["mlflow"].tracking_uri)
    parent = client.get_run(sweep["mlflow_run_id"])
    assert parent.data.metrics["pbo"] == pytest.approx(sweep["pbo"])
    assert {"results.parquet", "summary.json", "heatmap.png"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 5
    mat = result.asset_materializations_for_node("optimization")[0]
    key, why = promotion_decision(dict(mat.metadata))
    assert (key is None) == (sweep["pbo"] > 0.5 or sweep["dsr"] < 0.5), why


def test_promotion_refuses_likely_overfit_best():
    from pipelines.sensors import promotion_decision

    assert promotion_decision({"best_param_set": "rsi {}", "pbo": 0.7, "dsr": 0.9})[0] is None
    assert promotion_decision({"best_param_set": "rsi {}", "pbo": 0.1, "dsr": 0.2})[0] is None
    assert promotion_decision({"best_param_set": "rsi {}", "pbo": 0.1, "dsr": 0.9})[0] == "rsi {}"


def test_paper_trade_job_places_orders_from_signals_and_reruns_without_duplicates(research):
    defs, key, wh = research["defs"], research["key"], research["wh"]
    job = defs.resolve_job_def("paper_trade_job")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("param_sets", [key])
        first = job.execute_in_process(instance=instance, partition_key=key)
        assert first.success
        orders_after_first = wh.query("SELECT count(*) AS n FROM paper.orders")["n"][0]
        assert job.execute_in_process(instance=instance, partition_key=key).success
    orders = wh.read("paper.orders")
    assert orders.height == orders_after_first
    assert orders["client_order_id"].n_unique() == orders.height
    fills = wh.read("paper.fills")
    positions = wh.read("paper.positions")
    ledger = fills.group_by("symbol").agg(
        (pl.when(pl.col("side") == "buy").then(pl.col("qty")).otherwise(-pl.col("qty"))).sum().alias("net")
    )
    for row in ledger.iter_rows(named=True):
        pos = positions.filter(pl.col("symbol") == row["symbol"])["qty"].sum()
        assert pos == pytest.approx(row["net"], abs=1e-12)
    meta = first.asset_materializations_for_node("paper_trades")[0].metadata
    assert meta["risk_state"].value.lower() == "active"
    equity = wh.read("paper.equity")
    assert equity.height >= 1 and equity["equity"].min() > 0.9 * 10_000


def test_paper_sensor_requests_runs_only_for_enabled_strategies(research):
    defs = research["defs"]
    sensor = defs.resolve_sensor_def("paper_on_new_signals")
    cursor = None
    with dg.instance_for_test() as instance:
        for key, expect in ((research["key"], True), (create_strategy("rsi").key, False)):
            instance.add_dynamic_partitions("param_sets", [key])
            instance.report_runless_asset_event(dg.AssetMaterialization("signals", partition=key))
            with (
                dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def(), cursor=cursor) as ctx,
                dg.partition_loading_context(dynamic_partitions_store=instance),
            ):
                result = sensor.evaluate_tick(ctx)
            cursor = result.cursor
            got = [r.partition_key for r in result.run_requests]
            assert got == ([key] if expect else [])


def test_paper_sensor_sees_every_parameter_set_of_a_batched_signals_run(research):
    """One run materializes many parameter sets' signals: each enabled one gets its paper step."""
    defs = research["defs"]
    sensor = defs.resolve_sensor_def("paper_on_new_signals")
    keys = [create_strategy("sma_cross", {"fast": f, "slow": 40}).key for f in (5, 10, 15)] + [create_strategy("rsi").key]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("param_sets", keys)
        for key in keys:
            instance.report_runless_asset_event(dg.AssetMaterialization("signals", partition=key))
        with (
            dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def()) as ctx,
            dg.partition_loading_context(dynamic_partitions_store=instance),
        ):
            result = sensor.evaluate_tick(ctx)
    assert sorted(r.partition_key for r in result.run_requests) == sorted(keys[:3])


def test_paper_drift_check_pends_until_next_candle_then_compares_with_backtest_fill(research):
    from datetime import datetime, timedelta, timezone

    from quantdag.execution import OrderManager, PaperBroker, RiskEngine, RiskLimits, ticker_source

    defs, key, wh = research["defs"], research["key"], research["wh"]
    strategy = create_strategy("sma_cross", {"fast": 5, "slow": 20})
    # a decision on the last stored candle, filled on paper at the live (simulated) price
    last = wh.query("SELECT max(ts) AS ts FROM market.candles WHERE symbol = 'BTC/USDT' AND timeframe = '1h'")["ts"][0]
    broker = PaperBroker(ticker_source(defs.resources["exchange"].client()), balances={"USDT": 10_000.0},
                         name=f"paper:{strategy.key}")
    with OrderManager(wh, broker, strategy=strategy.key, risk=RiskEngine(RiskLimits(max_order_notional=10_000.0,
                      max_position_notional=10_000.0, daily_loss_limit=1_000.0, max_drawdown=0.5, max_orders=10))) as oms:
        oms.reconcile()
        oms.rebalance({"BTC/USDT": 0.01}, decision_ts_ms=int(last.timestamp() * 1000))
    job = defs.resolve_job_def("paper_drift_job")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("param_sets", [key])
        assert job.execute_in_process(instance=instance, partition_key=key).success
        pending = wh.read("paper.drift")
        assert pending.height >= 1 and set(pending["status"]) == {"pending"}
        # the candle after the decision closes: the next day's data arrives
        yesterday = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
        assert run_job(defs, "daily_data_job", [yesterday]).success
        assert job.execute_in_process(instance=instance, partition_key=key).success
    drift = wh.read("paper.drift")
    assert set(drift["status"]) <= {"ok", "diverged"}
    for r in drift.iter_rows(named=True):
        nxt = wh.query(
            "SELECT open FROM market.candles WHERE symbol = ? AND timeframe = '1h' AND ts = ?",
            [r["symbol"], r["decision_ts"] + timedelta(hours=1)],
        )["open"][0]
        sign = 1.0 if r["side"] == "buy" else -1.0
        assert r["backtest_price"] == nxt
        assert r["drift_bps"] == pytest.approx(sign * (r["paper_price"] - nxt) / nxt * 1e4)
        assert r["status"] == ("ok" if abs(r["drift_bps"]) <= r["tolerance_bps"] else "diverged")


def test_one_backtest_run_covers_many_parameter_sets_each_traceable_to_its_partition(research):
    """A single-run backfill over three parameter sets: one Dagster run, every row and MLflow run keyed by its partition."""
    from pipelines.batches import range_tags_of

    defs, wh = research["defs"], research["wh"]
    from quantdag.store import Slice, Warehouse

    strategies = [create_strategy("sma_cross", {"fast": f, "slow": 30}) for f in (4, 6, 8)]
    keys = [param_set_key(s) for s in strategies]
    known = pl.DataFrame({"param_set": keys, "strategy": [s.name for s in strategies], "params_hash": [s.params_hash for s in strategies],
                          "params": [s.params_json for s in strategies], "source": ["stored"] * 3})  # fmt: skip
    with wh.transaction() as con:  # parameter sets the warehouse knows (as a promoted sweep's would be)
        Warehouse.replace(con, "signals.param_sets", known, [Slice(where={"param_set": k}, time_column=None) for k in keys])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("param_sets", keys)
        result = defs.resolve_job_def("backtest_job").execute_in_process(instance=instance, tags=range_tags_of(keys))
        assert result.success
        assert sorted(instance.get_materialized_partitions(dg.AssetKey("backtests"))) == sorted(keys)
    runs = wh.query(
        "SELECT r.*, p.param_set FROM backtest.runs r JOIN signals.param_sets p USING (strategy, params_hash) "
        "WHERE p.param_set IN (?, ?, ?)", keys,
    )
    assert runs.height == 9 and set(runs["dagster_run_id"]) == {result.run_id}
    client = mlflow.MlflowClient(defs.resources["mlflow"].tracking_uri)
    for row in runs.iter_rows(named=True):
        tags = client.get_run(row["mlflow_run_id"]).data.tags
        assert tags["dagster_partition"] == tags["param_set"] == row["param_set"]
        assert tags["dagster_run_id"] == result.run_id
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["costs_on"].passed and checks["costs_on"].metadata["param_sets"].value == 3
