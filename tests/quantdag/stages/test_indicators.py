"""The indicators stage on a real DuckDB file: configured columns land, added in the write's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
import talib
from conftest import load_real_candles
from polars.testing import assert_frame_equal

from quantdag.data import clean_candles
from quantdag.errors import DataError, StrategyError
from quantdag.features import DEFAULT_INDICATORS, INDICATOR_COLUMNS, indicator_specs, lookback_days
from quantdag.indicators import register_indicator, unregister_indicator
from quantdag.markets import CANDLE_KEY, Market
from quantdag.stages.common import market_slice
from quantdag.stages.indicators import build_indicators
from quantdag.store import Warehouse

UTC = timezone.utc
M = Market("kraken", "BTC/USDT", "1h")
W1 = (datetime(2023, 3, 10, tzinfo=UTC), datetime(2023, 3, 12, tzinfo=UTC))
W2 = (datetime(2023, 3, 20, tzinfo=UTC), datetime(2023, 3, 21, tzinfo=UTC))
EXTRA = [
    {"column": "cci_20", "function": "CCI", "params": {"timeperiod": 20}},
    {"column": "volume_sma_10", "function": "SMA", "inputs": {"price": "volume"}, "params": {"timeperiod": 10}},
    {"column": "range_pct_5", "function": "range_pct", "params": {"window": 5}},
]


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    c = load_real_candles("kraken", "BTC_USDT", "1h")
    raw = c.select(
        pl.lit("kraken").alias("exchange"), pl.lit("BTC/USDT").alias("symbol"), pl.lit("1h").alias("timeframe"),
        pl.col("ts").dt.epoch("ms").alias("ts"), "open", "high", "low", "close", "volume",
        pl.lit(2_000_000_000_000).cast(pl.Datetime("ms", "UTC")).alias("fetched_at"),
    )
    return clean_candles(raw, start=raw["ts"].min(), end=raw["ts"].max() + 3_600_000).candles


@pytest.fixture
def wh(tmp_path, candles) -> Warehouse:
    w = Warehouse(tmp_path / "x.duckdb")
    w.replace_slices("market.candles", candles, [market_slice(M)], order_by=CANDLE_KEY)
    return w


@pytest.fixture
def range_pct():
    @register_indicator
    def range_pct(candles: pl.DataFrame, window: int = 3) -> pl.Series:
        return ((candles["high"] - candles["low"]) / candles["close"]).rolling_mean(window)

    yield range_pct
    unregister_indicator("range_pct")


def _columns(wh: Warehouse) -> list[str]:
    return wh.query("SELECT * FROM features.indicators LIMIT 0").columns


def _window_arrays(candles: pl.DataFrame, w) -> tuple[pl.DataFrame, dict[str, np.ndarray], np.ndarray]:
    """The candles the stage reads for window ``w`` (look-back included) and which rows it keeps."""
    ctx = candles.filter((pl.col("ts") >= w[0] - timedelta(days=lookback_days("1h"))) & (pl.col("ts") < w[1]))
    return ctx, {c: ctx[c].to_numpy() for c in ("high", "low", "close", "volume")}, (ctx["ts"] >= w[0]).to_numpy()


def _read(wh: Warehouse, w) -> pl.DataFrame:
    return wh.read("features.indicators", [market_slice(M, w)], order_by=CANDLE_KEY)


def test_build_indicators_default_specs_write_todays_columns_and_talib_values(wh, candles):
    build_indicators(wh, {M: [W1]})
    assert _columns(wh) == [*CANDLE_KEY, *INDICATOR_COLUMNS]
    out = _read(wh, W1)
    _, a, keep = _window_arrays(candles, W1)
    h, lo, c = a["high"], a["low"], a["close"]
    macd, signal, hist = talib.MACD(c, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0)
    direct = {
        "sma_20": talib.SMA(c, 20), "sma_50": talib.SMA(c, 50), "ema_12": talib.EMA(c, 12), "ema_26": talib.EMA(c, 26),
        "rsi_14": talib.RSI(c, 14), "macd": macd, "macd_signal": signal, "macd_hist": hist, "bb_upper": upper,
        "bb_middle": middle, "bb_lower": lower, "atr_14": talib.ATR(h, lo, c, 14), "adx_14": talib.ADX(h, lo, c, 14),
    }
    assert out.height == 48
    for name, values in direct.items():
        np.testing.assert_array_equal(out[name].to_numpy(), values[keep], err_msg=name)


def test_build_indicators_configured_talib_and_user_columns_land_in_table(wh, candles, range_pct):
    specs = (*DEFAULT_INDICATORS, *indicator_specs(EXTRA))
    report = build_indicators(wh, {M: [W1]}, specs)
    assert report.rows_written == 48
    assert _columns(wh) == [*CANDLE_KEY, *INDICATOR_COLUMNS, "cci_20", "volume_sma_10", "range_pct_5"]
    out = _read(wh, W1)
    ctx, a, keep = _window_arrays(candles, W1)
    np.testing.assert_array_equal(out["cci_20"].to_numpy(), talib.CCI(a["high"], a["low"], a["close"], 20)[keep])
    np.testing.assert_array_equal(out["volume_sma_10"].to_numpy(), talib.SMA(a["volume"], 10)[keep])
    np.testing.assert_array_equal(out["range_pct_5"].to_numpy(), range_pct(ctx, window=5).to_numpy()[keep])
    # the default columns are what a default-only run writes
    default_only = Warehouse(wh.path.with_name("y.duckdb"))
    default_only.replace_slices("market.candles", candles, [market_slice(M)], order_by=CANDLE_KEY)
    build_indicators(default_only, {M: [W1]})
    assert_frame_equal(out.select(*CANDLE_KEY, *INDICATOR_COLUMNS), _read(default_only, W1))


def test_build_indicators_column_no_longer_configured_stays_and_is_null_in_new_writes(wh, range_pct):
    build_indicators(wh, {M: [W1]}, (*DEFAULT_INDICATORS, *indicator_specs(EXTRA)))
    build_indicators(wh, {M: [W2]})
    assert "cci_20" in _columns(wh)
    assert _read(wh, W2)["cci_20"].null_count() == 24
    assert _read(wh, W1)["cci_20"].null_count() == 0


def test_build_indicators_lookahead_user_indicator_raises_naming_it_and_writes_nothing(wh):
    @register_indicator
    def next_close(candles: pl.DataFrame) -> pl.Series:
        return candles["close"].shift(-1)  # tomorrow's close: look-ahead

    try:
        specs = (*DEFAULT_INDICATORS, *indicator_specs([{"column": "peek_close", "function": "next_close"}]))
        with pytest.raises(StrategyError, match=r"indicator 'next_close' looks ahead: column 'peek_close' at candle ts=2023-02-22 17:00:00\+00:00 \(BTC/USDT 1h"):
            build_indicators(wh, {M: [W1]}, specs)
    finally:
        unregister_indicator("next_close")
    assert _columns(wh) == [*CANDLE_KEY, *INDICATOR_COLUMNS]
    assert wh.query("SELECT count(*) AS n FROM features.indicators")["n"][0] == 0


def test_build_indicators_failed_write_rolls_back_the_added_column(wh, monkeypatch, range_pct):
    def broken(*args, **kwargs):
        raise DataError("disk full")

    monkeypatch.setattr(Warehouse, "replace", staticmethod(broken))
    with pytest.raises(DataError, match="disk full"):
        build_indicators(wh, {M: [W1]}, (*DEFAULT_INDICATORS, *indicator_specs(EXTRA)))
    assert _columns(wh) == [*CANDLE_KEY, *INDICATOR_COLUMNS]
