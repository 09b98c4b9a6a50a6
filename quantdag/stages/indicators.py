"""Indicators: ``market.candles`` → ``features.indicators``, each window warmed by earlier candles.

Which indicators is configured (``quantdag.yaml``: ``indicators``). A configured column the table
lacks is added in the write's own transaction, so a failed run leaves neither rows nor column;
a column no longer configured stays in the table and is NULL in later writes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import duckdb
import polars as pl

from quantdag.features import DEFAULT_INDICATORS, compute_indicators, indicators_schema, lookback_days
from quantdag.indicators import IndicatorSpec, check_column_name
from quantdag.markets import CANDLE_KEY, Market, Window
from quantdag.stages.common import StageReport, market_slice
from quantdag.store import Warehouse

TABLE = "features.indicators"


def lookback_days_of(markets: Sequence[Market], specs: Sequence[Any] = DEFAULT_INDICATORS) -> int:
    """Days of earlier candles the slowest of ``markets`` reads to warm its indicators (the lineage's look-back)."""
    return max((lookback_days(m.timeframe, specs) for m in markets), default=0)


def build_indicators(
    wh: Warehouse, windows: Mapping[Market, Sequence[Window]], specs: Sequence[IndicatorSpec] = DEFAULT_INDICATORS
) -> StageReport:
    """The ``specs`` indicators for each window, warmed by a look-back of earlier candles, into ``features.indicators``.

    Raises
    ------
    DataError
        If stored candles break the indicator contract (nothing is written).
    StrategyError
        If a user indicator fails or looks ahead (nothing is written).
    """
    t0 = time.perf_counter()
    specs = tuple(specs)
    report = StageReport()
    writes: list[tuple[Market, Window, pl.DataFrame]] = []
    for m, wins in windows.items():
        back = timedelta(days=lookback_days(m.timeframe, specs))
        for w in wins:
            candles = wh.read("market.candles", [market_slice(m, (w[0] - back, w[1]))], order_by=CANDLE_KEY)
            feats = compute_indicators(candles, warm_start=w[0], specs=specs) if candles.height else _empty(specs)
            report.add(m, context_rows=candles.height, rows=feats.height)
            writes.append((m, w, feats))
    with wh.transaction() as con:
        add_columns(con, [c for c in indicators_schema(specs) if c not in CANDLE_KEY])
        for m, w, feats in writes:
            report.rows_written += Warehouse.replace(con, TABLE, feats, [market_slice(m, w)], order_by=CANDLE_KEY)
    report.seconds = time.perf_counter() - t0
    return report


def add_columns(con: duckdb.DuckDBPyConnection, columns: Sequence[str]) -> list[str]:
    """Add the DOUBLE ``columns`` that ``features.indicators`` lacks, on ``con`` (inside the write's transaction)."""
    have = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'features' AND table_name = 'indicators'"
        ).fetchall()
    }
    added = [c for c in columns if c not in have]
    for c in added:
        check_column_name(c, ("column",))
        con.execute(f'ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS "{c}" DOUBLE')
    return added


def _empty(specs: Sequence[IndicatorSpec]) -> pl.DataFrame:
    return pl.DataFrame(schema=indicators_schema(specs))
