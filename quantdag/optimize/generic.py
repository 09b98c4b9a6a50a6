"""Sweep any strategy over the generic engine: signals + :func:`quantdag.backtest.run` per
combination, the combinations split into chunks over a process pool (the strategy step runs
Python and polars; the engine's kernel holds the GIL, so processes rather than threads)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np
import polars as pl

from quantdag.backtest import BacktestResult, BacktestSettings, run
from quantdag.errors import ConfigurationError
from quantdag.strategies import create_strategy
from quantdag.strategies.base import Strategy

#: Below this many combinations a sweep runs in-process (spawning workers costs ~1-2 s).
MIN_PARALLEL = 48


def run_strategy(candles: pl.DataFrame, strategy: Strategy, settings: BacktestSettings) -> BacktestResult:
    """Backtest one strategy instance as the research pipeline does (target, long/short or long signals)."""
    sig = strategy.signals(candles)
    if "target" in sig.columns and sig["target"].null_count() < sig.height:
        return run(candles, target=sig["target"].fill_null(0.0), settings=settings)
    if "short_entry" in sig.columns and sig["short_entry"].null_count() < sig.height:
        return run(
            candles, sig["entry"], sig["exit"], short_entries=sig["short_entry"].fill_null(False),
            short_exits=sig["short_exit"].fill_null(False), settings=settings.replace(direction="both"),
        )  # fmt: skip
    if settings.direction == "both":
        raise ConfigurationError(f"direction='both' needs short signals, which {strategy.name} does not produce")
    return run(candles, sig["entry"], sig["exit"], settings=settings)


def _chunk_metrics(candles: pl.DataFrame, name: str, combos: Sequence[Mapping[str, Any]], settings: BacktestSettings) -> list[dict[str, Any]]:
    return [run_strategy(candles, create_strategy(name, p), settings).metrics for p in combos]


_WORKER: dict[str, Any] = {}


def _init_worker(candles: pl.DataFrame, name: str, settings: BacktestSettings) -> None:
    _WORKER.update(candles=candles, name=name, settings=settings)


def _worker_chunk(combos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _chunk_metrics(_WORKER["candles"], _WORKER["name"], combos, _WORKER["settings"])


def generic_metrics(
    candles: pl.DataFrame,
    name: str,
    combos: Sequence[Mapping[str, Any]],
    settings: BacktestSettings,
    *,
    n_jobs: int | None = None,
) -> dict[str, np.ndarray]:
    """Metrics of every combination as columns (name -> array), in ``combos`` order."""
    if settings.direction == "both" and not create_strategy(name, combos[0]).emits_shorts():
        raise ConfigurationError(f"direction='both' needs short signals, which {name} does not produce")
    jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1) if len(combos) >= MIN_PARALLEL else 1
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigurationError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    combos = [dict(p) for p in combos]
    if jobs == 1:
        rows = _chunk_metrics(candles, name, combos, settings)
    else:
        size = max(1, math.ceil(len(combos) / (jobs * 4)))
        chunks = [combos[i : i + size] for i in range(0, len(combos), size)]
        # spawn: forking a process that runs numba/polars threads is unsafe
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_init_worker,
                                 initargs=(candles, name, settings)) as pool:  # fmt: skip
            rows = [r for part in pool.map(_worker_chunk, chunks) for r in part]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}
