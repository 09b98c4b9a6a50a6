"""Features: exact rolling kernels, causal and finite-window values, a peeking group caught."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from quantdag.errors import ConfigurationError, DataError
from quantdag.ml import nb
from quantdag.ml.features import (
    DEFAULT_GROUPS,
    FeatureConfig,
    FeatureGroup,
    check_feature_causality,
    compute_features,
    feature_columns,
    ohlcv_features,
    register_feature_group,
    unregister_feature_group,
)

from .simdata import sim_candles

CROSS = FeatureConfig(groups=(*DEFAULT_GROUPS, "markets"), correlated=("BTC/USDT",))


def _ref(x: np.ndarray, w: int, fn) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    out[w - 1 :] = fn(sliding_window_view(x, w))
    return out


def test_rolling_kernels_equal_numpy_windows():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=300), rng.normal(size=300)
    for w in (2, 7, 50):
        np.testing.assert_allclose(nb.rolling_mean_nb(x, w), _ref(x, w, lambda v: v.mean(axis=1)), rtol=1e-12)
        np.testing.assert_allclose(nb.rolling_std_nb(x, w), _ref(x, w, lambda v: v.std(axis=1, ddof=1)), rtol=1e-10)
        np.testing.assert_array_equal(nb.rolling_max_nb(x, w), _ref(x, w, lambda v: v.max(axis=1)))
        np.testing.assert_array_equal(nb.rolling_min_nb(x, w), _ref(x, w, lambda v: v.min(axis=1)))
        corr = _ref(np.arange(300.0), w, lambda v: [np.corrcoef(x[i[0] : i[-1] + 1], y[i[0] : i[-1] + 1])[0, 1] for i in v.astype(int)])
        np.testing.assert_allclose(nb.rolling_corr_nb(x, y, w), corr, rtol=1e-9)


def test_features_are_causal_and_independent_of_history_start(candles):
    assert check_feature_causality(candles, CROSS) == []


def test_candle_features_bit_identical_whichever_history_start(candles):
    cfg = CROSS
    full = compute_features(candles, cfg)
    later = candles.filter(pl.col("ts") >= pl.col("ts").min() + pl.duration(days=11, hours=5))
    part = compute_features(later, cfg)
    warm = cfg.warmup("1h")
    first = part["ts"].unique().sort()[warm]
    a = full.filter(pl.col("ts") >= first).sort("symbol", "ts")
    b = part.filter(pl.col("ts") >= first).sort("symbol", "ts")
    assert a.height == b.height > 1000
    assert a.equals(b)  # bit-identical, nulls included


def test_peeking_feature_group_is_reported():
    def peek(m, cfg):
        nxt = np.append(m.close[1:], np.nan)
        return {"next_close_ratio": nxt / m.close}

    register_feature_group(FeatureGroup("peek_fixture", peek, lambda c, ms: 1))
    try:
        cfg = FeatureConfig(groups=("returns", "peek_fixture"))
        problems = check_feature_causality(sim_candles(("BTC/USDT",), days=30), cfg)
        assert problems and "next_close_ratio" in problems[0] and "later candles" in problems[0]
    finally:
        unregister_feature_group("peek_fixture")


def test_coarse_timeframe_feature_changes_only_when_its_candle_closes(candles):
    f = compute_features(candles.filter(pl.col("symbol") == "BTC/USDT"), FeatureConfig(groups=("timeframes",)))
    changed = f.filter(pl.col("tf4h_ret_1").diff().fill_null(0) != 0)
    assert changed.height > 100
    assert set(changed["ts"].dt.hour().unique().to_list()) <= {3, 7, 11, 15, 19, 23}  # the last 1h candle of each 4h bucket


def test_ohlcv_features_of_a_strategy_frame_equal_the_table_rows(candles):
    cfg = FeatureConfig()
    one = candles.filter(pl.col("symbol") == "ETH/USDT").sort("ts")
    table = compute_features(one, cfg).drop("exchange", "symbol", "timeframe")
    assert ohlcv_features(one.select("ts", "open", "high", "low", "close", "volume"), cfg).equals(table)


def test_ohlcv_features_refuse_cross_market_config(candles):
    with pytest.raises(ConfigurationError, match="other markets"):
        ohlcv_features(candles.head(10), CROSS)


def test_missing_correlated_market_names_it(candles):
    with pytest.raises(DataError, match="SOL/USDT"):
        compute_features(candles, FeatureConfig(groups=("markets",), correlated=("SOL/USDT",)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"groups": ("nope",)}, "registered"), ({"periods": (1,)}, "periods"), ({"timeframes": ("3h",)}, "3h"),
     ({"groups": ("markets",)}, "correlated")],
)  # fmt: skip
def test_bad_feature_config_names_the_value(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        FeatureConfig(**kwargs)


def test_feature_columns_list_matches_computed_frame(candles):
    f = compute_features(candles, CROSS)
    assert f.columns[4:] == feature_columns(CROSS)
    assert f.select(pl.all().exclude("exchange", "symbol", "timeframe", "ts").is_nan().any()).row(0) == (False,) * (f.width - 4)


def test_a_data_group_joins_its_table_by_candle_key(candles):
    """How the sentiment branch's sentiment.bars joins: one more group naming its input table."""

    def sentiment(m, cfg):
        score = m.extra["sentiment.bars"]["score"]
        return {f"sentiment_{p}": nb.rolling_mean_nb(np.nan_to_num(score), p) for p in cfg.periods}

    register_feature_group(FeatureGroup("sentiment_fixture", sentiment, lambda c, ms: max(c.periods), inputs=("sentiment.bars",)))
    try:
        cfg = FeatureConfig(groups=("returns", "sentiment_fixture"), periods=(2, 3))
        assert cfg.inputs == ("sentiment.bars",) and feature_columns(cfg)[-2:] == ["sentiment_2", "sentiment_3"]
        bars = candles.select("exchange", "symbol", "timeframe", "ts").with_columns(score=pl.lit(1.0)).head(100)
        f = compute_features(candles, cfg, extra={"sentiment.bars": bars})
        btc = f.filter(pl.col("symbol") == "BTC/USDT").sort("ts")
        assert btc["sentiment_2"][1:100].to_list() == [1.0] * 99 and btc["sentiment_2"][101] == 0.0
        with pytest.raises(DataError, match="sentiment.bars"):
            compute_features(candles, cfg)
    finally:
        unregister_feature_group("sentiment_fixture")


