from __future__ import annotations

import math

import pandera.errors as pa_errors
import polars as pl
import pytest

from quantdag.data import CandleSchema, clean_candles

from .support import real_raw


@pytest.fixture(scope="module")
def clean() -> pl.DataFrame:
    """Cleaned Kraken BTC/USDT 5m candles: real values plus 975 filled candles."""
    raw = real_raw("kraken", "BTC_USDT", "5m")
    return clean_candles(raw, start=raw["ts"].min(), end=raw["ts"].max() + 300_000).candles


def _failed_checks(frame: pl.DataFrame) -> set[tuple[str, str]]:
    with pytest.raises(pa_errors.SchemaErrors) as err:
        CandleSchema.validate(frame, lazy=True)
    return set(err.value.failure_cases.select("check", "column").unique().rows())


def _first_row(frame: pl.DataFrame, o: float, h: float, low: float, c: float) -> pl.DataFrame:
    """``frame`` with its first candle's OHLC replaced."""
    first = frame.head(1).with_columns(open=pl.lit(o), high=pl.lit(h), low=pl.lit(low), close=pl.lit(c))
    return pl.concat([first, frame.slice(1)])


def test_candle_schema_clean_real_candles_pass(clean):
    assert clean["filled"].sum() == 975
    assert CandleSchema.validate(clean).height == clean.height


def test_candle_schema_is_exported_lazily_from_the_package():
    import quantdag.data as data

    assert data.CandleSchema is CandleSchema


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (
            lambda f: f.with_columns(high=pl.col("low") - 1),
            {("high_ge_low", "CandleSchema"), ("high_ge_open_close", "CandleSchema")},
        ),
        (lambda f: _first_row(f, 100.0, 100.5, 99.0, 101.0), {("high_ge_open_close", "CandleSchema")}),
        (lambda f: _first_row(f, 100.0, 102.0, 100.5, 101.0), {("low_le_open_close", "CandleSchema")}),
        (lambda f: f.with_columns(volume=pl.lit(-1.0)), {("greater_than_or_equal_to(0)", "volume")}),
        (
            lambda f: f.with_columns(open=pl.lit(0.0), low=pl.lit(0.0)),
            {("greater_than(0)", "open"), ("greater_than(0)", "low")},
        ),
        (lambda f: f.with_columns(high=pl.lit(math.inf)), {("prices_finite", "CandleSchema")}),
        (lambda f: pl.concat([f, f.head(1)]), {("multiple_fields_uniqueness", "CandleSchema")}),
    ],
    ids=["high<low", "high<body", "low>body", "negative-volume", "zero-price", "inf-price", "duplicate-key"],
)
def test_candle_schema_broken_invariant_fails_naming_the_check(clean, corrupt, expected):
    assert _failed_checks(corrupt(clean.head(50))) == expected


def test_candle_schema_nan_price_fails_as_null(clean):
    checks = _failed_checks(clean.head(5).with_columns(close=pl.lit(math.nan)))
    assert ("not_nullable", "close") in checks


def test_candle_schema_wrong_ts_type_fails_on_dtype(clean):
    checks = _failed_checks(clean.head(5).with_columns(pl.col("ts").dt.replace_time_zone(None)))
    assert {column for _, column in checks} == {"ts"}
    assert any("Datetime(time_unit='ms', time_zone='UTC')" in check for check, _ in checks)


def test_candle_schema_extra_column_fails_strict(clean):
    checks = _failed_checks(clean.head(5).with_columns(pl.lit(1).alias("trades")))
    assert ("column_in_schema", "CandleSchema") in checks


def test_candle_schema_missing_column_fails(clean):
    checks = _failed_checks(clean.head(5).drop("filled"))
    assert checks == {("column_in_dataframe", "CandleSchema")}
