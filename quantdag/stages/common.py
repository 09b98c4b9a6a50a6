"""What every stage shares: its report, the slices of a market's rows, the candle reads.

Defined once here so that no stage imports another stage's helpers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from quantdag.data.event_starts import EVENT_COLUMNS, event_start_counts
from quantdag.errors import DataError
from quantdag.markets import CANDLE_KEY, Market, Window, peer_close_column
from quantdag.sentiment.bars import SENTIMENT_COLUMNS
from quantdag.store import Slice, Warehouse


@dataclass
class StageReport:
    """What a stage did, for the materialization's metadata and the demo's summary."""

    rows_written: int = 0
    per_market: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, market: Market, **counts: int) -> None:
        slot = self.per_market.setdefault(market.key, {})
        for k, v in counts.items():
            slot[k] = slot.get(k, 0) + int(v)

    def merge(self, other: StageReport) -> None:
        """Add ``other``'s rows, seconds and per-market counts to this report (a batch's total)."""
        self.rows_written += other.rows_written
        self.seconds += other.seconds
        for market, counts in other.per_market.items():
            slot = self.per_market.setdefault(market, {})
            for k, v in counts.items():
                slot[k] = slot.get(k, 0) + int(v)


def ms(dt: datetime) -> int:
    """Epoch milliseconds of a timezone-aware datetime."""
    return int(dt.timestamp() * 1000)


def market_slice(m: Market, w: Window | None = None, time_column: str | None = "ts") -> Slice:
    """The rows of market ``m`` (in window ``w``, or all of them) in a candle-keyed table."""
    if w is None:
        return Slice(where=m.where, time_column=None)
    return Slice(where=m.where, time_column=time_column, start=w[0], end=w[1])


def read_candles(wh: Warehouse, m: Market, peers: Sequence[str] = ()) -> pl.DataFrame:
    """Every stored clean candle of market ``m``, oldest first, with its sentiment columns
    (:func:`with_sentiment`) and event columns (:func:`with_events`): the frame every strategy
    gets; with ``peers`` (symbols of the same venue and timeframe), their closes too (:func:`with_peers`)."""
    candles = wh.read("market.candles", [market_slice(m)], order_by=CANDLE_KEY)
    return with_peers(wh, m, with_events(wh, m, with_sentiment(wh, m, candles)), peers)


def _has_table(wh: Warehouse, schema: str, table: str) -> bool:
    return bool(wh.query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    )["n"][0])  # fmt: skip


def with_events(wh: Warehouse, m: Market, candles: pl.DataFrame) -> pl.DataFrame:
    """``candles`` of market ``m`` with :data:`EVENT_COLUMNS`: the stored market events (``market.events``)
    starting at each candle (:mod:`quantdag.data.event_starts`: a start is known at its candle, an
    end is not). 0 where none started, or before events were built."""
    if candles.height == 0:
        return candles.with_columns(pl.lit(0, dtype=pl.Int32).alias(c) for c in EVENT_COLUMNS)
    if wh.read_only and not _has_table(wh, "market", "events"):
        events = pl.DataFrame(schema={"symbol": pl.String(), "timeframe": pl.String(), "event_type": pl.String(),
                                      "ts_start": pl.Datetime("ms", "UTC")})  # fmt: skip
    else:
        first, last = candles["ts"].min(), candles["ts"].max()
        events = wh.query(
            "SELECT symbol, timeframe, event_type, ts_start FROM market.events WHERE exchange = ? AND timeframe = ? "
            "AND ts_start BETWEEN ? AND ? AND (symbol = ? OR event_type = 'depeg')",
            [m.exchange, m.timeframe, first, last, m.symbol],
        )  # fmt: skip
    counts = event_start_counts(candles["ts"], events, m.symbol, m.timeframe)
    return candles.with_columns(counts[c] for c in EVENT_COLUMNS)


def with_peers(wh: Warehouse, m: Market, candles: pl.DataFrame, peers: Sequence[str]) -> pl.DataFrame:
    """``candles`` of market ``m`` with the close of each of ``peers`` (same venue and timeframe) on the
    same candle, as :func:`~quantdag.markets.peer_close_column` (null where the peer has no candle).

    Raises
    ------
    DataError
        If a peer has no stored candles at all (a model needing it would silently trade nothing).
    """
    out = candles
    for sym in dict.fromkeys(peers):
        if sym == m.symbol:  # a market among its own peers (a model over several markets): its close
            out = out.with_columns(pl.col("close").alias(peer_close_column(sym)))
            continue
        peer = Market(m.exchange, sym, m.timeframe)
        closes = wh.read("market.candles", [market_slice(peer)], order_by=CANDLE_KEY)
        if closes.height == 0:
            raise DataError(f"peer market {peer.key} has no stored candles (needed beside {m.key}); ingest it first")
        col = peer_close_column(sym)
        out = out.join(closes.select("ts", pl.col("close").alias(col)), on="ts", how="left", maintain_order="left")
    return out


def with_sentiment(wh: Warehouse, m: Market, candles: pl.DataFrame) -> pl.DataFrame:
    """``candles`` of market ``m`` with its :data:`SENTIMENT_COLUMNS` from ``sentiment.bars`` joined on ts.

    A candle without a bar row (no sentiment built for it) or without items gets 0 everywhere:
    nothing was known. Strategies read these columns like any candle column
    (``required_columns``); the look-ahead check perturbs them like the others.
    """
    if wh.read_only and not _has_table(wh, "sentiment", "bars"):  # a read-only reader of a file written before sentiment existed
        bars = pl.DataFrame()
    else:
        bars = wh.read("sentiment.bars", [market_slice(m)], order_by=("ts",)).select("ts", *SENTIMENT_COLUMNS)
    joined = candles.join(bars, on="ts", how="left", maintain_order="left") if bars.height else candles.with_columns(
        *(pl.lit(None, dtype=pl.Float64 if c != "sent_count" else pl.Int32).alias(c) for c in SENTIMENT_COLUMNS)
    )
    return joined.with_columns(
        pl.col("sent_count").fill_null(0).cast(pl.Int32),
        *(pl.col(c).fill_null(0.0).cast(pl.Float64) for c in SENTIMENT_COLUMNS if c != "sent_count"),
    )


def batch_check_counts(
    wh: Warehouse,
    sql: str,
    keys: Sequence[tuple[str, str]],
    markets: Sequence[Market],
    names: Sequence[str],
    extra: Callable[[Market], list[Any]] = lambda m: [],
) -> dict[tuple[str, str], dict[str, int]]:
    """Counts ``names`` per (strategy, params_hash) of ``keys``, summed over ``markets``: one run of a
    batch check query per market (``sql`` takes the strategies, their hashes, exchange, symbol,
    timeframe, then ``extra(market)``, and returns one row per key)."""
    totals = {k: dict.fromkeys(names, 0) for k in keys}
    if not keys:
        return totals
    for m in markets:
        rows = wh.query(sql, [[k[0] for k in keys], [k[1] for k in keys], m.exchange, m.symbol, m.timeframe, *extra(m)])
        for r in rows.iter_rows(named=True):
            slot = totals[(r["strategy"], r["params_hash"])]
            for n in names:
                slot[n] += int(r[n] or 0)
    return totals


def finite_or_none(v: Any) -> Any:
    """``v`` with NaN/inf floats as None: JSON and SQL have no NaN."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass(frozen=True)
class CheckVerdict:
    """One check's outcome and the counts behind it (plain values, for asset-check metadata)."""

    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)
