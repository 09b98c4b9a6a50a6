"""The ``ml_model`` strategy: a registered model trades like any strategy, honestly."""

from __future__ import annotations

import os

import mlflow
import polars as pl
import pytest

from quantdag.backtest import BacktestSettings
from quantdag.ml.features import DEFAULT_GROUPS, FeatureConfig, compute_features
from quantdag.ml.labels import LabelConfig, compute_labels
from quantdag.ml.registry import log_training, promote, use_store
from quantdag.ml.training import TrainingConfig, train
from quantdag.optimize.generic import generic_metrics, run_strategy
from quantdag.strategies import check_lookahead, create_strategy, list_strategies

from .simdata import fresh_store

CFG = TrainingConfig(params={"n_estimators": 40}, labels=LabelConfig(kind="fixed", horizon=12))


@pytest.fixture(scope="module")
def registry(tmp_path_factory, candles):
    """A store holding model ``m`` (single-market features, champion) and ``cross`` (needs BTC's candles)."""
    folder = tmp_path_factory.mktemp("mlflow")
    with fresh_store(folder) as exp:
        c = candles.filter(pl.col("ts") < pl.col("ts").min() + pl.duration(days=45))
        labels = compute_labels(c, CFG.labels)
        for name, cfg in (("m", CFG), ("cross", TrainingConfig(params={"n_estimators": 10}, labels=CFG.labels, features=FeatureConfig(
                groups=(*DEFAULT_GROUPS, "markets"), correlated=("BTC/USDT",))))):  # fmt: skip
            result = train(compute_features(c, cfg.features), labels, cfg)
            with mlflow.start_run(experiment_id=exp):
                info = log_training(result, None, model_name=name)
            promote(info, result.oos, c, labels)
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture
def with_store(registry):
    before = os.environ.pop("MLFLOW_TRACKING_URI", None)
    use_store(registry)
    yield registry
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if before is not None:
        os.environ["MLFLOW_TRACKING_URI"] = before
    mlflow.set_tracking_uri("")


@pytest.fixture(scope="module")
def eth(candles):
    return candles.filter(pl.col("symbol") == "ETH/USDT").sort("ts").select("ts", "open", "high", "low", "close", "volume")


def test_ml_model_is_registered_with_its_parameters():
    s = create_strategy("ml_model")
    assert "ml_model" in list_strategies()
    assert s.params == {"model_name": "quantdag_ml", "alias": "champion", "threshold": 0.55, "long_short": False}


def test_ml_model_passes_the_lookahead_check(with_store, eth):
    s = create_strategy("ml_model", {"model_name": "m", "threshold": 0.5})
    out = s.signals(eth)
    assert out["entry"].sum() > 50
    report = check_lookahead(s, eth, prefixes=12, perturbations=3)
    assert report.ok, report.summary()


def test_a_candles_prediction_is_identical_whichever_window_contains_it(with_store, eth):
    s = create_strategy("ml_model", {"model_name": "m"})
    full = s.signals(eth).select("ts", "p_up")
    later = s.signals(eth.slice(500)).select("ts", "p_up")  # history starts 500 candles later
    window = s.signals(eth.slice(300, 1500)).select("ts", "p_up")  # a backtest window in the middle
    for other in (later, window):
        both = full.join(other, on="ts", suffix="_other").drop_nulls()
        assert both.height > 600
        assert both["p_up"].equals(both["p_up_other"])  # bit-identical


def test_ml_model_backtests_and_sweeps_like_any_strategy(with_store, eth):
    s = create_strategy("ml_model", {"model_name": "m", "threshold": 0.5})
    res = run_strategy(eth, s, BacktestSettings())
    assert res.metrics["n_trades"] > 5
    grid = [{"model_name": "m", "threshold": t} for t in (0.5, 0.55, 0.6)]
    metrics = generic_metrics(eth, "ml_model", grid, BacktestSettings())
    assert metrics["n_trades"][0] == res.metrics["n_trades"] and (metrics["n_trades"] > 0).all()
    both = create_strategy("ml_model", {"model_name": "m", "threshold": 0.5, "long_short": True})
    out = both.signals(eth)
    assert out["short_entry"].sum() > 0
    assert run_strategy(eth, both, BacktestSettings()).metrics["n_trades"] > res.metrics["n_trades"]


@pytest.mark.slow
def test_ml_model_sweep_in_spawned_workers_finds_the_same_model(with_store, eth):
    # the store travels to the workers as MLFLOW_TRACKING_URI; a worker without it would trade nothing
    grid = [{"model_name": "m", "threshold": t} for t in (0.5, 0.55, 0.6, 0.65)]
    inline = generic_metrics(eth, "ml_model", grid, BacktestSettings(), n_jobs=1)
    spawned = generic_metrics(eth, "ml_model", grid, BacktestSettings(), n_jobs=2)
    assert (inline["n_trades"] > 0).all() and (spawned["n_trades"] == inline["n_trades"]).all()
    assert (spawned["total_return"] == inline["total_return"]).all()


def test_ml_model_trades_only_after_its_training_data(with_store, eth):
    from quantdag.ml.registry import resolve

    end = resolve("m", "champion").train_end_ms
    out = create_strategy("ml_model", {"model_name": "m"}).signals(eth).with_columns(ms=pl.col("ts").dt.epoch("ms"))
    before, after = out.filter(pl.col("ms") < end), out.filter(pl.col("ms") >= end)
    assert before.height > 900 and before["p_up"].null_count() == before.height and not before["entry"].any()
    assert after.height > 900 and after["p_up"].null_count() < after.height * 0.2
    # after it, exactly the candles its outlier gate flags (unlike anything it learned from) have no view
    from quantdag.ml.features import ohlcv_features
    from quantdag.ml.registry import load_version

    info = resolve("m", "champion")
    gated = load_version(info).is_outlier(ohlcv_features(eth, info.features).select(info.feature_names).to_numpy())
    assert (after["p_up"].is_null().to_numpy() == gated[out["ms"].to_numpy() >= end]).all()


