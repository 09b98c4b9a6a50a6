"""The ML assets end to end: features in the daily job, labels, a registered champion, predictions,
and the ml_model strategy backtested beside the rule strategies."""

from __future__ import annotations

import os

import dagster as dg
import mlflow
import polars as pl
import pytest

from pipeline_helpers import config_with, recent_days, run_job
from quantdag.ml.features import FeatureConfig, compute_features
from quantdag.ml.registry import resolve
from quantdag.strategies import create_strategy
from quantdag.strategies.keys import param_set_key

GROUPS = ["returns", "volatility", "regime", "calendar", "sentiment", "market_events", "markets"]
ML = {"params": {"n_estimators": 30}, "labels": {"kind": "fixed", "horizon": 12},
      "features": {"periods": [6, 24], "timeframes": ["4h"], "groups": GROUPS, "correlated": ["BTC/USDT"]}}
DAYS = 30
HOLDOUT = 10


@pytest.fixture(scope="module")
def ml_run(tmp_path_factory, sim):
    from pipelines.definitions import build_defs

    before = os.environ.get("MLFLOW_TRACKING_URI")
    tmp = tmp_path_factory.mktemp("ml")
    config = config_with(ml=ML, strategies={"defaults": True, "param_sets": [], "paper": ["ml_model"]},
                         portfolio={"strategies": ["ml_model"]})
    defs = build_defs(tmp, config=config, sim_url=sim.url)
    assert run_job(defs, "daily_data_job", recent_days(DAYS)).success
    job = defs.resolve_job_def("ml_job")
    holdout = {"ops": {"ml_model": {"config": {"holdout_days": HOLDOUT}}}}  # the last days: a forward test
    with dg.instance_for_test() as instance:
        first = job.execute_in_process(instance=instance, run_config=holdout)
        wh = defs.resources["warehouse"].get()
        preds = wh.read("ml.predictions")
        second = job.execute_in_process(instance=instance, run_config=holdout)
        key = param_set_key(create_strategy("ml_model"))
        instance.add_dynamic_partitions("param_sets", [key])
        backtest = defs.resolve_job_def("backtest_job").execute_in_process(instance=instance, partition_key=key)
        paper = defs.resolve_job_def("paper_trade_job").execute_in_process(instance=instance, partition_key=key)
        portfolio = defs.resolve_job_def("portfolio_job").execute_in_process(instance=instance)
        yield {"tmp": tmp, "sim_url": sim.url, "defs": defs, "first": first, "second": second, "wh": wh, "preds": preds, "backtest": backtest, "key": key,
               "paper": paper, "portfolio": portfolio}
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    mlflow.set_tracking_uri(before or "")


def test_ml_job_registers_a_champion_then_a_challenger_that_did_not_beat_it(ml_run):
    assert ml_run["first"].success and ml_run["second"].success
    meta = [m.metadata for m in ml_run["first"].asset_materializations_for_node("ml_model")]
    assert meta[0]["alias"].value == "champion" and meta[0]["version"].value == "1"
    assert 0 <= meta[0]["oos_pbo"].value <= 1 and "oos_dsr" in meta[0]
    assert 0 <= meta[0]["outliers_train_frac"].value < 0.05 and 0 <= meta[0]["outliers_oos_frac"].value < 0.5  # the gate's counts
    again = [m.metadata for m in ml_run["second"].asset_materializations_for_node("ml_model")]
    assert again[0]["alias"].value == "challenger"  # same data: nothing out of sample for both, no promotion
    assert resolve("quantdag_ml", "champion").version == "1"


def test_features_table_holds_every_research_market_and_configured_column(ml_run):
    f = ml_run["wh"].read("ml.features")
    assert sorted(f["symbol"].unique().to_list()) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert f.height == 3 * 24 * DAYS
    cfg = FeatureConfig(periods=(6, 24), timeframes=("4h",), groups=("returns", "volatility", "regime", "calendar", "sentiment"))
    candles = ml_run["wh"].read("market.candles").filter(pl.col("symbol") == "ETH/USDT", pl.col("timeframe") == "1h")
    bars = ml_run["wh"].read("sentiment.bars")
    direct = compute_features(candles, cfg, extra={"sentiment.bars": bars}).drop_nulls()
    assert (f["sent_decayed"] != 0).mean() > 0.5 and f["sent_count_24"].max() > 0  # the simulated news reached the features
    stored = f.filter(pl.col("symbol") == "ETH/USDT").select(direct.columns).drop_nulls()
    joined = direct.join(stored, on=["exchange", "symbol", "timeframe", "ts"], suffix="_s")
    assert joined.height > 400 and all(joined[c].equals(joined[f"{c}_s"].alias(c)) for c in direct.columns[4:])
    assert f["btc_usdt_corr_24"].drop_nulls().len() > 400  # the correlated market's group


