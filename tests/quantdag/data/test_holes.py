"""Hole detection: runs of missing candles between stored candles of a market."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from quantdag.data import GAPS_SCHEMA, describe_holes, find_holes
from quantdag.errors import DataError

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


def _candles(times: list[datetime], symbol: str = "BTC/USDT", timeframe: str = "1h") -> pl.DataFrame:
    return pl.DataFrame(
        {"exchange": "sim", "symbol": symbol, "timeframe": timeframe, "ts": times, "close": 1.0}
    ).with_columns(pl.col("ts").dt.cast_time_unit("ms"))


def _day(start: datetime, n: int = 24, step: timedelta = H) -> list[datetime]:
    return [start + i * step for i in range(n)]


def test_find_holes_stray_old_day_gives_one_unfilled_row_from_after_it_to_before_the_rest():
    old, recent = _day(T0), _day(T0 + timedelta(days=40), 72)
    holes = find_holes(_candles(recent + old))  # any order
    assert holes.schema == pl.Schema(GAPS_SCHEMA)
    assert holes.rows(named=True) == [{
        "exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h",
        "gap_start": T0 + timedelta(days=1), "gap_end": T0 + timedelta(days=40) - H,
        "missing": 39 * 24, "filled": False,
    }]


def test_find_holes_consecutive_candles_with_duplicates_give_no_hole():
    times = _day(T0, 48)
    assert find_holes(_candles(times + times[:5])).height == 0
    assert find_holes(_candles(times[:1])).height == 0


def test_find_holes_several_markets_and_timeframes_are_kept_apart():
    btc = _candles(_day(T0, 3) + [T0 + 10 * H])
    eth = _candles(_day(T0 + 5 * H, 3), symbol="ETH/USDT")  # starts later than BTC: no hole of its own
    four = _candles([T0, T0 + 4 * H, T0 + 16 * H], timeframe="4h")
    holes = find_holes(pl.concat([eth, four, btc]))
    assert holes.select("symbol", "timeframe", "gap_start", "gap_end", "missing").rows() == [
        ("BTC/USDT", "1h", T0 + 3 * H, T0 + 9 * H, 7),
        ("BTC/USDT", "4h", T0 + 8 * H, T0 + 12 * H, 2),
    ]


def test_find_holes_unknown_timeframe_raises_data_error_naming_it():
    with pytest.raises(DataError, match="'fortnight'"):
        find_holes(_candles([T0, T0 + 14 * H], timeframe="fortnight"))


def test_find_holes_ts_not_datetime_raises_data_error():
    frame = _candles([T0, T0 + 3 * H]).with_columns(pl.col("ts").dt.epoch("ms"))
    with pytest.raises(DataError, match="ts must be a datetime"):
        find_holes(frame)


def test_describe_holes_names_market_first_and_last_missing_candle_and_count():
    holes = find_holes(_candles(_day(T0, 2) + [T0 + 5 * H, T0 + 7 * H, T0 + 9 * H, T0 + 11 * H, T0 + 13 * H]))
    text = describe_holes(holes, limit=2)
    assert text.startswith("sim:BTC/USDT:1h from 2026-01-01 02:00 to 2026-01-01 04:00 UTC (3 missing candles); ")
    assert "from 2026-01-01 06:00 to 2026-01-01 06:00 UTC (1 missing candle);" in text
    assert text.endswith("and 3 more")
