"""Small hand-made candle frames for the backtest tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import polars as pl

HOUR_MS = 3_600_000
T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


def candles(
    open_: Sequence[float],
    high: Sequence[float] | None = None,
    low: Sequence[float] | None = None,
    close: Sequence[float] | None = None,
    volume: Sequence[float] | None = None,
    step_ms: int = HOUR_MS,
) -> pl.DataFrame:
    """Hourly candles; high/low default to the max/min of open and close, close to the open."""
    o = np.asarray(open_, dtype=float)
    c = np.asarray(close if close is not None else open_, dtype=float)
    h = np.asarray(high, dtype=float) if high is not None else np.maximum(o, c)
    lo = np.asarray(low, dtype=float) if low is not None else np.minimum(o, c)
    v = np.asarray(volume, dtype=float) if volume is not None else np.full(o.shape[0], 1e9)
    ts = pl.Series("ts", T0 + np.arange(o.shape[0], dtype=np.int64) * step_ms).cast(pl.Datetime("ms", "UTC"))
    return pl.DataFrame({"ts": ts, "open": o, "high": h, "low": lo, "close": c, "volume": v})


def flags(n: int, *on: int) -> np.ndarray:
    """Boolean array of length n, True at the given indices."""
    out = np.zeros(n, dtype=bool)
    out[list(on)] = True
    return out


NO_COSTS = {"fee": 0.0, "slippage": 0.0}
