"""The landing area between the streamer and the warehouse: append-only Parquet files.

Why not write DuckDB from the streamer: DuckDB lets one process write a file at a time, and the
Dagster jobs (a backfill can hold the file for minutes) are writers too. A streamer that waited for
the lock would stall its websockets and lose messages; one that held it would block the jobs. So
the streamer only ever appends small files here (written to a temporary name, then renamed: a
reader never sees half a file), one folder per kind, and :func:`ingest` — called by the streamer
when the file is free, and by the pipeline's ingestion — moves every pending file of every kind
into the warehouse in one transaction, idempotently (a file ingested twice changes nothing).
Files move to ``<kind>/done/`` only after the commit.

Kinds: ``candles`` (closed candles -> ``market.candles``, keyed replace, each candle's session and
source in ``market.stream_candles``), ``trades`` (-> ``market.trades``, by trade id),
``book`` (sampled top of book -> ``market.book``) and ``events`` (gaps REST could not fill,
reconnects, book resnapshots, dropped messages -> ``market.stream_events``).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from quantdag.errors import DataError
from quantdag.store import Warehouse

TS = pl.Datetime("ms", "UTC")
_MARKET = {"exchange": pl.Utf8, "symbol": pl.Utf8}
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "candles": {**_MARKET, "timeframe": pl.Utf8, "ts": TS, "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                "close": pl.Float64, "volume": pl.Float64, "session": pl.Utf8, "source": pl.Utf8, "received_at": TS},
    "trades": {**_MARKET, "id": pl.Int64, "ts": TS, "price": pl.Float64, "amount": pl.Float64, "side": pl.Utf8,
               "session": pl.Utf8, "source": pl.Utf8, "received_at": TS},
    "book": {**_MARKET, "ts": TS, "nonce": pl.Int64, "bid": pl.Float64, "ask": pl.Float64, "bid_qty": pl.Float64,
             "ask_qty": pl.Float64, "bid_depth": pl.Float64, "ask_depth": pl.Float64, "levels": pl.Int32,
             "session": pl.Utf8, "received_at": TS},
    "events": {**_MARKET, "channel": pl.Utf8, "kind": pl.Utf8, "first_ts": TS, "last_ts": TS, "count": pl.Int64,
               "detail": pl.Utf8, "session": pl.Utf8, "seen_at": TS},
}  # fmt: skip
SCHEMA = SCHEMAS["candles"]
SOURCES = ("stream", "backfill", "confirm")  # confirm: a venue without a closed flag, the closed candle read over REST
CHANNELS = ("ohlcv", "trades", "book")
EVENT_KINDS = ("gap", "reconnect", "resnapshot", "dropped")
#: what identifies one row of each kind: a second copy of it is not stored again
KEYS = {"trades": ("exchange", "symbol", "id"), "book": ("exchange", "symbol", "ts"),
        "events": ("session", "exchange", "symbol", "channel", "kind", "first_ts", "seen_at")}  # fmt: skip
TABLES = {"trades": "market.trades", "book": "market.book", "events": "market.stream_events"}
_seq = itertools.count()


def kind_dir(root: Path, kind: str) -> Path:
    return Path(root) / kind


def candles_dir(root: Path) -> Path:
    return kind_dir(root, "candles")


def _validate(kind: str, frame: pl.DataFrame) -> None:
    if kind not in SCHEMAS:
        raise DataError(f"landing batch: unknown kind {kind!r} (one of {tuple(SCHEMAS)})")
    missing = [c for c in SCHEMAS[kind] if c not in frame.columns and c != "session"]
    if missing:
        raise DataError(f"landing {kind} batch: missing column(s) {missing}")
    for col, allowed in (("source", SOURCES), ("channel", CHANNELS), ("kind", EVENT_KINDS)):
        if col in SCHEMAS[kind]:
            bad = frame.filter(~pl.col(col).is_in(allowed))
            if bad.height:
                raise DataError(f"landing {kind} batch: unknown {col} {bad[col][0]!r} (one of {allowed})")


def write_batch(root: Path, frame: pl.DataFrame, *, session: str, kind: str = "candles") -> Path | None:
    """Append rows of ``kind`` (its ``SCHEMAS`` columns but ``session``) as one file; None if empty."""
    _validate(kind, frame)
    if not frame.height:
        return None
    out = frame.with_columns(session=pl.lit(session)).select([pl.col(c).cast(t) for c, t in SCHEMAS[kind].items()])
    d = kind_dir(root, kind)
    d.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{os.getpid()}-{next(_seq)}-{session}.parquet"
    tmp = d / f".{name}.tmp"
    out.write_parquet(tmp)
    os.replace(tmp, d / name)  # atomic: readers see the whole file or none
    return d / name


def pending(root: Path, kind: str | None = None) -> list[Path]:
    """Files not ingested yet (of ``kind``, or of every kind), oldest first within a kind."""
    out: list[Path] = []
    for k in [kind] if kind else list(SCHEMAS):
        d = kind_dir(root, k)
        out += sorted(d.glob("*.parquet")) if d.is_dir() else []
    return out


@dataclass
class IngestReport:
    files: int = 0
    candles: int = 0
    by_market: dict[str, int] = field(default_factory=dict)
    minutes: list[tuple[str, int]] = field(default_factory=list)  # (symbol, open ms) of the 1m candles stored
    rows: dict[str, int] = field(default_factory=dict)  # rows read per kind (trades, book, events)
    pruned: dict[str, int] = field(default_factory=dict)  # rows / files removed by the retention rule (:func:`prune`)


def _ingest_candles(con, batch: pl.DataFrame) -> None:
    # a minute delivered twice (a stream copy and a backfill, a duplicate message): the latest received wins
    now = datetime.now(timezone.utc)
    candles = batch.select("exchange", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume",
                           filled=pl.lit(False))  # fmt: skip
    lineage = batch.select("exchange", "symbol", "timeframe", "ts", "session", "source", "received_at",
                           ingested_at=pl.lit(now).cast(TS))  # fmt: skip
    for table, frame in (("market.candles", candles), ("market.stream_candles", lineage)):
        con.register("_landing", frame)
        try:
            con.execute(f"DELETE FROM {table} t USING _landing l WHERE t.exchange = l.exchange AND t.symbol = l.symbol "
                        "AND t.timeframe = l.timeframe AND t.ts = l.ts")  # fmt: skip
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _landing")
        finally:
            con.unregister("_landing")


def _ingest_keyed(con, kind: str, batch: pl.DataFrame) -> None:
    """Insert the rows whose key is not stored yet. No primary key (its index would grow with every
    trade ever stored); the anti-join is bounded to the batch's time range, which DuckDB's zone maps
    prune to the newest row groups, so an ingest costs the same on day 1 and day 100."""
    table, key = TABLES[kind], KEYS[kind]
    ts = "ts" if "ts" in batch.columns else "seen_at"
    lo, hi = batch[ts].min(), batch[ts].max()
    con.register("_landing", batch)
    try:
        on = " AND ".join(f"t.{k} IS NOT DISTINCT FROM l.{k}" for k in key)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _landing l WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {table} t WHERE t.{ts} BETWEEN ? AND ? AND {on})", [lo, hi])  # fmt: skip
    finally:
        con.unregister("_landing")


def ingest(wh: Warehouse, root: Path, *, limit: int | None = None) -> IngestReport:
    """Move pending landing files of every kind into the warehouse in one transaction."""
    report = IngestReport()
    by_kind = {k: pending(root, k)[:limit] if limit else pending(root, k) for k in SCHEMAS}
    files = [f for fs in by_kind.values() for f in fs]
    if not files:
        return report
    batches: dict[str, pl.DataFrame] = {}
    for kind, fs in by_kind.items():
        if fs:
            batch = pl.concat([pl.read_parquet(f) for f in fs], how="vertical_relaxed")
            if kind == "candles":
                batch = batch.sort("received_at").unique(subset=["exchange", "symbol", "timeframe", "ts"], keep="last",
                                                         maintain_order=True)  # fmt: skip
            else:
                batch = batch.unique(subset=list(KEYS[kind]), keep="first", maintain_order=True)
            batches[kind] = batch
    with wh.transaction() as con:
        for kind, batch in batches.items():
            _ingest_candles(con, batch) if kind == "candles" else _ingest_keyed(con, kind, batch)
    for kind, fs in by_kind.items():
        if fs:
            done = kind_dir(root, kind) / "done"
            done.mkdir(exist_ok=True)
            for f in fs:
                os.replace(f, done / f.name)
    report.files = len(files)
    report.rows = {k: b.height for k, b in batches.items() if k != "candles"}
    candles = batches.get("candles")
    if candles is not None:
        report.candles = candles.height
        ones = candles.filter(pl.col("timeframe") == "1m")
        report.minutes = list(zip(ones["symbol"].to_list(), (ones["ts"].dt.epoch("ms")).to_list()))
        report.by_market = {f"{s}:{tf}": int(n) for s, tf, n in candles.group_by("symbol", "timeframe").len().iter_rows()}
    return report


def prune(wh: Warehouse, root: Path, retention_days: Mapping[str, float | None], *, now: datetime | None = None) -> dict[str, int]:
    """Delete ticks older than their retention: ``market.trades`` / ``market.book`` rows (``retention_days``
    by kind; None keeps everything) and ingested landing files (``done/``) older than the longest one.

    Why: at a venue's volume the trades table grows by millions of rows a day, and the research
    pipeline reads candles, not ticks; a retention window keeps the file (and its backups) bounded.
    Candles and stream events are never pruned. One transaction; returns rows (and files) removed.
    """
    now = now or datetime.now(timezone.utc)
    removed: dict[str, int] = {}
    with wh.transaction() as con:
        for kind in ("trades", "book"):
            days = retention_days.get(kind)
            if days is None:
                continue
            deleted = con.execute(f"DELETE FROM {TABLES[kind]} WHERE ts < ?", [now - timedelta(days=float(days))]).fetchone()
            removed[kind] = int(deleted[0]) if deleted else 0  # DuckDB's DELETE returns the row count
    kept = [d for d in retention_days.values() if d is not None]
    if kept and len(kept) == len(retention_days):
        horizon = now.timestamp() - max(float(d) for d in kept) * 86400
        files = [f for k in SCHEMAS for f in (kind_dir(root, k) / "done").glob("*.parquet") if f.stat().st_mtime < horizon]
        for f in files:
            f.unlink(missing_ok=True)
        removed["files"] = len(files)
    return removed


__all__ = ["CHANNELS", "EVENT_KINDS", "SCHEMA", "SCHEMAS", "IngestReport", "candles_dir", "ingest", "kind_dir", "pending",
           "prune", "write_batch"]
