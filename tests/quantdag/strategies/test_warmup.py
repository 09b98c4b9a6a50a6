"""The warm-up (recursive) check: signals beyond the declared warm-up must not depend on the history start."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import load_real_candles

from quantdag.errors import ConfigurationError
from quantdag.strategies import IntParam, Strategy, create_strategy
from quantdag.strategies.warmup import check_warmup, default_starts


class CumulativeDrift(Strategy):
    """Start-dependent: long while the close is above the mean of *every* candle so far (an expanding mean)."""

    name = "cumulative_drift"
    window = IntParam(10, low=2, high=100)

    @property
    def startup_candles(self) -> int:
        return self.window

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        return candles.with_columns(mean=pl.col("close").cum_sum() / pl.int_range(1, pl.len() + 1))

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        up = pl.col("close") > pl.col("mean")
        return frame.with_columns(entry=up, exit=~up)


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "1h").head(1200)


def test_rolling_strategy_passes_beyond_its_warmup(candles):
    report = check_warmup(create_strategy("sma_cross", {"fast": 10, "slow": 50}), candles)
    assert report.ok, report.summary()
    assert report.warmup == 50 and report.starts == tuple(default_starts(1200, 50))
    assert "OK: signals identical beyond the warm-up" in report.summary()


def test_start_dependent_strategy_fails_naming_column_and_candle(candles):
    report = check_warmup(CumulativeDrift(), candles, starts=[300])
    assert not report.ok
    (start, diff), = report.differences
    assert start == 300 and diff.column in ("entry", "exit") and diff.row >= 10
    assert diff.ts == candles["ts"][300 + diff.row]
    text = report.summary()
    assert f"column {diff.column!r} at ts={diff.ts}" in text and "history from row 300" in text


def test_too_few_candles_is_a_configuration_error(candles):
    with pytest.raises(ConfigurationError, match="give at least 121 candles"):
        check_warmup(create_strategy("sma_cross", {"fast": 10, "slow": 50}), candles.head(100))
