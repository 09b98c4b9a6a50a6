"""Regime classifier and the regime-aware MA crossover ("regime_ma") on real Kraken candles."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles

from quantdag import indicators as ind
from quantdag.errors import ConfigurationError
from quantdag.strategies import REGIMES, RegimeClassifier, RegimeMaCross, SmaCross, classify_regime, get_strategy
from quantdag.strategies.regime import trailing_percentile


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "1h")


@pytest.mark.parametrize("timeframe", ["5m", "1h"])
def test_classifier_default_settings_find_all_four_regimes(timeframe):
    table = classify_regime(load_real_candles("kraken", "BTC_USDT", timeframe))
    counts = dict(table["regime"].drop_nulls().value_counts().iter_rows())
    assert set(counts) == set(REGIMES)
    # none is marginal: each covers at least 5 % of the labelled candles
    assert min(counts.values()) >= 0.05 * sum(counts.values())


def test_classifier_table_columns_and_warm_up(candles):
    clf = RegimeClassifier()
    table = clf.classify(candles)
    assert table.columns == ["ts", "adx", "realized_vol", "vol_pct", "regime"]
    assert table.schema["regime"] == pl.String
    assert clf.warmup == 24 + 250 - 1
    assert table["regime"].head(clf.warmup).null_count() == clf.warmup
    assert table["regime"].slice(clf.warmup).null_count() == 0


def test_classifier_labels_follow_adx_and_percentile(candles):
    clf = RegimeClassifier(adx_threshold=20.0, vol_split=0.6)
    table = clf.classify(candles).drop_nulls("regime")
    adx = ind.adx(candles["high"], candles["low"], candles["close"], 14)[-table.height :]
    np.testing.assert_array_equal(table["adx"].to_numpy(), adx)
    trend = np.where(adx >= 20.0, "trend", "range")
    vol = np.where(table["vol_pct"].to_numpy() > 0.6, "high_vol", "low_vol")
    expected = [f"{t}_{v}" for t, v in zip(trend, vol, strict=True)]
    assert table["regime"].to_list() == expected


def test_realized_vol_matches_numpy_std_of_log_returns(candles):
    table = RegimeClassifier(vol_window=24).classify(candles)
    logret = np.diff(np.log(candles["close"].to_numpy()))
    for t in (24, 100, 2159):
        assert table["realized_vol"][t] == pytest.approx(np.std(logret[t - 24 : t], ddof=1), rel=1e-9)
    assert table["realized_vol"].head(24).null_count() == 24


def test_vol_percentile_is_trailing_mid_rank_not_full_sample(candles):
    window = 250
    table = RegimeClassifier(rank_window=window).classify(candles)
    vol = table["realized_vol"].to_numpy()
    pct = table["vol_pct"].to_numpy()
    for t in (273, 500, 1234, 2159):
        past = vol[t - window + 1 : t + 1]
        ref = (np.sum(past < vol[t]) + 0.5 * np.sum(past == vol[t])) / window  # (average rank - 0.5) / window
        assert pct[t] == pytest.approx(ref, abs=1e-12)
    # a full-sample percentile would differ: the same level ranks differently in calm and wild months
    full = pl.Series(vol).rank("average") / np.isfinite(vol).sum()
    assert np.nanmax(np.abs(full.to_numpy() - pct)) > 0.2


def test_trailing_percentile_ties_take_average_rank():
    frame = pl.DataFrame({"v": [1.0, 1.0, 1.0, 2.0]})
    out = frame.select(trailing_percentile(pl.col("v"), 3)).to_series().to_list()
    assert out == [None, None, 0.5, pytest.approx(2.5 / 3)]


@pytest.mark.parametrize(
    ("settings", "name"),
    [({"adx_period": 1}, "adx_period"), ({"vol_split": 1.5}, "vol_split"), ({"rank_window": True}, "rank_window")],
)
def test_classifier_invalid_settings_rejected_naming_field(settings, name):
    with pytest.raises(ConfigurationError, match=f"invalid {name} ="):
        RegimeClassifier(**settings)


def test_regime_ma_entries_are_gated_crossovers_in_allowed_regimes(candles):
    s = RegimeMaCross()
    out = s.signals(candles)
    assert s.allowed_regimes == ("trend_high_vol", "trend_low_vol")
    raw = SmaCross(fast=10, slow=50).signals(candles)
    assert out["raw_entry"].equals(raw["entry"]) and out["exit"].equals(raw["exit"])
    entries = out.filter("entry")
    assert entries.height > 0
    assert entries["regime"].is_in(list(s.allowed_regimes)).all() and entries["raw_entry"].all()
    blocked = out.filter(pl.col("raw_entry") & ~pl.col("entry"))
    assert blocked.height > 0
    assert (~blocked["regime"].is_in(list(s.allowed_regimes)) | blocked["regime"].is_null()).all()


def test_regime_ma_ungated_equals_plain_crossover_after_warm_up(candles):
    s = RegimeMaCross(trade_range=True, trade_high_vol=True)
    out = s.signals(candles)
    assert s.allowed_regimes == REGIMES
    expected = out["raw_entry"] & out["regime"].is_not_null()
    assert out["entry"].equals(expected)
    assert not out["entry"].head(s.classifier.warmup).any()


def test_regime_ma_target_is_position_times_regime_size(candles):
    s = RegimeMaCross(trade_range=True, high_vol_size=0.25)
    out = s.signals(candles)
    held, state = [], 0
    for e, x in zip(out["entry"], out["exit"], strict=True):
        state = 0 if x else (1 if e else state)
        held.append(state)
    size = np.where(out["regime"].str.ends_with("high_vol").fill_null(False).to_numpy(), 0.25, 1.0)
    np.testing.assert_array_equal(out["target"].to_numpy(), np.array(held) * size)
    assert set(np.unique(out["target"].to_numpy())) == {0.0, 0.25, 1.0}


def test_regime_ma_low_vol_only_never_enters_in_high_vol(candles):
    out = RegimeMaCross(trade_range=True, trade_high_vol=False).signals(candles)
    assert out.filter("entry")["regime"].str.ends_with("low_vol").all()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fast": 60}, r"'fast < slow' violated by fast=60, slow=50"),
        ({"adx_threshold": 101}, r"parameter 'adx_threshold' must be in \[0, 100\], got 101"),
        ({"vol_split": -0.1}, r"parameter 'vol_split' must be in \[0, 1\], got -0.1"),
        ({"high_vol_size": 2}, r"parameter 'high_vol_size' must be in \[0, 1\], got 2"),
    ],
)
def test_regime_ma_invalid_params_rejected_naming_parameter(params, message):
    with pytest.raises(ConfigurationError, match=message):
        get_strategy("regime_ma").from_params(params)
