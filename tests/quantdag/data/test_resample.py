from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quantdag.data import CANDLES_SCHEMA, clean_candles, resample, resample_with_report
from quantdag.errors import ConfigurationError, DataError

from .support import T0, real_candles, real_raw

MIN = 60_000


def _candles(
    timeframe: str, closes: list[float], *, start: int = T0, step: int = MIN, filled: frozenset[int] = frozenset()
) -> pl.DataFrame:
    n = len(closes)
    return pl.DataFrame(
        {
            "exchange": ["sim"] * n,
            "symbol": ["BTC/USDT"] * n,
            "timeframe": [timeframe] * n,
            "ts": [start + i * step for i in range(n)],
            "open": [c - 0.5 for c in closes],
            "high": [c + 2.0 + i for i, c in enumerate(closes)],
            "low": [c - 3.0 - i for i, c in enumerate(closes)],
            "close": closes,
            "volume": [1.0 + i for i in range(n)],
            "filled": [i in filled for i in range(n)],
        }
    ).with_columns(pl.col("ts").cast(CANDLES_SCHEMA["ts"]))


def test_resample_1m_to_5m_aggregates_first_max_min_last_sum():
    fine = _candles("1m", [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0])
    result = resample_with_report(fine, "5m")
    assert result.incomplete_buckets == 0
    assert result.candles.select("timeframe", "open", "high", "low", "close", "volume", "filled").rows() == [
        ("5m", 9.5, 20.0, 7.0, 14.0, 15.0, False),
        ("5m", 14.5, 30.0, 7.0, 19.0, 40.0, False),
    ]
    assert result.candles["ts"].dt.epoch("ms").to_list() == [T0, T0 + 5 * MIN]
    assert dict(result.candles.schema) == dict(CANDLES_SCHEMA)


def test_resample_incomplete_buckets_dropped_and_counted():
    # starts at 00:03 and ends at 00:11: buckets 00:00 and 00:10 are partial, 00:05 is complete
    fine = _candles("1m", [float(i) + 10 for i in range(9)], start=T0 + 3 * MIN)
    result = resample_with_report(fine, "5m")
    assert result.candles["ts"].dt.epoch("ms").to_list() == [T0 + 5 * MIN]
    assert result.incomplete_buckets == 2


def test_resample_missing_fine_candle_inside_bucket_drops_it():
    fine = _candles("1m", [10.0] * 10).filter(pl.col("ts").dt.minute() != 7)
    result = resample_with_report(fine, "5m")
    assert result.candles["ts"].dt.minute().to_list() == [0]
    assert result.incomplete_buckets == 1


def test_resample_bucket_with_a_filled_candle_is_flagged_filled():
    fine = _candles("1m", [10.0] * 10, filled={6})
    assert resample(fine, "5m")["filled"].to_list() == [False, True]


def test_resample_buckets_align_to_utc_epoch_multiples():
    hourly = _candles("1h", [100.0] * 48, start=T0, step=3_600_000)
    daily = resample(hourly, "1d")
    assert daily["ts"].dt.epoch("ms").to_list() == [T0, T0 + 86_400_000]
    four = resample(hourly, "4h")
    assert (four["ts"].dt.epoch("ms") % (4 * 3_600_000) == 0).all() and four.height == 12


def test_resample_row_order_does_not_matter():
    fine = _candles("1m", [float(i) for i in range(1, 31)])
    assert_frame_equal(resample(fine.reverse(), "15m"), resample(fine, "15m"))


@pytest.mark.parametrize(
    ("source", "target"),
    [("1h", "5m"), ("5m", "5m"), ("7m", "1h"), ("1m", "2h"), ("1m", "1w")],
    ids=["finer", "same", "not-a-multiple", "unsupported-2h", "unsupported-1w"],
)
def test_resample_bad_target_raises_configuration_error(source, target):
    with pytest.raises(ConfigurationError, match=target):
        resample(_candles(source, [1.0, 2.0]), target)


def test_resample_duplicate_keys_raise():
    fine = _candles("1m", [10.0] * 5)
    with pytest.raises(DataError, match="duplicates"):
        resample(pl.concat([fine, fine.head(1)]), "5m")


