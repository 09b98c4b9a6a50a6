"""Streamed candles: the landing area into the warehouse, and how fresh every market is.

The streamer (``python -m quantdag.stream``) ingests its own landing files whenever DuckDB is free;
this stage is the pipeline's way in for what waited (a job held the file) and the freshness each
market's last candle has: a stream that stalled shows here, in the Dagster UI, not in a log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from quantdag.markets import Market
from quantdag.store import Warehouse
from quantdag.stream.landing import IngestReport, ingest, pending, prune
from quantdag.timeframes import timeframe_ms

#: a 1m stream whose last closed candle is older than this many candles is stale
STALE_CANDLES = 3


def landing_root(data_dir: Path) -> Path:
    """Where the streamer lands candles (``<data_dir>/landing``): one place, named here."""
    return Path(data_dir) / "landing"


def ingest_landing(wh: Warehouse, root: Path, retention: Mapping[str, float | None] | None = None) -> IngestReport:
    """Every pending landing file (candles, trades, book samples, stream events) into the warehouse, in one
    transaction; then ticks older than ``retention`` (days by kind, :func:`~quantdag.stream.landing.prune`)
    are deleted (``report.pruned``)."""
    report = ingest(wh, root)
    if retention:
        report.pruned = prune(wh, root, retention)
    return report


def recent_events(wh: Warehouse, *, hours: float = 24.0, now: datetime | None = None) -> dict[str, int]:
    """What the streams met in the last ``hours``: ``{"<channel> <kind>": count}`` (gaps, reconnects, resnapshots, drops)."""
    since = (now or datetime.now(timezone.utc)).timestamp() - hours * 3600
    rows = wh.query("SELECT channel || ' ' || kind AS k, sum(count)::BIGINT AS n FROM market.stream_events "
                    "WHERE seen_at >= to_timestamp(?) GROUP BY 1 ORDER BY 1", [since])  # fmt: skip
    return dict(zip(rows["k"].to_list(), rows["n"].to_list()))


def pending_files(root: Path) -> int:
    return len(pending(root))


def freshness(wh: Warehouse, markets: Sequence[Market], *, timeframe: str = "1m", now: datetime | None = None) -> pl.DataFrame:
    """Per market: its last stored ``timeframe`` candle, age of its close in seconds, and whether fresh
    (closed less than ``STALE_CANDLES`` candles ago)."""
    now = now or datetime.now(timezone.utc)
    tf_s = timeframe_ms(timeframe) / 1000
    rows = []
    for m in markets:
        last = wh.query("SELECT max(ts) AS ts FROM market.candles WHERE exchange = ? AND symbol = ? AND timeframe = ?",
                        [m.exchange, m.symbol, timeframe])["ts"][0]  # fmt: skip
        age = None if last is None else (now - last).total_seconds() - tf_s
        rows.append({"market": f"{m.symbol}:{timeframe}", "last_ts": last, "age_s": age,
                     "fresh": age is not None and age < STALE_CANDLES * tf_s})  # fmt: skip
    return pl.DataFrame(rows, schema={"market": pl.Utf8, "last_ts": pl.Datetime("ms", "UTC"), "age_s": pl.Float64,
                                      "fresh": pl.Boolean})  # fmt: skip
