"""Strategy research stages over the warehouse: parameter sets → signals → backtests.

A parameter set is named by its partition key, ``"<strategy> <canonical params JSON>"``: the key
alone rebuilds the strategy, so a Dagster dynamic partition is all it takes to add one, and
the stored ``params_hash`` ties every signal, backtest and MLflow run back to it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from quantdag.backtest import BacktestResult, BacktestSettings, run
from quantdag.errors import ConfigurationError, DataError
from quantdag.marketdata import CANDLE_KEY, Market, StageReport
from quantdag.store import Slice, Warehouse, load_sql
from quantdag.strategies import Strategy, create_strategy, list_strategies

log = logging.getLogger(__name__)

SIGNAL_TABLE_COLUMNS = ("entry", "exit", "short_entry", "short_exit", "target")


def param_set_key(strategy: Strategy) -> str:
    """The partition key of ``strategy``'s parameter set."""
    return f"{strategy.name} {strategy.params_json}"


def strategy_from_key(key: str) -> Strategy:
    """Rebuild the strategy named by a parameter-set key (parameters validated).

    Raises
    ------
    ConfigurationError
        If the key is malformed, names no registered strategy, or holds invalid parameters.
    """
    name, _, params = key.partition(" ")
    try:
        parsed = json.loads(params) if params else {}
    except ValueError as exc:
        raise ConfigurationError(f"parameter set {key!r}: params are not JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise ConfigurationError(f"parameter set {key!r}: params must be a JSON object")
    return create_strategy(name, parsed)


def default_param_sets() -> list[str]:
    """One parameter set per registered strategy, at its defaults."""
    return [param_set_key(create_strategy(name)) for name in list_strategies()]


def _strategy_where(s: Strategy, m: Market) -> dict[str, str]:
    return {"strategy": s.name, "params_hash": s.params_hash, **m.where}


def read_candles(wh: Warehouse, m: Market) -> pl.DataFrame:
    """Every stored clean candle of market ``m``, oldest first."""
    return wh.read("market.candles", [Slice(where=m.where, time_column=None)], order_by=CANDLE_KEY)


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
                [Slice(where=_strategy_where(strategy, m), time_column=None)],
                order_by=("strategy", "params_hash", *CANDLE_KEY) if frame.height else (),
            )
    report.seconds = time.perf_counter() - t0
    return report


# ---- backtests ---------------------------------------------------------------------------------

RUN_METRIC_COLUMNS = (
    "final_equity", "total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown",
    "n_trades", "win_rate", "profit_factor", "fees_paid",
)


@dataclass(frozen=True)
class BacktestOutcome:
    """One backtest of a parameter set on one market, before it is stored."""

    market: Market
    result: BacktestResult
    n_candles: int

    @property
    def data_range(self) -> tuple[datetime, datetime]:
        ts = self.result.equity["ts"]
        return ts.min(), ts.max()


def finite_or_none(v: Any) -> Any:
    """``v`` with NaN/inf floats as None: JSON and SQL have no NaN."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run_backtests(
    wh: Warehouse, key: str, markets: Sequence[Market], settings: BacktestSettings | None = None
) -> list[BacktestOutcome]:
    """Backtest parameter set ``key`` on each market from its stored candles and signals.

    The strategy's ``target`` column (a position fraction) drives the engine when the strategy
    has one; otherwise its entry/exit signals do. Signals act at the next candle's open, with
    the engine's default costs unless ``settings`` says otherwise.

    Raises
    ------
    DataError
        If a market's signals do not line up with its candles (signals are stale: rerun them).
    """
    strategy = strategy_from_key(key)
    settings = settings or BacktestSettings()
    out: list[BacktestOutcome] = []
    for m in markets:
        candles = read_candles(wh, m)
        sig = wh.read(
            "signals.signals", [Slice(where=_strategy_where(strategy, m), time_column=None)], order_by=("ts",)
        )
        if candles.height == 0:
            continue
        if sig.height != candles.height or not sig["ts"].equals(candles["ts"]):
            raise DataError(
                f"{key} on {m}: {sig.height} signals for {candles.height} candles; materialize signals first"
            )
        s = settings.replace(timeframe=m.timeframe)
        if sig["target"].null_count() < sig.height:
            result = run(candles, target=sig["target"].fill_null(0.0), settings=s)
        elif sig["short_entry"].null_count() < sig.height:
            result = run(
                candles, sig["entry"], sig["exit"], short_entries=sig["short_entry"].fill_null(False),
                short_exits=sig["short_exit"].fill_null(False), settings=s.replace(direction="both"),
            )
        else:
            result = run(candles, sig["entry"], sig["exit"], settings=s)
        out.append(BacktestOutcome(m, result, candles.height))
    return out


def store_backtests(
    wh: Warehouse,
    key: str,
    outcomes: Sequence[BacktestOutcome],
    markets: Sequence[Market],
    *,
    mlflow_run_ids: Mapping[str, str] | None = None,
    dagster_run_id: str | None = None,
) -> StageReport:
    """Replace ``backtest.runs``/``trades``/``equity`` of ``key`` on ``markets`` in one transaction."""
    t0 = time.perf_counter()
    strategy = strategy_from_key(key)
    report = StageReport()
    ids = mlflow_run_ids or {}
    runs, trades, equity = [], [], []
    for o in outcomes:
        m, r = o.market, o.result
        metrics = {k: finite_or_none(v) for k, v in r.metrics.items()}
        start, end = o.data_range
        runs.append(
            {
                "param_set": key, "strategy": strategy.name, "params_hash": strategy.params_hash,
                "params": strategy.params_json, **m.where, "data_start": start, "data_end": end,
                "n_candles": o.n_candles, "settings": json.dumps(r.settings.as_dict(), sort_keys=True),
                **{c: metrics.get(c) for c in RUN_METRIC_COLUMNS},
                "metrics": json.dumps(metrics, sort_keys=True),
                "mlflow_run_id": ids.get(str(m)), "dagster_run_id": dagster_run_id,
            }
        )
        tag = {"strategy": strategy.name, "params_hash": strategy.params_hash, **m.where}
        trades.append(
            r.trades.drop("entry_bar", "exit_bar").rename({"return": "trade_return"}).with_columns(
                *(pl.lit(v).alias(k) for k, v in tag.items())
            )
        )
        equity.append(r.equity.with_columns(*(pl.lit(v).alias(k) for k, v in tag.items())))
        report.add(m, trades=r.trades.height, equity_rows=r.equity.height)
    slices = [Slice(where=_strategy_where(strategy, m), time_column=None) for m in markets]
    key_cols = ("strategy", "params_hash", "exchange", "symbol", "timeframe")
    with wh.transaction() as con:
        report.rows_written += Warehouse.replace(
            con, "backtest.runs", pl.DataFrame(runs, infer_schema_length=None) if runs else pl.DataFrame(), slices
        )
        for table, frames, order in (
            ("backtest.trades", trades, (*key_cols, "trade_id")),
            ("backtest.equity", equity, (*key_cols, "ts")),
        ):
            frame = pl.concat(frames) if frames else pl.DataFrame()
            report.rows_written += Warehouse.replace(con, table, frame, slices, order_by=order if frame.height else ())
    report.seconds = time.perf_counter() - t0
    return report


def leaderboard(wh: Warehouse) -> pl.DataFrame:
    """Every stored backtest, best Sharpe first (``sql/select_leaderboard.sql``)."""
    return wh.query(load_sql("select_leaderboard"))
