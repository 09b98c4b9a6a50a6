"""Signals: a parameter set's entries, exits and targets on every research market's closed candles."""

from __future__ import annotations

import time
from collections.abc import Sequence

import polars as pl

from quantdag.markets import CANDLE_KEY, Market
from quantdag.stages.common import StageReport, read_candles
from quantdag.store import Slice, Warehouse
from quantdag.strategies import Strategy
from quantdag.strategies.keys import strategy_from_key

SIGNAL_TABLE_COLUMNS = ("entry", "exit", "short_entry", "short_exit", "target")


def strategy_where(s: Strategy, m: Market) -> dict[str, str]:
    """Column filters of a parameter set's rows on market ``m`` (signals and backtest tables)."""
    return {"strategy": s.name, "params_hash": s.params_hash, **m.where}


def read_signals(wh: Warehouse, s: Strategy, m: Market) -> pl.DataFrame:
    """The stored signals of strategy ``s`` on market ``m``, oldest first."""
    return wh.read("signals.signals", [Slice(where=strategy_where(s, m), time_column=None)], order_by=("ts",))


def build_signals(wh: Warehouse, key: str, markets: Sequence[Market], *, source: str = "default") -> StageReport:
    """Signals of parameter set ``key`` on every market's full stored history, into ``signals.signals``."""
    t0 = time.perf_counter()
    strategy = strategy_from_key(key)
    report = StageReport()
    writes: list[tuple[Market, pl.DataFrame]] = []
    for m in markets:
        candles = read_candles(wh, m)
        if candles.height == 0:
            report.add(m, candles=0, entries=0, exits=0)
            writes.append((m, pl.DataFrame()))
            continue
        sig = strategy.signals(candles)
        keep = ["ts", *(c for c in SIGNAL_TABLE_COLUMNS if c in sig.columns)]
        frame = sig.select(keep).with_columns(
            pl.lit(strategy.name).alias("strategy"),
            pl.lit(strategy.params_hash).alias("params_hash"),
            *(pl.lit(v).alias(k) for k, v in m.where.items()),
        )
        report.add(m, candles=candles.height, entries=int(frame["entry"].sum()), exits=int(frame["exit"].sum()))
        writes.append((m, frame))
    params_row = pl.DataFrame(
        {
            "param_set": [key],
            "strategy": [strategy.name],
            "params_hash": [strategy.params_hash],
            "params": [strategy.params_json],
            "source": [source],
        }
    )
    with wh.transaction() as con:
        Warehouse.replace(con, "signals.param_sets", params_row, [Slice(where={"param_set": key}, time_column=None)])
        for m, frame in writes:
            report.rows_written += Warehouse.replace(
                con,
                "signals.signals",
                frame,
                [Slice(where=strategy_where(strategy, m), time_column=None)],
                order_by=("strategy", "params_hash", *CANDLE_KEY) if frame.height else (),
            )
    report.seconds = time.perf_counter() - t0
    return report