def test_resample_kraken_12h_to_1d_equals_kraken_daily_file():
    got = resample(real_candles("kraken", "BTC_USD", "12h"), "1d")
    want = real_candles("kraken", "BTC_USD", "1d").with_columns(timeframe=pl.lit("1d"))
    assert got.height == want.height == 90
    assert_frame_equal(got.drop("volume"), want.drop("volume"))
    assert_frame_equal(got.select("volume"), want.select("volume"), rtol=1e-9)


@pytest.mark.parametrize(("market", "hours"), [("BTC_USD", 2154), ("BTC_USDT", 1547)])
def test_resample_kraken_5m_to_1h_equals_kraken_hourly_file_where_complete(market, hours):
    raw = real_raw("kraken", market, "5m")
    clean = clean_candles(raw, start=raw["ts"].min(), end=raw["ts"].max() + 5 * MIN).candles
    result = resample_with_report(clean, "1h")
    assert result.incomplete_buckets == 0  # the span is whole hours and gaps are filled
    ours = result.candles.filter(~pl.col("filled"))  # hours where no 5m candle was missing
    theirs = real_candles("kraken", market, "1h")
    joined = ours.join(theirs, on="ts", suffix="_kraken", how="left")
    assert joined.height == hours and joined["close_kraken"].null_count() == 0
    for column in ("open", "high", "low", "close"):
        assert (joined[column] == joined[f"{column}_kraken"]).all(), column
    relative = ((joined["volume"] - joined["volume_kraken"]).abs() / joined["volume_kraken"]).max()
    assert relative < 1e-9


def test_resample_filled_children_lend_no_open_high_low_only_their_close():
    # 00:00, 00:01 and 00:04 were gap-filled flat at the previous close (50.0), far outside the
    # traded range; 00:05..00:09 are all filled, flat at 13.0 (the close of 00:03)
    fine = _candles("1m", [50.0, 50.0, 12.0, 13.0] + [13.0] * 6, filled=frozenset({0, 1, *range(4, 10)}))
    fine = fine.with_columns(
        [pl.when("filled").then(pl.col("close")).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low")],
        volume=pl.when("filled").then(0.0).otherwise(pl.col("volume")),
    )
    out = resample(fine, "5m")
    # open of the first traded child (00:02), extremes of 00:02..00:03, close of the last child
    assert out.select("open", "high", "low", "close", "volume", "filled").rows() == [
        (11.5, 18.0, 7.0, 13.0, 7.0, True),
        (13.0, 13.0, 13.0, 13.0, 0.0, True),
    ]
    assert list(out.schema.items()) == list(CANDLES_SCHEMA.items())


@pytest.mark.parametrize(("market", "filled_hours"), [("BTC_USDT", 613), ("BTC_USDC", 1323)])
def test_resample_kraken_gap_filled_5m_to_1h_equals_kraken_hourly_file_in_every_hour(market, filled_hours):
    # Before filled candles were kept out of open/high/low, BTC/USDT differed from Kraken's own 1h
    # in 72 opens, 12 highs and 16 lows, BTC/USDC in 246 / 30 / 29: the filled candles' flat
    # previous close leaked in. Kraken's 1h file has every hour of the span, so all are compared.
    raw = real_raw("kraken", market, "5m")
    clean = clean_candles(raw, start=raw["ts"].min(), end=raw["ts"].max() + 5 * MIN).candles
    ours = resample(clean, "1h")
    theirs = real_candles("kraken", market, "1h")
    joined = ours.join(theirs, on="ts", suffix="_kraken")
    assert joined.height == theirs.height == 2160 and joined["filled"].sum() == filled_hours
    mismatches = {c: int((joined[c] != joined[f"{c}_kraken"]).sum()) for c in ("open", "high", "low", "close")}
    assert mismatches == {"open": 0, "high": 0, "low": 0, "close": 0}
    relative = ((joined["volume"] - joined["volume_kraken"]).abs() / joined["volume_kraken"]).max()
    assert relative < 1e-9
