from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from quantdag.data import CANDLES_SCHEMA, GAPS_SCHEMA, candles_to_raw, clean_candles
from quantdag.errors import ConfigurationError, DataError
from quantdag.timeframes import timeframe_ms

from .support import LATE, T0, bar, raw_frame, real_raw, reference_clean

BTC = ("binance", "BTC/USDT", "1m")
ETH = ("binance", "ETH/USDT", "1m")
KRAKEN_5M = ("kraken", "BTC/USD", "5m")
KRAKEN_1H = ("kraken", "BTC/USD", "1h")
MIN = 60_000
HOUR = 3_600_000

# --- property tests ----------------------------------------------------------------------------

PRICES = st.integers(10, 2000).map(lambda x: x / 10)  # coarse grid: equal values (ties) are common


@st.composite
def raw_cases(draw) -> tuple[pl.DataFrame, int, int, dict | None]:
    """Raw frames of 1-3 markets with duplicates, unclosed rows, gaps, plus a window and prev_close."""
    markets = draw(st.lists(st.sampled_from([BTC, ETH, KRAKEN_5M, KRAKEN_1H]), min_size=1, max_size=3, unique=True))
    rows = []
    for market in markets:
        tf = timeframe_ms(market[2])
        for slot in draw(st.lists(st.integers(0, 30), min_size=1, max_size=25)):
            ts = T0 + slot * tf
            o, c = draw(PRICES), draw(PRICES)
            high = max(o, c) + draw(st.sampled_from([0.0, 0.5, 3.0]))
            low = min(o, c) - draw(st.sampled_from([0.0, 0.5]))
            volume = draw(st.sampled_from([0.0, 1.0, 2.5, 40.0]))
            # fetched before the close (unclosed), exactly at it, or later; repeats make ties
            fetched = ts + tf + draw(st.sampled_from([-tf // 2, -1, 0, 1_000, MIN, HOUR]))
            rows.append((*market, ts, o, high, low, c, volume, fetched))
    start = T0 + draw(st.integers(-3, 40)) * 7 * MIN  # often off the 5m/1h grids
    end = start + draw(st.integers(1, 2000)) * MIN
    prev = draw(st.none() | st.just({m: 50.0 + i for i, m in enumerate(markets)}))
    return raw_frame(rows), start, end, prev


def _shuffled(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    return frame.sample(fraction=1.0, shuffle=True, seed=seed)


HYPO = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPO
@given(raw_cases())
def test_clean_candles_random_raw_matches_plain_reference(case):
    raw, start, end, prev = case
    result = clean_candles(raw, start=start, end=end, prev_close=prev)
    want_candles, want_gaps = reference_clean(raw, start, end, prev)
    assert_frame_equal(result.candles, want_candles)
    assert_frame_equal(result.gaps, want_gaps)
    c = result.counts
    assert c.rows_in == c.unclosed + c.outside_window + c.duplicates + (c.candles - c.filled_candles)
    assert c.filled_candles == result.candles["filled"].sum()
    assert c.gaps == result.gaps.height


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_cases())
def test_clean_candles_many_random_raw_match_plain_reference(case):
    raw, start, end, prev = case
    result = clean_candles(raw, start=start, end=end, prev_close=prev)
    want_candles, want_gaps = reference_clean(raw, start, end, prev)
    assert_frame_equal(result.candles, want_candles)
    assert_frame_equal(result.gaps, want_gaps)


@HYPO
@given(raw_cases(), st.integers(0, 2**32 - 1))
def test_clean_candles_any_row_permutation_gives_identical_output(case, seed):
    raw, start, end, prev = case
    a = clean_candles(raw, start=start, end=end, prev_close=prev)
    b = clean_candles(_shuffled(raw, seed), start=start, end=end, prev_close=prev)
    assert_frame_equal(a.candles, b.candles)
    assert_frame_equal(a.gaps, b.gaps)
    assert a.counts == b.counts


def _raw_equivalent(candles: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """Cleaned candles back as raw rows, each market fetched at its latest fetch time in ``raw``."""
    last_fetch = raw.group_by("exchange", "symbol", "timeframe").agg(pl.col("fetched_at").max())
    parts = [
        candles_to_raw(part, fetched_at=last_fetch.filter(
            pl.col("exchange") == key[0], pl.col("symbol") == key[1], pl.col("timeframe") == key[2]
        )["fetched_at"].item())
        for key, part in candles.group_by("exchange", "symbol", "timeframe")
    ]
    return pl.concat(parts) if parts else raw.clear()


@HYPO
@given(raw_cases())
def test_clean_candles_recleaning_its_raw_equivalent_is_idempotent(case):
    raw, start, end, prev = case
    first = clean_candles(raw, start=start, end=end, prev_close=prev)
    second = clean_candles(_raw_equivalent(first.candles, raw), start=start, end=end, prev_close=prev)
    assert_frame_equal(second.candles, first.candles)
    assert_frame_equal(second.gaps, first.gaps)


@HYPO
@given(raw_cases())
def test_clean_candles_input_repeated_twice_gives_same_candles(case):
    raw, start, end, prev = case
    once = clean_candles(raw, start=start, end=end, prev_close=prev)
    twice = clean_candles(pl.concat([raw, raw]), start=start, end=end, prev_close=prev)
    assert_frame_equal(twice.candles, once.candles)
    assert_frame_equal(twice.gaps, once.gaps)


# --- rules, one at a time ----------------------------------------------------------------------


def test_clean_candles_still_open_candle_dropped_and_counted():
    now = T0 + 2 * MIN + 30_000  # one page fetched at 00:02:30, holding the open 00:02 candle
    raw = raw_frame([bar(BTC, 0, fetched=now), bar(BTC, 1, fetched=now), bar(BTC, 2, fetched=now)])
    result = clean_candles(raw, start=T0, end=T0 + HOUR)
    assert result.candles["ts"].dt.epoch("ms").to_list() == [T0, T0 + MIN]
    assert result.counts.unclosed == 1
    assert result.gaps.is_empty()  # candle 2 had not closed by the last fetch: not a gap


def test_clean_candles_candle_closing_exactly_at_fetch_time_is_kept():
    raw = raw_frame([bar(BTC, 0, fetched=T0 + MIN)])
    assert clean_candles(raw, start=T0, end=T0 + HOUR).candles.height == 1


def test_clean_candles_later_fetch_supersedes_earlier_values():
    early = bar(BTC, 0, 100.0, fetched=T0 + MIN + 1, volume=1.0)
    late = bar(BTC, 0, 105.0, fetched=T0 + HOUR, volume=9.0)
    result = clean_candles(raw_frame([late, early]), start=T0, end=T0 + MIN)
    assert result.candles.select("close", "volume").row(0) == (105.0, 9.0)
    assert result.counts.duplicates == 1


def test_clean_candles_superseded_invalid_row_is_ignored():
    broken_early = bar(BTC, 0, fetched=T0 + MIN + 1, high=1.0)  # high below the body, then corrected
    result = clean_candles(raw_frame([broken_early, bar(BTC, 0)]), start=T0, end=T0 + MIN)
    assert result.candles["high"].to_list() == [101.0]


def test_clean_candles_rows_outside_window_dropped_and_counted():
    raw = raw_frame([bar(BTC, i) for i in range(10)])
    result = clean_candles(raw, start=T0 + 3 * MIN, end=T0 + 6 * MIN)
    assert result.candles["ts"].dt.epoch("ms").to_list() == [T0 + 3 * MIN, T0 + 4 * MIN, T0 + 5 * MIN]
    assert result.counts.outside_window == 7


def test_clean_candles_interior_gap_filled_flat_at_previous_close_and_recorded():
    raw = raw_frame([bar(KRAKEN_5M, 0, 100.0), bar(KRAKEN_5M, 1, 101.0), bar(KRAKEN_5M, 4, 104.0)])
    result = clean_candles(raw, start=T0, end=T0 + 5 * 5 * MIN)
    filled = result.candles.filter("filled")
    assert filled["ts"].dt.epoch("ms").to_list() == [T0 + 10 * MIN, T0 + 15 * MIN]
    flat = filled.select("open", "high", "low", "close", "volume").unique().rows()
    assert flat == [(101.0, 101.0, 101.0, 101.0, 0.0)]
    assert result.gaps.select("gap_start", "gap_end", "missing", "filled").rows() == [
        (datetime(2023, 1, 1, 0, 10, tzinfo=timezone.utc), datetime(2023, 1, 1, 0, 15, tzinfo=timezone.utc), 2, True)
    ]
    assert result.counts.filled_candles == 2


def test_clean_candles_leading_gap_without_prev_close_recorded_unfilled():
    raw = raw_frame([bar(KRAKEN_1H, 3), bar(KRAKEN_1H, 4)])
    result = clean_candles(raw, start=T0, end=T0 + 5 * HOUR)
    assert result.candles.height == 2 and not result.candles["filled"].any()
    assert result.gaps.select("missing", "filled").rows() == [(3, False)]


def test_clean_candles_leading_gap_with_prev_close_filled_from_it():
    raw = raw_frame([bar(KRAKEN_1H, 3), bar(KRAKEN_1H, 4)])
    result = clean_candles(raw, start=T0, end=T0 + 5 * HOUR, prev_close={KRAKEN_1H: 99.5})
    assert result.candles["close"].to_list() == [99.5, 99.5, 99.5, 100.0, 100.0]
    assert result.gaps.select("missing", "filled").rows() == [(3, True)]


def test_clean_candles_prev_close_given_as_frame_same_as_mapping():
    raw = raw_frame([bar(KRAKEN_1H, 2)])
    frame = pl.DataFrame({"exchange": ["kraken"], "symbol": ["BTC/USD"], "timeframe": ["1h"], "close": [7.0]})
    a = clean_candles(raw, start=T0, end=T0 + 3 * HOUR, prev_close=frame)
    b = clean_candles(raw, start=T0, end=T0 + 3 * HOUR, prev_close={KRAKEN_1H: 7.0})
    assert_frame_equal(a.candles, b.candles)


def test_clean_candles_trailing_gap_filled_only_up_to_last_fetch():
    # fetched at 05:30: candles 0..3 closed by then, candle 4 (04:00-05:00) too; 5 is still open
    fetched = T0 + 5 * HOUR + 30 * MIN
    raw = raw_frame([bar(KRAKEN_1H, 0, fetched=fetched), bar(KRAKEN_1H, 1, fetched=fetched)])
    result = clean_candles(raw, start=T0, end=T0 + 24 * HOUR)
    assert result.candles["ts"].dt.hour().to_list() == [0, 1, 2, 3, 4]
    assert result.gaps.select(pl.col("gap_end").dt.hour(), "missing").rows() == [(4, 3)]


def test_clean_candles_several_markets_sorted_by_key_with_contract_types():
    raw = raw_frame([bar(ETH, 1), bar(BTC, 1), bar(ETH, 0), bar(KRAKEN_5M, 0), bar(BTC, 0)])
    result = clean_candles(raw, start=T0, end=T0 + 2 * MIN)
    assert dict(result.candles.schema) == dict(CANDLES_SCHEMA)
    assert dict(result.gaps.schema) == dict(GAPS_SCHEMA)
    assert result.candles.select("exchange", "symbol", "timeframe").rows() == [
        ("binance", "BTC/USDT", "1m"),
        ("binance", "BTC/USDT", "1m"),
        ("binance", "ETH/USDT", "1m"),
        ("binance", "ETH/USDT", "1m"),
        ("kraken", "BTC/USD", "5m"),
    ]
    keys = result.candles.select("exchange", "symbol", "timeframe", "ts")
    assert_frame_equal(keys, keys.sort("exchange", "symbol", "timeframe", "ts"))


def test_clean_candles_datetime_window_same_as_epoch_ms():
    raw = raw_frame([bar(BTC, i) for i in range(5)])
    a = clean_candles(raw, start=datetime(2023, 1, 1, 0, 1), end=datetime(2023, 1, 1, 0, 4, tzinfo=timezone.utc))
    b = clean_candles(raw, start=T0 + MIN, end=T0 + 4 * MIN)
    assert_frame_equal(a.candles, b.candles)
    assert a.candles.height == 3


def test_clean_candles_chunked_input_same_as_contiguous():
    # polars gives read-only arrays for one chunk and writable copies for several: both must work
    first, second = raw_frame([bar(BTC, 0), bar(BTC, 1)]), raw_frame([bar(BTC, 1, 101.0), bar(BTC, 3)])
    chunked = pl.concat([first, second], rechunk=False)
    assert chunked.n_chunks() == 2
    a = clean_candles(chunked, start=T0, end=T0 + 4 * MIN)
    b = clean_candles(chunked.rechunk(), start=T0, end=T0 + 4 * MIN)
    assert_frame_equal(a.candles, b.candles)
    assert a.candles["filled"].to_list() == [False, False, True, False]


def test_clean_candles_empty_raw_gives_typed_empty_frames():
    result = clean_candles(raw_frame([]), start=T0, end=T0 + HOUR)
    assert result.candles.is_empty() and dict(result.candles.schema) == dict(CANDLES_SCHEMA)
    assert result.gaps.is_empty() and dict(result.gaps.schema) == dict(GAPS_SCHEMA)


# --- invalid input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "rule"),
    [
        ({"high": 99.0}, "high must be >= max(open, close)"),
        ({"low": 100.5}, "low must be <= min(open, close)"),
        ({"close": math.nan}, "must be finite"),
        ({"high": math.inf}, "must be finite"),
        ({"volume": -1.0}, "volume must be >= 0"),
        ({"low": 0.0}, "prices must be > 0"),
    ],
)
def test_clean_candles_invalid_ohlc_raises_naming_market_ts_and_values(override, rule):
    raw = raw_frame([bar(BTC, 0), bar(BTC, 1, **override), bar(BTC, 2)])
    with pytest.raises(DataError) as err:
        clean_candles(raw, start=T0, end=T0 + HOUR)
    message = str(err.value)
    assert rule in message
    assert "binance BTC/USDT 1m" in message and f"ts={T0 + MIN}" in message
    assert f"{next(iter(override))}=" in message


def test_clean_candles_ts_off_the_grid_raises():
    row = list(bar(KRAKEN_5M, 1))
    row[3] += MIN  # 00:06 is not on the 5m grid
    with pytest.raises(DataError, match="ts must be on the timeframe grid"):
        clean_candles(raw_frame([tuple(row)]), start=T0, end=T0 + HOUR)


def test_clean_candles_missing_column_raises_naming_it():
    with pytest.raises(DataError, match="fetched_at"):
        clean_candles(raw_frame([bar(BTC, 0)]).drop("fetched_at"), start=T0, end=T0 + HOUR)


def test_clean_candles_null_value_raises():
    raw = raw_frame([bar(BTC, 0)]).with_columns(pl.lit(None, pl.Float64).alias("open"))
    with pytest.raises(DataError, match="nulls"):
        clean_candles(raw, start=T0, end=T0 + HOUR)


def test_clean_candles_unknown_timeframe_raises():
    row = ("binance", "BTC/USDT", "7x", *bar(BTC, 0)[3:])
    with pytest.raises(DataError, match="'7x'"):
        clean_candles(raw_frame([row]), start=T0, end=T0 + HOUR)


@pytest.mark.parametrize(("start", "end"), [(T0, T0), (T0 + MIN, T0), (-1, T0)])
def test_clean_candles_empty_or_negative_window_raises(start, end):
    with pytest.raises(ConfigurationError, match="window"):
        clean_candles(raw_frame([bar(BTC, 0)]), start=start, end=end)


def test_clean_candles_non_positive_prev_close_raises():
    with pytest.raises(ConfigurationError, match="prev_close"):
        clean_candles(raw_frame([bar(BTC, 1)]), start=T0, end=T0 + HOUR, prev_close={BTC: 0.0})


# --- real data ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("market", "missing"), [("BTC_USD", 19), ("BTC_USDT", 975), ("BTC_USDC", 3027)])
def test_clean_candles_kraken_5m_gaps_match_readme_missing_counts(market, missing):
    raw = real_raw("kraken", market, "5m")
    first, last = raw["ts"].min(), raw["ts"].max()
    result = clean_candles(raw, start=first, end=last + 5 * MIN)
    assert result.gaps["missing"].sum() == missing
    assert result.gaps["filled"].all()
    assert result.counts.filled_candles == missing
    assert result.candles.height == (last - first) // (5 * MIN) + 1  # gap-free over the span
    assert result.candles["ts"].diff().drop_nulls().unique().to_list() == [timedelta(minutes=5)]


def test_clean_candles_kraken_two_markets_in_one_call_same_as_separately():
    usd, usdt = real_raw("kraken", "BTC_USD", "5m"), real_raw("kraken", "BTC_USDT", "5m")
    start, end = T0, T0 + 90 * 86_400_000
    both = clean_candles(pl.concat([usdt, usd]), start=start, end=end)
    alone = [clean_candles(x, start=start, end=end) for x in (usd, usdt)]
    assert_frame_equal(both.candles, pl.concat([a.candles for a in alone]))
    assert_frame_equal(both.gaps, pl.concat([a.gaps for a in alone]))
    assert both.gaps["missing"].sum() == 19 + 975


def test_clean_candles_real_day_fetched_in_overlapping_pages_equals_single_fetch():
    day = real_raw("binanceus", "BTC_USDT", "1m").filter(pl.col("ts") < T0 + 59 * 86_400_000 + 86_400_000)
    day = day.filter(pl.col("ts") >= T0 + 59 * 86_400_000)  # 2023-03-01
    pages = [
        day.slice(i, 1000).with_columns(pl.lit(LATE - 10_000 * k).cast(day.schema["fetched_at"]).alias("fetched_at"))
        for k, i in enumerate(range(0, day.height, 900))  # 100-row overlaps
    ]
    raw = _shuffled(pl.concat(pages), seed=3)
    start, end = day["ts"].min(), day["ts"].max() + MIN
    result = clean_candles(raw, start=start, end=end)
    assert result.counts.duplicates == raw.height - day.height
    assert_frame_equal(result.candles, clean_candles(day, start=start, end=end).candles)
