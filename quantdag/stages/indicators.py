"""Indicators: ``market.candles`` → ``features.indicators``, each window warmed by earlier candles."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta

import polars as pl

from quantdag.features import compute_indicators, lookback_days
from quantdag.markets import CANDLE_KEY, Market, Window
from quantdag.stages.common import StageReport, market_slice
from quantdag.store import Warehouse


def build_indicators(wh: Warehouse, windows: Mapping[Market, Sequence[Window]]) -> StageReport:
    """Indicators for each window, warmed by a look-back of earlier candles, into ``features.indicators``."""
    t0 = time.perf_counter()
    report = StageReport()
    writes: list[tuple[Market, Window, pl.DataFrame]] = []
    for m, wins in windows.items():
        back = timedelta(days=lookback_days(m.timeframe))
        for w in wins:
            candles = wh.read("market.candles", [market_slice(m, (w[0] - back, w[1]))], order_by=CANDLE_KEY)
            feats = compute_indicators(candles, warm_start=w[0]) if candles.height else _empty_indicators(candles)
            report.add(m, context_rows=candles.height, rows=feats.height)
            writes.append((m, w, feats))
    with wh.transaction() as con:
        for m, w, feats in writes:
            report.rows_written += Warehouse.replace(con, "features.indicators", feats, [market_slice(m, w)], order_by=CANDLE_KEY)
    report.seconds = time.perf_counter() - t0
    return report


def _empty_indicators(candles: pl.DataFrame) -> pl.DataFrame:
    return compute_indicators(candles.clear(), warm_start=None)