def test_ml_model_without_a_store_or_model_has_no_view(eth, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri("")
    out = create_strategy("ml_model").signals(eth)  # no store configured
    assert out["p_up"].null_count() == eth.height and not out["entry"].any()


def test_ml_model_with_an_unknown_alias_has_no_view(with_store, eth):
    out = create_strategy("ml_model", {"model_name": "m", "alias": "challenger"}).signals(eth)
    assert not out["entry"].any()


def test_a_cross_market_model_predicts_from_its_peers_closes_as_the_stage_does(with_store, candles, eth):
    """A model with the ``markets`` group asks for its peer's closes (``frame_peers``); given them as
    frame columns, its probabilities equal the stage's from the stored features of both markets."""
    from quantdag.markets import peer_close_column
    from quantdag.ml.registry import load_version, resolve
    from quantdag.ml.training import predict_frame

    s = create_strategy("ml_model", {"model_name": "cross"})
    assert s.frame_peers == ("BTC/USDT",)
    btc = candles.filter(pl.col("symbol") == "BTC/USDT").select("ts", pl.col("close").alias(peer_close_column("BTC/USDT")))
    frame = eth.join(btc, on="ts", how="left", maintain_order="left")
    got = s.signals(frame).select("ts", "p_up").drop_nulls()
    info = resolve("cross", "champion")
    stage = predict_frame(load_version(info), compute_features(candles, info.features), info.feature_names)
    stage = stage.filter(pl.col("symbol") == "ETH/USDT").select("ts", pl.col("p_up").alias("p_stage"))
    both = got.join(stage, on="ts")
    assert both.height == got.height > 200
    assert both["p_up"].equals(both["p_stage"])  # bit-identical
    with pytest.raises(Exception, match="peer_close_btc_usdt"):  # without the peer's closes: refused by name
        s.signals(eth)


def test_a_model_on_a_peeking_feature_fails_the_lookahead_check(with_store, candles, eth):
    """The existing look-ahead machinery catches a model whose feature peeks at the next candle."""
    import numpy as np

    from quantdag.ml.features import FeatureGroup, register_feature_group, unregister_feature_group

    def peek(m, cfg):
        return {"next_return": np.append(np.diff(np.log(m.close)), np.nan)}  # row t holds t -> t+1

    register_feature_group(FeatureGroup("peek_fixture", peek, lambda c, ms: 1))
    try:
        cfg = TrainingConfig(params={"n_estimators": 20}, labels=CFG.labels, features=FeatureConfig(groups=("returns", "peek_fixture")))
        c = candles.filter(pl.col("ts") < pl.col("ts").min() + pl.duration(days=30))
        result = train(compute_features(c, cfg.features), compute_labels(c, cfg.labels), cfg)
        assert result.metrics["cv_auc"] > 0.55, result.metrics["cv_auc"]  # the peek "predicts" the label
        exp = mlflow.MlflowClient().get_experiment_by_name("ml").experiment_id
        with mlflow.start_run(experiment_id=exp):
            info = log_training(result, None, model_name="peeking")
        promote(info, result.oos, c, compute_labels(c, cfg.labels))
        report = check_lookahead(create_strategy("ml_model", {"model_name": "peeking", "threshold": 0.5}), eth, prefixes=10, perturbations=2)
        assert not report.ok and "p_up" in report.columns
    finally:
        unregister_feature_group("peek_fixture")


def test_ml_model_takes_no_position_on_an_outlier_candle(with_store, eth):
    """The registered model's outlier gate (on by default) reaches the strategy: a candle unlike
    anything the model learned from gets no probability and no position."""
    from quantdag.ml.registry import resolve

    spike_at = 1800  # after the model's training data (its first 45 of 90 days)
    frame = eth.with_columns([pl.when(pl.int_range(pl.len()) == spike_at).then(pl.col(c) * 4).otherwise(pl.col(c)).alias(c)
                              for c in ("high", "close")])  # fmt: skip
    out = create_strategy("ml_model", {"model_name": "m", "threshold": 0.5}).signals(frame)
    assert out["ts"][spike_at].timestamp() * 1000 >= resolve("m", "champion").train_end_ms
    assert out["p_up"][spike_at] is None and not out["entry"][spike_at] and out["exit"][spike_at]
    assert out["p_up"].slice(spike_at - 300, 250).is_not_null().mean() > 0.9  # ordinary candles after train_end are predicted


def test_a_meta_model_takes_only_its_rules_entries_and_never_shorts():
    """emits_shorts follows the parameters alone (never the registry); a meta model's shorts stay flat."""
    s = create_strategy("ml_model", {"long_short": True, "threshold": 0.6})
    frame = pl.DataFrame({"ts": [1, 2, 3, 4], "p_up": [0.7, None, 0.9, 0.2], "rule_entry": [True, True, False, False],
                          "rule_exit": [False, False, False, True]})
    out = s._assemble(s.compute_signals(frame), frame.select("ts"))
    assert s.emits_shorts()
    assert out["entry"].to_list() == [True, False, False, False]  # a rule entry the model takes; no p: not taken
    assert out["exit"].to_list() == [False, False, False, True] and not out["short_entry"].any()
