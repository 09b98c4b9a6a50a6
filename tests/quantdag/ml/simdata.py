"""Candles of the project's simulated markets (a seeded random walk with GARCH volatility and jumps:
no predictable drift), built in memory without the HTTP server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import polars as pl

from quantdag.ml.registry import use_store
from quantdag.sim import MarketModel
from quantdag.sim.clock import SimClock

GENESIS = 1_700_006_400_000 // 86_400_000 * 86_400_000
DAY = 86_400_000


def sim_candles(symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT"), days: int = 90, seed: int = 7, timeframe: str = "1h") -> pl.DataFrame:
    """CANDLES rows of ``symbols`` for ``days`` days from the simulator (every candle closed)."""
    end = GENESIS + days * DAY
    model = MarketModel(seed, genesis_ms=GENESIS, clock=SimClock(end + 1))
    parts = []
    for sym in symbols:
        k = model.klines(sym, timeframe, GENESIS, end)
        parts.append(k.filter(pl.col("closed")).select(
            pl.lit("sim").alias("exchange"), pl.lit(sym).alias("symbol"), pl.lit(timeframe).alias("timeframe"),
            pl.col("open_time").cast(pl.Datetime("ms", "UTC")).alias("ts"),
            "open", "high", "low", "close", "volume", pl.lit(False).alias("filled"),
        ))  # fmt: skip
    return pl.concat(parts)




@contextmanager
def fresh_store(folder: Path) -> Iterator[str]:
    """A new sqlite store as the process's model store; afterwards, no store is configured again."""
    before = os.environ.pop("MLFLOW_TRACKING_URI", None)
    use_store(f"sqlite:///{folder / 'mlflow.db'}")
    try:
        yield mlflow.MlflowClient().create_experiment("ml", artifact_location=(folder / "mlartifacts").as_uri())
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before
        mlflow.set_tracking_uri("")
