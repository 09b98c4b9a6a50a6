"""Builders for RAW/CANDLES frames and a plain reference cleaner used as the tests' oracle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from conftest import load_real_candles

from quantdag.data.frames import CANDLES_SCHEMA, GAPS_SCHEMA, MARKET_KEY, OHLCV, RAW_SCHEMA
from quantdag.timeframes import timeframe_ms

T0 = 1_672_531_200_000  # 2023-01-01 00:00 UTC, aligned to every supported timeframe
LATE = 2_000_000_000_000  # a fetch time after every candle in the tests (2033)

Row = tuple  # (exchange, symbol, timeframe, ts_ms, open, high, low, close, volume, fetched_ms)


def raw_frame(rows: Sequence[Row]) -> pl.DataFrame:
    """RAW frame from ``(exchange, symbol, timeframe, ts, o, h, l, c, v, fetched_ms)`` tuples."""
    frame = pl.DataFrame(
        list(rows),
        schema={**{k: v for k, v in RAW_SCHEMA.items() if k != "fetched_at"}, "fetched_at": pl.Int64},
        orient="row",
    )
    return frame.with_columns(pl.col("fetched_at").cast(RAW_SCHEMA["fetched_at"]))


def bar(
    market: tuple[str, str, str], i: int, close: float = 100.0, *, fetched: int | None = None, **over: float
) -> Row:
    """A valid closed candle at grid index ``i`` of ``market`` (fetched late unless told)."""
    tf = timeframe_ms(market[2])
    ts = T0 + i * tf
    values = {"open": close, "high": close + 1.0, "low": close - 1.0, "close": close, "volume": 5.0, **over}
    return (*market, ts, *(values[c] for c in OHLCV), LATE if fetched is None else fetched)


def real_raw(exchange: str, market: str, timeframe: str) -> pl.DataFrame:
    """A shared parquet file as a RAW frame, every candle fetched long after it closed."""
    candles = load_real_candles(exchange, market, timeframe)
    return candles.select(
        pl.lit(exchange).alias("exchange"),
        pl.lit(market.replace("_", "/")).alias("symbol"),
        pl.lit(timeframe).alias("timeframe"),
        pl.col("ts").dt.epoch("ms").alias("ts"),
        *OHLCV,
        pl.lit(LATE).cast(RAW_SCHEMA["fetched_at"]).alias("fetched_at"),
    )


def real_candles(exchange: str, market: str, timeframe: str) -> pl.DataFrame:
    """A shared parquet file as a CANDLES frame (as stored, unfilled gaps and all)."""
    candles = load_real_candles(exchange, market, timeframe)
    return candles.select(
        pl.lit(exchange).alias("exchange"),
        pl.lit(market.replace("_", "/")).alias("symbol"),
        pl.lit(timeframe).alias("timeframe"),
        "ts",
        *OHLCV,
        pl.lit(False).alias("filled"),
    )


def reference_clean(
    raw: pl.DataFrame, start: int, end: int, prev_close: Mapping[tuple[str, str, str], float] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The cleaning rules written the obvious way (grid join + forward fill), market by market.

    Deliberately unlike the engine (no sort key, no kernel): it is the oracle in property tests.
    """
    prev_close = prev_close or {}
    candles, gaps = [], []
    frame = raw.with_columns(fetched=pl.col("fetched_at").dt.epoch("ms"))
    for key, market in frame.group_by(list(MARKET_KEY)):
        tf = timeframe_ms(key[2])
        last_fetch = market["fetched"].max()
        kept = market.filter(
            (pl.col("ts") + tf <= pl.col("fetched")) & (pl.col("ts") >= start) & (pl.col("ts") < end)
        )
        if kept.is_empty():
            continue
        best = kept.sort("ts", "fetched", "volume", "close", "high", "low", "open").group_by("ts").last()
        first_expected = -(-start // tf) * tf
        last_expected = min((end - 1) // tf * tf, last_fetch // tf * tf - tf)
        grid = pl.DataFrame({"ts": pl.int_range(first_expected, last_expected + tf, tf, eager=True)})
        g = grid.join(best.select("ts", *OHLCV), on="ts", how="left").sort("ts")
        fill = g["close"].forward_fill()
        if key in prev_close:
            fill = fill.fill_null(prev_close[key])
        g = g.with_columns(missing=pl.col("open").is_null(), fill=fill)
        g = g.with_columns(run=(pl.col("missing") != pl.col("missing").shift(1)).fill_null(True).cum_sum())
        runs = g.filter("missing").group_by("run").agg(
            pl.col("ts").min().alias("gap_start"),
            pl.col("ts").max().alias("gap_end"),
            pl.len().cast(pl.Int64).alias("missing"),
            pl.col("fill").first().is_not_null().alias("filled"),
        )
        labels = [pl.lit(k).alias(c) for k, c in zip(key, MARKET_KEY, strict=True)]
        gaps.append(runs.select(*labels, "gap_start", "gap_end", "missing", "filled"))
        out = g.filter(~pl.col("missing") | pl.col("fill").is_not_null()).select(
            *labels,
            "ts",
            *(
                pl.when("missing").then(pl.col("fill")).otherwise(pl.col(c)).alias(c)
                for c in ("open", "high", "low", "close")
            ),
            pl.when("missing").then(0.0).otherwise(pl.col("volume")).alias("volume"),
            pl.col("missing").alias("filled"),
        )
        candles.append(out)
    candles_out = (
        pl.concat(candles).with_columns(pl.col("ts").cast(CANDLES_SCHEMA["ts"])).cast(dict(CANDLES_SCHEMA))
        if candles
        else pl.DataFrame(schema=dict(CANDLES_SCHEMA))
    )
    gaps_out = (
        pl.concat(gaps)
        .with_columns(pl.col("gap_start", "gap_end").cast(GAPS_SCHEMA["gap_start"]))
        .cast(dict(GAPS_SCHEMA))
        if gaps
        else pl.DataFrame(schema=dict(GAPS_SCHEMA))
    )
    return (
        candles_out.sort(*MARKET_KEY, "ts"),
        gaps_out.sort(*MARKET_KEY, "gap_start"),
    )


HOUR = 3_600_000


def hourly_frame(symbol: str, close: np.ndarray, volume: np.ndarray, *, exchange: str = "sim", filled=None) -> pl.DataFrame:
    """Hourly CANDLES of one market from T0, open = previous close (``filled`` all false unless given)."""
    n = close.size
    open_ = np.r_[close[0], close[:-1]]
    return pl.DataFrame(
        {
            "exchange": [exchange] * n,
            "symbol": [symbol] * n,
            "timeframe": ["1h"] * n,
            "ts": pl.Series(T0 + np.arange(n, dtype=np.int64) * HOUR).cast(pl.Datetime("ms", "UTC")),
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": volume,
            "filled": np.zeros(n, bool) if filled is None else filled,
        }
    )