def test_stored_market_events_reach_every_strategy_frame_and_the_features(ml_run):
    """The main job builds market.events before the features; a candle's frame counts the events starting at it."""
    from quantdag.data.event_starts import EVENT_COLUMNS
    from quantdag.markets import Market
    from quantdag.stages.common import read_candles

    wh = ml_run["wh"]
    events = wh.read("market.events").filter(pl.col("timeframe") == "1h")
    assert events.height > 0
    for sym in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        frame = read_candles(wh, Market("sim", sym, "1h"))
        assert set(EVENT_COLUMNS) <= set(frame.columns)
        own = events.filter(pl.col("symbol") == sym, pl.col("ts_start") >= frame["ts"].min())
        for t in ("price_jump", "vol_regime"):
            assert frame[f"event_{t}"].sum() == own.filter(pl.col("event_type") == t).height, (sym, t)
    f = ml_run["wh"].read("ml.features")
    assert {"ev_vol_regime_24", "ev_depeg_any_6", "ev_price_jump_24"} <= set(f.columns)
    assert f["ev_vol_regime_24"].drop_nulls().sum() > 0  # a stored event counted in the features


def test_labels_are_stamped_with_known_at_after_their_candle(ml_run):
    lab = ml_run["wh"].read("ml.labels")
    assert lab.height > 1800 and (lab["known_at"] > lab["ts"]).all()


def test_predictions_hold_the_champions_probabilities_and_its_oos_ones(ml_run):
    preds = ml_run["preds"]
    assert set(preds["oos"].unique().to_list()) == {True, False}
    # the final model's only where it is out of sample: after its training data, the held-out days
    assert preds.filter(~pl.col("oos")).height == pytest.approx(3 * 24 * HOLDOUT, abs=3 * 24 * 2)
    last_train = preds.filter(pl.col("oos"))["ts"].max()
    assert preds.filter(~pl.col("oos"))["ts"].min() > last_train
    assert preds["version"].unique().to_list() == [1]
    assert preds["p_up"].drop_nulls().is_between(0, 1).all()


def test_ml_model_strategy_backtests_beside_the_rules_with_the_champion(ml_run):
    assert ml_run["backtest"].success
    runs = ml_run["wh"].read("backtest.runs").filter(pl.col("strategy") == "ml_model")
    assert runs.height == 3 and runs["n_candles"].to_list() == [24 * DAYS] * 3
    sig = ml_run["wh"].read("signals.signals").filter(pl.col("strategy") == "ml_model")
    assert sig["entry"].sum() > 0  # the champion was found and traded ...
    first = sig.filter(pl.col("entry"))["ts"].min()
    assert first >= ml_run["preds"].filter(~pl.col("oos"))["ts"].min()  # ... only after its training data


def test_the_strategy_predicts_what_the_table_holds(ml_run):
    wh = ml_run["wh"]
    from quantdag.markets import Market
    from quantdag.stages.common import read_candles

    strategy = create_strategy("ml_model")
    assert strategy.frame_peers == ("BTC/USDT",)
    # the frame the pipeline gives it: OHLCV + sent_* + event_* + its peers' closes
    candles = read_candles(wh, Market("sim", "BTC/USDT", "1h"), peers=strategy.frame_peers)
    out = strategy.signals(candles.drop("exchange", "symbol", "timeframe", "filled"))
    table = ml_run["preds"].filter(~pl.col("oos"), pl.col("symbol") == "BTC/USDT").select("ts", "p_up")
    both = out.select("ts", "p_up").join(table, on="ts", suffix="_table").drop_nulls()
    assert both.height > 200 and both["p_up"].equals(both["p_up_table"].alias("p_up"))
    assert out.filter(pl.col("ts") < table["ts"].min())["p_up"].null_count() == out.filter(pl.col("ts") < table["ts"].min()).height


