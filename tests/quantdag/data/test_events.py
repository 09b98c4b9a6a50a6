from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quantdag.data import EVENTS_SCHEMA, GAPS_SCHEMA, EventConfig, detect_events
from quantdag.errors import ConfigurationError, DataError

from .support import T0, hourly_frame as _frame, real_candles

HOUR = 3_600_000
UTC = timezone.utc


def _walk(
    symbol: str = "BTC/USD",
    n: int = 800,
    *,
    seed: int = 1,
    exchange: str = "sim",
    sigma: float = 0.002,
    level: float = 100.0,
    volume: float = 10.0,
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = level * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
    vol = volume * np.exp(rng.normal(0.0, 0.3, n))
    return close, vol


def _of(events: pl.DataFrame, kind: str) -> pl.DataFrame:
    return events.filter(pl.col("event_type") == kind)


def _at(i: int) -> datetime:
    return datetime.fromtimestamp((T0 + i * HOUR) / 1000, tz=UTC)


# --- single-market detectors -------------------------------------------------------------------


def test_detect_events_price_jump_flagged_at_the_jump_with_signed_z():
    close, volume = _walk()
    close[500:] *= 1.08  # +8% in one candle, ~40 sigmas
    events = _of(detect_events(_frame("BTC/USD", close, volume)), "price_jump")
    row = events.filter(pl.col("ts_start") == _at(500)).row(0, named=True)
    assert row["ts_end"] == _at(500) and row["severity"] == "critical" and row["score"] > 20
    assert "robust sigmas" in row["detail"]


def test_detect_events_consecutive_flagged_candles_merge_into_one_event():
    close, volume = _walk()
    close[500:] *= 1.06
    close[501:] *= 1.06
    close[502:] *= 1.06
    jumps = _of(detect_events(_frame("BTC/USD", close, volume)), "price_jump")
    merged = jumps.filter(pl.col("ts_start") == _at(500))
    assert merged.height == 1 and merged["ts_end"].item() == _at(502)
    assert jumps.filter((pl.col("ts_start") > _at(500)) & (pl.col("ts_start") <= _at(502))).is_empty()


def test_detect_events_volume_spike_scored_against_past_median():
    close, volume = _walk()
    volume[600] = 300 * 10.0
    spikes = _of(detect_events(_frame("BTC/USD", close, volume)), "volume_spike")
    row = spikes.filter(pl.col("ts_start") == _at(600)).row(0, named=True)
    assert row["severity"] == "critical" and 200 < row["score"] < 500


def test_detect_events_filled_candles_never_flagged():
    close, volume = _walk()
    filled = np.zeros(close.size, bool)
    filled[500:510] = True
    close[500:510] = close[499] * 1.5  # absurd values on synthetic candles must not matter
    volume[500:510] = 1e6
    events = detect_events(_frame("BTC/USD", close, volume, filled=filled))
    flagged = events.filter(pl.col("event_type").is_in(["price_jump", "volume_spike"]))
    assert flagged.filter((pl.col("ts_start") >= _at(500)) & (pl.col("ts_start") < _at(510))).is_empty()


def test_detect_events_vol_regime_switch_to_high_emitted_at_the_switch():
    rng = np.random.default_rng(4)
    returns = np.r_[rng.normal(0, 0.001, 1500), rng.normal(0, 0.01, 300)]
    close = 100 * np.exp(np.cumsum(returns))
    events = _of(detect_events(_frame("BTC/USD", close, np.full(close.size, 10.0))), "vol_regime")
    high = events.filter(pl.col("detail").str.starts_with("high"))
    switch = high.filter((pl.col("ts_start") >= _at(1500)) & (pl.col("ts_start") <= _at(1530)))
    assert switch.height == 1  # entered within half a vol window of the change
    assert switch["severity"].item() == "critical" and switch["score"].item() > 4
    calm = high.filter(pl.col("ts_start") < _at(1500))  # a calm market still tops its 95th percentile
    assert (calm["severity"] == "info").all()


def test_detect_events_gaps_become_events_with_duration_severity():
    gaps = pl.DataFrame(
        {
            "exchange": ["k"] * 3,
            "symbol": ["BTC/USD"] * 3,
            "timeframe": ["5m"] * 3,
            "gap_start": [_at(1), _at(10), _at(100)],
            "gap_end": [_at(1), _at(20), _at(100)],
            "missing": [2, 300, 1],
            "filled": [True, True, False],
        },
        schema=GAPS_SCHEMA,
    )
    close, volume = _walk(n=10)
    events = _of(detect_events(_frame("BTC/USD", close, volume), gaps=gaps), "gap")
    assert events.select("severity", "score").rows() == [("info", 2.0), ("critical", 300.0), ("warning", 1.0)]
    assert "not filled" in events["detail"][2]


# --- cross-market detectors --------------------------------------------------------------------


def test_detect_events_dislocation_between_quotes_names_the_other_market():
    close, volume = _walk()
    other = close * 1.0002
    other[600:620] *= 1.02  # 200 bps for 20 candles: warning by size, escalated by persistence
    candles = pl.concat([_frame("BTC/USD", close, volume), _frame("BTC/EUR", other, volume)])
    events = _of(detect_events(candles), "dislocation")
    assert events.height == 1
    row = events.row(0, named=True)
    assert (row["symbol"], row["ts_start"], row["ts_end"]) == ("BTC/EUR", _at(600), _at(619))
    assert row["severity"] == "critical" and row["score"] == pytest.approx(200, rel=0.01)
    assert "sim BTC/EUR vs sim BTC/USD" in row["detail"]


def test_detect_events_dislocation_across_venues_same_symbol():
    close, volume = _walk()
    other = close.copy()
    other[700] *= 0.99  # one candle, 100 bps: a short warning
    candles = pl.concat([_frame("BTC/USD", close, volume), _frame("BTC/USD", other, volume, exchange="other")])
    events = _of(detect_events(candles), "dislocation")
    assert events.select("exchange", "ts_start", "severity").rows() == [("other", _at(700), "warning")]


def test_detect_events_depeg_from_direct_pair_is_one_critical_episode():
    n = 300
    price = np.full(n, 1.0001)
    price[100:130] = 0.96  # 400 bps below the peg for 30 candles
    candles = _frame("USDT/USD", price, np.full(n, 1e6))
    events = _of(detect_events(candles), "depeg")
    assert events.select("symbol", "ts_start", "ts_end", "severity").rows() == [
        ("USDT/USD", _at(101), _at(130), "critical")  # 3-candle trailing median: one candle late each way
    ]
    assert events["score"].item() == pytest.approx(-400, abs=1)


def test_detect_events_depeg_implied_from_two_quotes_of_one_base():
    close, volume = _walk()
    usdc_in_usd = np.ones(close.size)
    usdc_in_usd[400:450] = 0.985  # USDC at 98.5 cents: a warning-sized depeg
    candles = pl.concat([_frame("BTC/USD", close, volume), _frame("BTC/USDC", close / usdc_in_usd, volume)])
    events = _of(detect_events(candles), "depeg")
    assert events.select("symbol", "severity").rows() == [("USDC/USD", "warning")]
    assert "BTC/USD÷BTC/USDC" in events["detail"].item()


# --- contract ----------------------------------------------------------------------------------


def test_detect_events_output_has_events_schema_even_when_empty():
    close, volume = _walk(n=30)
    events = detect_events(_frame("BTC/USD", close, volume))
    assert events.is_empty() and dict(events.schema) == dict(EVENTS_SCHEMA)


def test_detect_events_empty_gaps_frame_adds_nothing():
    close, volume = _walk(n=30)
    frame = _frame("BTC/USD", close, volume)
    empty = pl.DataFrame(schema=GAPS_SCHEMA)
    assert_frame_equal(detect_events(frame, gaps=empty), detect_events(frame))


def test_detect_events_duplicate_candles_raise():
    close, volume = _walk(n=30)
    frame = _frame("BTC/USD", close, volume)
    with pytest.raises(DataError, match="unique"):
        detect_events(pl.concat([frame, frame.head(2)]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"jump_k": 0.0}, "jump_k"),
        ({"jump_k": 30.0}, "jump_k <= jump_k_warning"),
        ({"depeg_exit_bps": 200.0}, "depeg_exit_bps <= depeg_bps"),
        ({"vol_min_periods": 5000}, "vol_min_periods"),
        ({"vol_high_pct": 0.4}, "vol_low_pct"),
        ({"stablecoins": ()}, "stablecoins"),
    ],
)
def test_event_config_invalid_values_raise_naming_the_field(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        EventConfig(**kwargs)


# --- real data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kraken_1h() -> pl.DataFrame:
    return pl.concat([real_candles("kraken", m, "1h") for m in ("BTC_USD", "BTC_USDC", "BTC_USDT")])


@pytest.fixture(scope="module")
def binanceus_1m() -> pl.DataFrame:
    return pl.concat([real_candles("binanceus", m, "1m") for m in ("BTC_USD", "BTC_USDC", "BTC_USDT")])


@pytest.mark.parametrize("venue", ["kraken_1h", "binanceus_1m"])
def test_detect_events_real_candles_find_usdc_depeg_of_march_2023(venue, request):
    events = detect_events(request.getfixturevalue(venue))
    depegs = _of(events, "depeg")
    usdc = depegs.filter((pl.col("symbol") == "USDC/USD") & (pl.col("severity") == "critical"))
    assert usdc.height == 1
    row = usdc.row(0, named=True)
    assert row["ts_start"].date() in {datetime(2023, 3, 10).date(), datetime(2023, 3, 11).date()}
    assert datetime(2023, 3, 11, tzinfo=UTC) <= row["ts_end"] < datetime(2023, 3, 14, tzinfo=UTC)
    assert row["score"] < -800  # USDC traded below 92 cents at the trough on both venues
    critical = depegs.filter(pl.col("severity") == "critical")
    assert (critical["ts_start"] >= datetime(2023, 3, 9, tzinfo=UTC)).all()
    assert (critical["ts_end"] < datetime(2023, 3, 15, tzinfo=UTC)).all()


def test_detect_events_real_candles_critical_dislocations_only_around_the_depeg(kraken_1h):
    critical = _of(detect_events(kraken_1h), "dislocation").filter(pl.col("severity") == "critical")
    assert critical.height >= 1
    assert (critical["ts_start"] >= datetime(2023, 3, 10, tzinfo=UTC)).all()
    assert (critical["ts_end"] < datetime(2023, 3, 14, tzinfo=UTC)).all()


@pytest.mark.parametrize("cut", ["2023-01-20 07:00", "2023-03-11 09:00", "2023-03-12 18:00", "2023-03-30 00:00"])
def test_detect_events_prefix_gives_same_events_except_still_open_ones(kraken_1h, cut):
    full = detect_events(kraken_1h)
    last = datetime.fromisoformat(cut).replace(tzinfo=UTC)
    prefix = detect_events(kraken_1h.filter(pl.col("ts") <= last))
    assert_frame_equal(prefix.filter(pl.col("ts_end") < last), full.filter(pl.col("ts_end") < last))
    still_open = prefix.filter(pl.col("ts_end") == last)
    continued = full.join(still_open.select("exchange", "symbol", "timeframe", "event_type", "ts_start"),
                          on=["exchange", "symbol", "timeframe", "event_type", "ts_start"], how="semi")
    assert continued.height == still_open.height


def test_detect_events_window_with_lookback_context_equals_full_history(kraken_1h):
    config = EventConfig()
    assert config.lookback_bars == 60 + 1440 + 1
    full = detect_events(kraken_1h, config=config)
    for day in (datetime(2023, 3, 11, tzinfo=UTC), datetime(2023, 3, 13, tzinfo=UTC)):
        end = day + timedelta(days=1)
        context = kraken_1h.filter(
            (pl.col("ts") >= day - timedelta(hours=config.lookback_bars)) & (pl.col("ts") < end)
        )
        # events that start in the day and have ended before its last candle
        done = (pl.col("ts_start") >= day) & (pl.col("ts_end") < end - timedelta(hours=1))
        got = detect_events(context, config=config).filter(done)
        assert got.height > 0
        assert_frame_equal(got, full.filter(done))


def test_build_events_keeps_the_real_end_of_an_event_that_runs_past_the_window(kraken_1h, tmp_path):
    from quantdag.stages.events import build_events
    from quantdag.store import Slice, Warehouse

    wh = Warehouse(tmp_path / "events.duckdb")
    wh.replace_slices("market.candles", kraken_1h, [Slice(where={"exchange": "kraken"})])
    day = datetime(2023, 3, 11, tzinfo=UTC)
    build_events(wh, "kraken", [(day, day + timedelta(days=1))])
    got = wh.read("market.events").sort("symbol", "timeframe", "ts_start", "event_type", "ts_end", "detail")
    full = detect_events(kraken_1h).filter((pl.col("ts_start") >= day) & (pl.col("ts_start") < day + timedelta(days=1)))
    assert_frame_equal(got, full.sort("symbol", "timeframe", "ts_start", "event_type", "ts_end", "detail"))
    # the USDC depeg starts that day and lasts into the 13th: not cut at midnight
    assert (got["ts_end"] >= day + timedelta(days=1)).any()
