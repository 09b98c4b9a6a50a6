"""Training: deterministic models and predictions, and no skill found in the simulator's random walk."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from quantdag.backtest import BacktestSettings
from quantdag.errors import ConfigurationError
from quantdag.ml.features import compute_features
from quantdag.ml.labels import LabelConfig, compute_labels
from quantdag.ml.models import make_model, probabilities_to_target
from quantdag.ml.training import TrainingConfig, oos_backtest, predict_frame, train

from .simdata import sim_candles

FAST = TrainingConfig(params={"n_estimators": 60}, labels=LabelConfig(kind="fixed", horizon=12))


def _train(candles, cfg=FAST):
    feats = compute_features(candles, cfg.features)
    return feats, train(feats, compute_labels(candles, cfg.labels), cfg)


def test_identical_runs_give_identical_predictions(candles):
    feats, a = _train(candles)
    _, b = _train(candles)
    assert a.oos.equals(b.oos) and a.metrics == b.metrics
    assert predict_frame(a.model, feats, a.feature_names).equals(predict_frame(b.model, feats, b.feature_names))
    assert a.model.estimator_.booster_.model_to_string() == b.model.estimator_.booster_.model_to_string()  # behind the outlier gate


def test_oos_predictions_cover_later_blocks_only(candles):
    _, r = _train(candles)
    first_oos = r.oos["ts"].min()
    span = candles["ts"].max() - candles["ts"].min()
    assert first_oos > candles["ts"].min() + span * 0.3  # the first 2 of 6 time blocks only train
    assert r.metrics["oos_rows"] == r.oos.height > 1000


@pytest.mark.slow
def test_random_walk_has_no_out_of_sample_skill():
    """The simulator's markets have no predictable drift: the model must not find any."""
    pbos = []
    for seed in (1, 2, 3, 4):
        c = sim_candles(("BTC/USDT", "ETH/USDT", "SOL/USDT"), days=120, seed=seed)
        _, r = _train(c)
        net = oos_backtest(c, r.oos, FAST)
        gross = oos_backtest(c, r.oos, FAST, BacktestSettings(fee=0.0, slippage=0.0))
        assert net.dsr < 0.95, (seed, net.metrics())  # no significant skill after deflation
        assert abs(gross.sharpe * np.sqrt(gross.n_obs)) < 3.0, (seed, gross.metrics())  # Sharpe t-stat ~ 0
        assert 0.4 < r.metrics["cv_auc"] < 0.6
        pbos.append(net.pbo)
    assert np.median(pbos) >= 0.5, pbos  # the in-sample best threshold is usually below median out of sample


def test_probability_to_target_mapping():
    p = np.array([0.2, 0.45, 0.5, 0.56, np.nan])
    assert probabilities_to_target(p, 0.55, False).tolist() == [0, 0, 0, 1, 0]
    assert probabilities_to_target(p, 0.55, True).tolist() == [-1, 0, 0, 1, 0]
    with pytest.raises(ConfigurationError, match="threshold"):
        probabilities_to_target(p, 0.4, False)


def test_pinned_model_settings_cannot_be_overridden():
    with pytest.raises(ConfigurationError, match="pinned"):
        make_model("lightgbm", n_jobs=4)
    with pytest.raises(ConfigurationError, match="kind"):
        make_model("xgboost")


def test_logistic_model_trains_too(candles):
    cfg = TrainingConfig(model="logistic", labels=LabelConfig(kind="fixed", horizon=12))
    _, r = _train(candles, cfg)
    assert 0.3 < r.metrics["cv_auc"] < 0.7 and r.oos.height > 1000


def test_oos_backtest_reports_each_market_and_overfitting_stats(candles):
    _, r = _train(candles)
    bt = oos_backtest(candles, r.oos, FAST)
    assert set(bt.per_market) == {"BTC/USDT:1h", "ETH/USDT:1h"}
    assert bt.returns.shape[1] == len(FAST.thresholds) and 0 <= bt.pbo <= 1 and 0 <= bt.dsr <= 1
    assert bt.n_obs >= r.oos.select(pl.col("ts").n_unique()).item()  # from the first prediction to the last candle


def test_cpcv_scores_every_recombined_path(candles):
    import dataclasses

    cfg = dataclasses.replace(FAST, cpcv=(5, 2), params={"n_estimators": 20})
    _, r = _train(candles, cfg)
    assert r.metrics["cpcv_paths"] == 4  # C(5, 2) * 2 / 5
    assert r.metrics["cpcv_auc_min"] <= r.metrics["cpcv_auc_mean"] <= r.metrics["cpcv_auc_max"]
    assert 0.3 < r.metrics["cpcv_auc_mean"] < 0.7