def test_ml_model_paper_trades_and_joins_a_portfolio(ml_run):
    assert ml_run["paper"].success
    meta = ml_run["paper"].asset_materializations_for_node("paper_trades")[0].metadata
    assert meta["risk_state"].value.lower() == "active"
    assert ml_run["portfolio"].success
    weights = ml_run["wh"].read("portfolio.weights")
    assert weights["strategy"].unique().to_list() == [ml_run["key"]] and weights["weight"].max() > 0


def test_rerunning_features_and_labels_gives_identical_tables(ml_run):
    from datetime import date

    from quantdag.markets import day_windows
    from quantdag.ml.features import FeatureConfig
    from quantdag.ml.labels import LabelConfig
    from quantdag.stages.ml import build_features, build_labels

    defs, wh = ml_run["defs"], ml_run["wh"]
    venue = defs.resources["exchange"].venue
    markets = [m.on(venue) for m in config_with(ml=ML).ml_markets]
    key = ("exchange", "symbol", "timeframe", "ts")
    before = wh.table_hash("ml.features", key), wh.table_hash("ml.labels", (*key, "kind"))
    days = [date.fromisoformat(d) for d in recent_days(DAYS)[-3:]]
    build_features(wh, {m: day_windows(days) for m in markets}, FeatureConfig.from_mapping(ML["features"]))
    build_labels(wh, markets, LabelConfig(kind="fixed", horizon=12))
    assert (wh.table_hash("ml.features", key), wh.table_hash("ml.labels", (*key, "kind"))) == before


def test_a_meta_model_gates_its_rule_through_the_pipeline(ml_run):
    """labels.kind meta: labels only on the rule's entries, a model trained on them, and its ml_model
    parameter set enters only on rule entries it takes and exits with the rule."""
    from pipelines.definitions import build_defs

    meta_ml = {**ML, "model_name": "quantdag_meta", "min_training_rows": 300,  # the stored features: the same settings
               "labels": {"kind": "meta", "horizon": 12, "rule": "sma_cross", "rule_params": {"fast": 1, "slow": 2}}}
    config = config_with(ml=meta_ml, strategies={"defaults": False, "param_sets": [
        {"strategy": "ml_model", "params": {"model_name": "quantdag_meta", "threshold": 0.5}},
        {"strategy": "sma_cross", "params": {"fast": 1, "slow": 2}}]})
    defs = build_defs(ml_run["tmp"], config=config, sim_url=ml_run["sim_url"])
    wh = defs.resources["warehouse"].get()
    with dg.instance_for_test() as instance:
        trained = defs.resolve_job_def("ml_job").execute_in_process(instance=instance)
        assert trained.success
        meta = trained.asset_materializations_for_node("ml_model")[0].metadata
        assert meta["alias"].value == "champion" and "oos_dsr" in meta
        keys = [param_set_key(create_strategy("ml_model", {"model_name": "quantdag_meta", "threshold": 0.5})),
                param_set_key(create_strategy("sma_cross", {"fast": 1, "slow": 2}))]
        instance.add_dynamic_partitions("param_sets", keys)
        for key in keys:
            assert defs.resolve_job_def("backtest_job").execute_in_process(instance=instance, partition_key=key).success
    labels = wh.read("ml.labels").filter(pl.col("kind") == "meta")
    sig = wh.read("signals.signals")
    rule, gated = (sig.filter(pl.col("strategy") == s.name, pl.col("params_hash") == s.params_hash) for s in (
        create_strategy("sma_cross", {"fast": 1, "slow": 2}), create_strategy("ml_model", {"model_name": "quantdag_meta", "threshold": 0.5})))
    entries = rule.filter(pl.col("entry")).select("symbol", "ts")
    assert labels.height > 20 and labels.select("symbol", "ts").join(entries, on=["symbol", "ts"], how="anti").height == 0
    taken = gated.filter(pl.col("entry")).select("symbol", "ts")
    assert taken.height > 0 and taken.join(entries, on=["symbol", "ts"], how="anti").height == 0  # only the rule's entries
    both = gated.join(rule, on=["symbol", "ts"], suffix="_rule")
    assert both["exit"].equals(both["exit_rule"].alias("exit"))  # the rule's exits