def test_the_sentiment_group_gives_a_strategy_frame_the_stage_s_features(candles):
    """The pipeline's features read ``sentiment.bars`` (rows only where news was scored); a strategy's frame
    carries the same columns with 0 where nothing was known: both give identical feature values."""
    cfg = FeatureConfig(groups=("returns", "sentiment"), periods=(2, 6))
    btc = candles.filter(pl.col("symbol") == "BTC/USDT").sort("ts")
    rng = np.random.default_rng(3)
    bars = btc.select("exchange", "symbol", "timeframe", "ts").with_columns(
        asset=pl.lit("BTC"), sent_count=pl.Series(rng.integers(0, 4, btc.height), dtype=pl.Int32),
        sent_mean=pl.Series(rng.normal(0, 0.3, btc.height)), sent_dispersion=pl.Series(rng.random(btc.height)),
        sent_decayed=pl.Series(rng.normal(0, 0.2, btc.height)),
    ).filter(pl.col("sent_count") > 0).with_columns(pl.col("sent_decayed") * 1.0)  # candles without news: no row
    stage = compute_features(btc, cfg, extra={"sentiment.bars": bars}).drop("exchange", "symbol", "timeframe")
    frame = btc.join(bars.drop("exchange", "symbol", "timeframe", "asset"), on="ts", how="left").with_columns(
        pl.col("sent_count").fill_null(0), pl.col("sent_mean", "sent_dispersion", "sent_decayed").fill_null(0.0))
    strategy = ohlcv_features(frame, cfg)
    assert stage.columns == strategy.columns and "sent_mean_6" in stage.columns and "sent_count_2" in stage.columns
    assert stage.equals(strategy)
    with pytest.raises(ConfigurationError, match="tables"):  # a frame without the columns cannot give them
        ohlcv_features(btc, cfg)
