"""The stages' batch checks (sql/check_signals.sql, sql/check_backtest_runs.sql) on hand-made tables."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import polars as pl

from quantdag.backtest import BacktestSettings
from quantdag.markets import Market
from quantdag.stages.backtests import check_backtest_batch
from quantdag.stages.signals import signals_match_candles_batch
from quantdag.store import Slice, Warehouse
from quantdag.strategies import create_strategy

M = Market("sim", "BTC/USDT", "1h")
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOURS = [0, 1, 2, 3, 6, 7]  # a hole of two candles (04:00, 05:00)


def _frame(rows: list[dict], ts_cols=("ts",)) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(pl.col(c).cast(pl.Datetime("ms", "UTC")) for c in ts_cols)


def _warehouse(tmp_path) -> tuple[Warehouse, list]:
    wh = Warehouse(tmp_path / "q.duckdb")
    good, gappy, costless = (create_strategy("sma_cross", {"fast": f, "slow": 30}) for f in (5, 6, 7))
    candles = _frame([{**M.where, "ts": T0 + timedelta(hours=h), "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0,
                       "volume": 1.0, "filled": False} for h in HOURS])  # fmt: skip
    sig = lambda s, hours: [{"strategy": s.name, "params_hash": s.params_hash, **M.where, "ts": T0 + timedelta(hours=h),  # noqa: E731
                             "entry": False, "exit": False} for h in hours]  # fmt: skip
    signals = _frame(sig(good, HOURS) + sig(gappy, [0, 1, 2, 3, 6, 8]) + sig(costless, HOURS))  # gappy: 7 missing, 8 extra
    run = lambda s, lo, hi, fee: {  # noqa: E731
        "param_set": s.key, "strategy": s.name, "params_hash": s.params_hash, "params": "{}", **M.where,
        "data_start": T0 + timedelta(hours=lo), "data_end": T0 + timedelta(hours=hi), "n_candles": 4,
        "settings": json.dumps({"fee": fee, "slippage": 0.0005}), "final_equity": 1.0, "total_return": 0.0,
        "n_trades": 0, "metrics": "{}",
    }
    runs = _frame([run(good, 0, 3, 0.001), run(gappy, 0, 7, 0.001), run(costless, 0, 7, 0.0)], ("data_start", "data_end"))
    with wh.transaction() as con:
        Warehouse.replace(con, "market.candles", candles, [Slice(where=M.where, time_column=None)])
        Warehouse.replace(con, "signals.signals", signals, [Slice(where=M.where, time_column=None)])
        Warehouse.replace(con, "backtest.runs", runs, [Slice(where=M.where, time_column=None)])
    return wh, [good, gappy, costless]


def test_signal_check_counts_missing_and_orphan_signal_rows_per_parameter_set(tmp_path):
    wh, (good, gappy, costless) = _warehouse(tmp_path)
    got = signals_match_candles_batch(wh, [good, gappy], [M])
    assert got[(good.name, good.params_hash)].passed
    bad = got[(gappy.name, gappy.params_hash)]
    assert not bad.passed
    assert {k: bad.metadata[k] for k in ("candles", "signal_rows", "candles_without_one_signal", "signals_without_candle")} \
        == {"candles": 6, "signal_rows": 6, "candles_without_one_signal": 1, "signals_without_candle": 1}


def test_backtest_check_counts_holes_inside_each_runs_range_and_zero_cost_runs(tmp_path):
    wh, (good, gappy, costless) = _warehouse(tmp_path)
    got = check_backtest_batch(wh, [good, gappy, costless], [M], settings=BacktestSettings())
    assert got[(good.name, good.params_hash)]["no_unaccepted_holes"].metadata["holes"] == 0  # its range ends before the hole
    holes = got[(gappy.name, gappy.params_hash)]["no_unaccepted_holes"]
    assert not holes.passed and holes.metadata["holes"] == 1 and holes.metadata["hole_candles"] == 2
    assert got[(good.name, good.params_hash)]["costs_on"].passed
    assert not got[(costless.name, costless.params_hash)]["costs_on"].passed
    accepted = check_backtest_batch(wh, [gappy], [M], accept_holes=True)[(gappy.name, gappy.params_hash)]
    assert accepted["no_unaccepted_holes"].passed
