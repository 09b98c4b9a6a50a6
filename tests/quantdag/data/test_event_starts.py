"""Stored market events as per-candle columns: only an event's start is known at its candle."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from quantdag.data.event_starts import EVENT_COLUMNS, event_start_counts
from quantdag.ml.features import FeatureConfig, compute_features, ohlcv_features

UTC = timezone.utc
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _ts(n: int) -> pl.Series:
    return pl.Series("ts", [T0 + timedelta(hours=i) for i in range(n)]).cast(pl.Datetime("ms", "UTC"))


def _event(symbol: str, kind: str, start: int, end: int, timeframe: str = "1h") -> dict:
    return {"symbol": symbol, "timeframe": timeframe, "event_type": kind,
            "ts_start": T0 + timedelta(hours=start), "ts_end": T0 + timedelta(hours=end)}


def test_each_candle_counts_the_events_starting_at_it_not_the_ones_going_on():
    events = pl.DataFrame([
        _event("BTC/USDT", "price_jump", 3, 3), _event("BTC/USDT", "price_jump", 3, 4),
        _event("BTC/USDT", "vol_regime", 5, 40),  # goes on for long: counted once, at its start
        _event("ETH/USDT", "price_jump", 7, 7),  # another market's jump: not BTC's
        _event("USDC/USDT", "depeg", 8, 30),  # a depeg anywhere on the venue: event_depeg_any
        _event("BTC/USDT", "volume_spike", 9, 9, timeframe="5m"),  # another timeframe's: not these candles'
    ]).with_columns(pl.col("ts_start", "ts_end").dt.cast_time_unit("ms"))
    out = event_start_counts(_ts(12), events, "BTC/USDT", "1h")
    assert out.columns == ["ts", *EVENT_COLUMNS]
    assert out["event_price_jump"].to_list() == [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]
    assert out["event_vol_regime"].to_list() == [0] * 5 + [1] + [0] * 6
    assert out["event_depeg_any"].to_list() == [0] * 8 + [1] + [0] * 3
    assert out["event_depeg"].sum() == 0 and out["event_volume_spike"].sum() == 0


def test_market_events_features_equal_from_the_stage_table_and_a_strategy_frame():
    n = 300
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    candles = pl.DataFrame({"exchange": "x", "symbol": "BTC/USDT", "timeframe": "1h", "ts": _ts(n), "open": close,
                            "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1.0})
    events = pl.DataFrame([_event("BTC/USDT", "price_jump", int(k), int(k)) for k in rng.choice(n, 25, replace=False)]
                          + [_event("USDC/USDT", "depeg", 50, 80)]).with_columns(pl.col("ts_start", "ts_end").dt.cast_time_unit("ms"))
    counts = event_start_counts(candles["ts"], events, "BTC/USDT", "1h")
    cfg = FeatureConfig(groups=("returns", "market_events"), periods=(6, 24))
    stage = compute_features(candles, cfg, extra={"market.events": counts.with_columns(
        exchange=pl.lit("x"), symbol=pl.lit("BTC/USDT"), timeframe=pl.lit("1h"))})
    frame = ohlcv_features(candles.join(counts, on="ts"), cfg)
    assert stage.drop("exchange", "symbol", "timeframe").equals(frame)
    jumps = counts["event_price_jump"].to_numpy()
    assert stage["ev_price_jump_24"][100] == jumps[77:101].sum()  # the starts within the last 24 candles
    assert stage["ev_depeg_any_6"][52] == 1 and stage["ev_depeg_any_6"][60] == 0  # a start, not the episode
