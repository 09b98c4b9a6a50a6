"""MarketModel: determinism, random access, aggregation, invariants, the open candle, books."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantdag.errors import ConfigurationError, DataError
from quantdag.sim import TIMEFRAMES, MarketModel, SimClock
from quantdag.sim.paths import MS_PER_DAY, MS_PER_MINUTE
from quantdag.timeframes import timeframe_ms

from .support import GENESIS, NOW

HOUR = 3_600_000


def test_klines_same_seed_twice_identical(model: MarketModel) -> None:
    other = MarketModel(7, genesis_ms=GENESIS, clock=SimClock(NOW))
    for symbol in model.symbols:
        a = model.klines(symbol, "15m", GENESIS, NOW)
        b = other.klines(symbol, "15m", GENESIS, NOW)
        assert a.height == 30 * 96 + 13 * 4 + 3  # 13:00, 13:15 and the open 13:30
        assert a.equals(b), symbol


def test_klines_different_seeds_differ(model: MarketModel) -> None:
    other = MarketModel(8, genesis_ms=GENESIS, clock=SimClock(NOW))
    a = model.klines("BTC/USDT", "1h", GENESIS, NOW)["close"].to_numpy()
    b = other.klines("BTC/USDT", "1h", GENESIS, NOW)["close"].to_numpy()
    assert a.shape == b.shape
    assert np.mean(a != b) > 0.99


def test_klines_fresh_model_asked_late_window_first_matches_sequential(model: MarketModel) -> None:
    late = (GENESIS + 25 * MS_PER_DAY, GENESIS + 26 * MS_PER_DAY)
    early = (GENESIS + 2 * MS_PER_DAY, GENESIS + 3 * MS_PER_DAY)
    fresh = MarketModel(7, genesis_ms=GENESIS, clock=SimClock(NOW))
    late_first = fresh.klines("ETH/USDT", "1m", *late)
    early_second = fresh.klines("ETH/USDT", "1m", *early)
    assert late_first.equals(model.klines("ETH/USDT", "1m", *late))
    assert early_second.equals(model.klines("ETH/USDT", "1m", *early))


def test_klines_generation_chunking_gives_identical_history() -> None:
    """Growing day by day (clock advancing) equals generating everything at once."""
    clock = SimClock(GENESIS + 1000)
    growing = MarketModel(3, genesis_ms=GENESIS, clock=clock)
    for day in range(1, 5):
        clock.set(GENESIS + day * MS_PER_DAY + 1000)
        growing.klines("SOL/USDT", "1m", GENESIS + (day - 1) * MS_PER_DAY, GENESIS + day * MS_PER_DAY)
    at_once = MarketModel(3, genesis_ms=GENESIS, clock=SimClock(clock()))
    for symbol in at_once.symbols:
        assert growing.klines(symbol, "1m", GENESIS, GENESIS + 4 * MS_PER_DAY).equals(
            at_once.klines(symbol, "1m", GENESIS, GENESIS + 4 * MS_PER_DAY)
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tf=st.sampled_from(TIMEFRAMES),
    start_offset=st.integers(0, 31 * MS_PER_DAY),
    length=st.integers(1, 3 * MS_PER_DAY),
)
def test_klines_any_window_equals_slice_of_full_history(
    model: MarketModel, tf: str, start_offset: int, length: int
) -> None:
    full = model.klines("BNB/USDT", tf, GENESIS, NOW + 1)
    start = GENESIS + start_offset
    window = model.klines("BNB/USDT", tf, start, start + length)
    expected = full.filter((pl.col("open_time") >= start) & (pl.col("open_time") < start + length))
    assert window.equals(expected)


@pytest.mark.parametrize("tf", [t for t in TIMEFRAMES if t != "1m"])
def test_aggregated_timeframe_equals_aggregation_of_1m(model: MarketModel, tf: str) -> None:
    step = timeframe_ms(tf)
    end = NOW // step * step  # closed candles only
    one = model.kline_units("ETH/USDT", "1m", GENESIS, end)
    agg = model.kline_units("ETH/USDT", tf, GENESIS, end)
    k = step // MS_PER_MINUTE
    shape = (len(agg), k)
    assert np.array_equal(agg.open, one.open.reshape(shape)[:, 0])
    assert np.array_equal(agg.high, one.high.reshape(shape).max(axis=1))
    assert np.array_equal(agg.low, one.low.reshape(shape).min(axis=1))
    assert np.array_equal(agg.close, one.close.reshape(shape)[:, -1])
    for name in ("volume", "quote_volume", "trades", "taker_base", "taker_quote"):
        assert np.array_equal(getattr(agg, name), getattr(one, name).reshape(shape).sum(axis=1)), name
    assert np.array_equal(agg.open_time, one.open_time[::k])
    assert (agg.open_time % step == 0).all()


@pytest.mark.parametrize("tf", TIMEFRAMES)
def test_klines_every_market_ohlc_invariants_hold(model: MarketModel, tf: str) -> None:
    for symbol in model.symbols:
        k = model.kline_units(symbol, tf, GENESIS, NOW + 1)
        assert (k.low >= 1).all()
        assert (k.low <= np.minimum(k.open, k.close)).all()
        assert (k.high >= np.maximum(k.open, k.close)).all()
        assert (k.volume > 0).all() and (k.trades > 0).all() and (k.quote_volume > 0).all()
        assert (k.taker_base <= k.volume).all() and (k.taker_quote <= k.quote_volume).all()
        assert np.array_equal(k.open[1:], k.close[:-1])  # each candle opens at the previous close
        assert (np.diff(k.open_time) == timeframe_ms(tf)).all()
        assert k.closed[:-1].all() and not k.closed[-1]


def test_klines_nothing_after_now_or_before_genesis(model: MarketModel) -> None:
    assert model.klines("BTC/USDT", "1m", NOW + 60_000, NOW + 10 * HOUR).height == 0
    before = model.klines("BTC/USDT", "1h", GENESIS - 10 * MS_PER_DAY, GENESIS + 2 * HOUR)
    assert before["open_time"].to_list() == [GENESIS, GENESIS + HOUR]
    hour = NOW // HOUR * HOUR
    last = model.klines("BTC/USDT", "1h", NOW - 2 * HOUR, NOW + 10 * HOUR)  # opens at or after 11:37
    assert last["open_time"].to_list() == [hour - HOUR, hour]
    assert last["closed"].to_list() == [True, False]


def test_open_candle_at_now_matches_across_timeframes(model: MarketModel) -> None:
    minute = model.klines("SOL/USDT", "1m", NOW - 60 * 60_000, NOW + 1)
    for tf in ("5m", "1h", "4h", "1d"):
        step = timeframe_ms(tf)
        candle = model.klines("SOL/USDT", tf, NOW // step * step, NOW + 1).row(0, named=True)
        inside = model.klines("SOL/USDT", "1m", NOW // step * step, NOW + 1)
        assert not candle["closed"]
        assert candle["close"] == minute["close"][-1]
        assert candle["open"] == inside["open"][0]
        assert candle["high"] == inside["high"].max() and candle["low"] == inside["low"].min()
        assert candle["volume"] == pytest.approx(inside["volume"].sum(), rel=1e-12)


def test_open_candle_grows_monotonically_and_ends_at_closed_candle() -> None:
    minute_open = GENESIS + 2 * MS_PER_DAY + 7 * HOUR + 11 * MS_PER_MINUTE
    clock = SimClock(minute_open)
    m = MarketModel(5, genesis_ms=GENESIS, clock=clock)
    seen = []
    for second in range(60):
        clock.set(minute_open + second * 1000 + 500)
        k = m.kline_units("BTC/USDT", "1m", minute_open, minute_open + 1)
        assert len(k) == 1 and not k.closed[0]
        seen.append((int(k.high[0]), int(k.low[0]), int(k.volume[0]), int(k.trades[0]), int(k.close[0])))
    highs, lows, vols, trades, closes = map(np.array, zip(*seen, strict=False))
    assert (np.diff(highs) >= 0).all() and (np.diff(lows) <= 0).all()
    assert (np.diff(vols) >= 0).all() and (np.diff(trades) >= 0).all()
    assert ((closes <= highs) & (closes >= lows)).all()
    assert vols[0] == 0  # half a second in: nothing traded yet
    clock.set(minute_open + 60_000)
    final = m.kline_units("BTC/USDT", "1m", minute_open, minute_open + 1)
    assert final.closed[0]
    assert highs[-1] <= final.high[0] and lows[-1] >= final.low[0] and vols[-1] <= final.volume[0]


def test_history_extends_as_clock_passes_midnight_without_changing_the_past() -> None:
    clock = SimClock(GENESIS + 2 * MS_PER_DAY + 5)
    m = MarketModel(9, genesis_ms=GENESIS, clock=clock)
    before = m.klines("ETH/USDT", "1h")
    assert before.height == 49
    clock.advance(3 * MS_PER_DAY)
    after = m.klines("ETH/USDT", "1h")
    assert after.height == 5 * 24 + 1
    assert after.head(48).equals(before.head(48))


def test_klines_before_genesis_clock_raises_data_error() -> None:
    clock = SimClock(GENESIS + 1000)
    m = MarketModel(1, genesis_ms=GENESIS, clock=clock)
    clock.set(GENESIS - MS_PER_DAY)
    with pytest.raises(DataError, match="before genesis"):
        m.klines("BTC/USDT", "1h")


def test_default_genesis_is_history_days_before_now_floored_to_a_day() -> None:
    m = MarketModel(1, clock=SimClock(NOW), history_days=3)
    assert m.genesis_ms == (NOW - 3 * MS_PER_DAY) // MS_PER_DAY * MS_PER_DAY


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"genesis_ms": GENESIS + 1}, "multiple of a day"),
        ({"genesis_ms": (NOW // MS_PER_DAY + 1) * MS_PER_DAY}, "after the clock"),
        ({"history_days": 0}, "history_days"),
        ({"markets": ()}, "at least one market"),
        ({"clock": 5}, "callable"),
    ],
)
def test_model_bad_configuration_raises(kwargs: dict, match: str) -> None:
    args = {"clock": SimClock(NOW), **kwargs}
    with pytest.raises(ConfigurationError, match=match):
        MarketModel(**args)


def test_model_unknown_symbol_or_timeframe_raises(model: MarketModel) -> None:
    with pytest.raises(ConfigurationError, match="unknown market 'DOGE/USDT'"):
        model.klines("DOGE/USDT", "1h")
    with pytest.raises(ConfigurationError, match="unsupported timeframe '1w'"):
        model.klines("BTC/USDT", "1w")
    assert model.spec("BTCUSDT") is model.spec("BTC/USDT")


def test_ticker_agrees_with_candles_and_book(model: MarketModel) -> None:
    t = model.ticker("ETH/USDT")
    day = model.klines("ETH/USDT", "1m", NOW - MS_PER_DAY + 1, NOW + 1)
    assert day.height == 1440
    assert t.last == day["close"][-1] and t.open == day["open"][0]
    assert t.high == day["high"].max() and t.low == day["low"].min()
    assert t.volume == pytest.approx(day["volume"].sum(), rel=1e-12)
    assert t.count == day["trades"].sum() == t.last_trade_id - t.first_trade_id + 1
    assert t.bid < t.ask and t.bid <= t.last <= t.ask
    assert t.low <= t.vwap <= t.high
    assert t.time_ms == NOW and t.open_time_ms == NOW - MS_PER_DAY


def test_trade_ids_continue_across_consecutive_days(model: MarketModel) -> None:
    earlier = model.ticker("BTC/USDT", now_ms=NOW - MS_PER_DAY)
    later = model.ticker("BTC/USDT")
    # at NOW every minute of the earlier window is closed; their trades fill the id gap exactly
    closed = model.klines("BTC/USDT", "1m", NOW - 2 * MS_PER_DAY + 1, NOW - MS_PER_DAY + 1)
    assert later.first_trade_id == earlier.first_trade_id + closed["trades"].sum()
    assert earlier.last_trade_id < later.first_trade_id


@pytest.mark.parametrize("symbol", ["BTC/USDT", "SOL/USDT", "USDC/USDT"])
def test_order_book_sorted_around_last_price_with_plausible_spread(model: MarketModel, symbol: str) -> None:
    spec = model.spec(symbol)
    book = model.order_book(symbol, 500)
    bids, asks = book.bids, book.asks
    assert bids.shape == asks.shape == (500, 2)
    assert (np.diff(bids[:, 0]) < 0).all() and (np.diff(asks[:, 0]) > 0).all()
    assert bids[0, 0] < asks[0, 0]
    last = model.klines(symbol, "1m", NOW - 60_000, NOW + 1)["close"][-1]
    assert bids[0, 0] <= last <= asks[0, 0]
    spread_bps = (asks[0, 0] - bids[0, 0]) / last * 1e4
    assert spread_bps <= max(5 * spec.spread_bps, 2 * spec.tick / last * 1e4)
    assert (bids[:, 1] > 0).all() and (asks[:, 1] > 0).all()
    assert bids[-1, 0] > 0.9 * last and asks[-1, 0] < 1.1 * last  # 500 levels stay near the price
    assert book.last_update_id == NOW
    assert np.array_equal(model.order_book(symbol, 500).bids, bids)  # fixed within the second


def test_order_book_bad_depth_raises(model: MarketModel) -> None:
    with pytest.raises(ConfigurationError, match="depth"):
        model.order_book("BTC/USDT", 0)
