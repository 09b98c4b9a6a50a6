"""The landing area between the streamer and the warehouse: append-only Parquet files.

Why not write DuckDB from the streamer: DuckDB lets one process write a file at a time, and the
Dagster jobs (a backfill can hold the file for minutes) are writers too. A streamer that waited for
the lock would stall its websockets and lose messages; one that held it would block the jobs. So
the streamer only ever appends small files here (written to a temporary name, then renamed: a
reader never sees half a file), and :func:`ingest` — called by the streamer when the file is free,
and by the pipeline's ingestion — moves them into ``market.candles`` in one transaction, keyed
replace (idempotent: a file ingested twice changes nothing), with each candle's session and
source in ``market.stream_candles``. Files move to ``done/`` only after the commit.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from quantdag.errors import DataError
from quantdag.store import Warehouse

TS = pl.Datetime("ms", "UTC")
SCHEMA = {"exchange": pl.Utf8, "symbol": pl.Utf8, "timeframe": pl.Utf8, "ts": TS, "open": pl.Float64, "high": pl.Float64,
          "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64, "session": pl.Utf8, "source": pl.Utf8,
          "received_at": TS}  # fmt: skip
SOURCES = ("stream", "backfill")
_seq = itertools.count()


def candles_dir(root: Path) -> Path:
    return Path(root) / "candles"


def write_batch(root: Path, frame: pl.DataFrame, *, session: str) -> Path | None:
    """Append closed candles (``SCHEMA`` columns but ``session``) as one file; None if empty."""
    if not frame.height:
        return None
    missing = [c for c in SCHEMA if c not in frame.columns and c != "session"]
    if missing:
        raise DataError(f"landing batch: missing column(s) {missing}")
    bad = frame.filter(~pl.col("source").is_in(SOURCES))
    if bad.height:
        raise DataError(f"landing batch: unknown source {bad['source'][0]!r} (one of {SOURCES})")
    out = frame.with_columns(session=pl.lit(session)).select([pl.col(c).cast(t) for c, t in SCHEMA.items()])
    d = candles_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{os.getpid()}-{next(_seq)}-{session}.parquet"
    tmp = d / f".{name}.tmp"
    out.write_parquet(tmp)
    os.replace(tmp, d / name)  # atomic: readers see the whole file or none
    return d / name


def pending(root: Path) -> list[Path]:
    """Files not ingested yet, oldest first."""
    d = candles_dir(root)
    return sorted(p for p in d.glob("*.parquet")) if d.is_dir() else []


@dataclass
class IngestReport:
    files: int = 0
    candles: int = 0
    by_market: dict[str, int] = field(default_factory=dict)
    minutes: list[tuple[str, int]] = field(default_factory=list)  # (symbol, open ms) of the 1m candles stored


def ingest(wh: Warehouse, root: Path, *, limit: int | None = None) -> IngestReport:
    """Move pending landing files into ``market.candles`` (+ lineage) in one transaction."""
    files = pending(root)[:limit] if limit else pending(root)
    report = IngestReport()
    if not files:
        return report
    batch = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")
    # a minute delivered twice (a stream copy and a backfill, a duplicate message): the latest received wins
    batch = batch.sort("received_at").unique(subset=["exchange", "symbol", "timeframe", "ts"], keep="last", maintain_order=True)
    now = datetime.now(timezone.utc)
    candles = batch.select("exchange", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume",
                           filled=pl.lit(False))  # fmt: skip
    lineage = batch.select("exchange", "symbol", "timeframe", "ts", "session", "source", "received_at",
                           ingested_at=pl.lit(now).cast(TS))  # fmt: skip
    with wh.transaction() as con:
        for table, frame in (("market.candles", candles), ("market.stream_candles", lineage)):
            con.register("_landing", frame)
            try:
                con.execute(f"DELETE FROM {table} t USING _landing l WHERE t.exchange = l.exchange AND t.symbol = l.symbol "
                            "AND t.timeframe = l.timeframe AND t.ts = l.ts")  # fmt: skip
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _landing")
            finally:
                con.unregister("_landing")
    done = candles_dir(root) / "done"
    done.mkdir(exist_ok=True)
    for f in files:
        os.replace(f, done / f.name)
    report.files, report.candles = len(files), batch.height
    ones = batch.filter(pl.col("timeframe") == "1m")
    report.minutes = list(zip(ones["symbol"].to_list(), (ones["ts"].dt.epoch("ms")).to_list()))
    report.by_market = {f"{sym}:{tf}": int(n) for sym, tf, n in batch.group_by("symbol", "timeframe").len().iter_rows()}
    return report


__all__ = ["SCHEMA", "IngestReport", "candles_dir", "ingest", "pending", "write_batch"]
