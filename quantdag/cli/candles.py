"""Candles for a command: a parquet file, or the warehouse with what is missing downloaded first.

Downloading goes through the pipeline's own stages (``ingest_raw`` then ``normalize_candles``,
one transaction each) against the configured exchange, the simulator offline, so what a command
stores is exactly what the data job would store for those days.
"""

from __future__ import annotations

import re
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click
import polars as pl

from quantdag.cli.common import InputError, exchange_client, open_warehouse, utc_start

if TYPE_CHECKING:
    from quantdag.config import ProjectConfig
    from quantdag.markets import Market

#: ``BTC_USDT-1h.parquet`` (the shared data's naming): symbol and timeframe of a candle file.
_FILE_NAME = re.compile(r"(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)-(?P<tf>[0-9]+[mhdwM])$")


def market_of_file(path: Path) -> str | None:
    """``"BTC/USDT:1h"`` from a file named ``BTC_USDT-1h.parquet``, else None."""
    m = _FILE_NAME.match(path.stem)
    return f"{m['base']}/{m['quote']}:{m['tf']}" if m else None


def in_range(frame: pl.DataFrame, start: date | None, end: date | None) -> pl.DataFrame:
    """Candles opening on days ``start``..``end`` (inclusive, UTC)."""
    if start is not None:
        frame = frame.filter(pl.col("ts") >= utc_start(start))
    if end is not None:
        frame = frame.filter(pl.col("ts") < utc_start(end + timedelta(days=1)))
    return frame


def from_parquet(path: Path, start: date | None, end: date | None) -> pl.DataFrame:
    """A parquet file of candles (``ts`` as datetime or epoch ms, OHLCV), in the range, as UTC ``datetime[ms]``."""
    from quantdag.strategies.cli import load_candles

    frame = load_candles(path)
    ts = frame["ts"]
    if ts.dtype.time_zone is None:  # type: ignore[union-attr]
        ts = ts.dt.replace_time_zone("UTC")
    frame = frame.with_columns(ts.dt.cast_time_unit("ms").alias("ts")).sort("ts")
    out = in_range(frame, start, end)
    if out.height < 2:
        raise InputError(f"{path}: {out.height} candle(s) between {start or 'its start'} and {end or 'its end'}; widen --from/--to")
    return out


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def ensure_stored(config: ProjectConfig, market: Market, start: date, end: date) -> dict[str, int]:
    """Download and clean the days ``start``..``end`` of ``market`` that have no stored candle.

    Returns the counts: days asked, days downloaded, candles stored for the market afterwards.
    """
    from quantdag.markets import day_windows
    from quantdag.stages.market_data import ingest_raw, normalize_candles, uncovered_days

    wh = open_warehouse(config)
    markets = [market]
    if market.resample_from is not None:
        source = next((m for m in config.markets if m.symbol == market.symbol and m.timeframe == market.resample_from), None)
        markets = [source, market] if source is not None else markets
    days = [d.isoformat() for d in days_between(start, end)]
    missing = uncovered_days(wh, markets, days)
    if missing:
        windows = day_windows(date.fromisoformat(d) for d in missing)
        client = exchange_client(config)
        label = f"downloading {len(missing)} day(s) of {market.key} from {config.venue}"
        with click.progressbar(length=2, label=label, file=sys.stderr) as bar:
            with wh.session():
                ingest_raw(wh, client, {m: windows for m in markets})
                bar.update(1)
                normalize_candles(wh, {m: windows for m in markets})
                bar.update(1)
    return {"days": len(days), "downloaded_days": len(missing)}


def from_warehouse(config: ProjectConfig, market: Market, start: date | None, end: date | None, *, download: bool = True,
                   peers: tuple[str, ...] = ()) -> pl.DataFrame:  # fmt: skip
    """Stored candles of ``market`` on the days asked (default: the universe's start to today),
    downloading missing days first unless ``download`` is false: the frame the pipeline gives a
    strategy (OHLCV, ``sent_*``, ``event_*``, and ``peers``' closes), so the numbers agree."""
    from quantdag.stages.common import read_candles

    today = datetime.now(timezone.utc).date()
    start = start or config.universe.start(today)
    end = end or today
    if end < start:
        raise InputError(f"--to {end} is before --from {start}")
    if download:
        ensure_stored(config, market, start, end)
    frame = in_range(read_candles(open_warehouse(config), market, peers=peers), start, end)
    if frame.height < 2:
        raise InputError(
            f"{market.key} on {config.venue}: {frame.height} stored candle(s) from {start} to {end}; "
            "run `quantdag download` for those days, or pass --candles FILE.parquet"
        )
    return frame.drop("exchange", "symbol", "timeframe", "filled", strict=False)
