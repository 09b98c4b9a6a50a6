"""Backtests: a parameter set's stored signals through the engine on every research market, stored.

The strategy's ``target`` column (a position fraction) drives the engine when the strategy has
one; otherwise its entry/exit signals do. Results replace the parameter set's slice of
``backtest.runs``, ``backtest.trades`` and ``backtest.equity`` in one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from typing import Any

import polars as pl

from quantdag.backtest import BacktestResult, BacktestSettings, run
from quantdag.data import describe_holes, find_holes
from quantdag.errors import DataError
from quantdag.markets import Market
from quantdag.stages.common import CheckVerdict, StageReport, batch_check_counts, finite_or_none, read_candles
from quantdag.stages.signals import (
    read_signals,
    require_no_lookahead,
    resolve_param_set,
    signals_match_candles_batch,
    strategy_where,
)
from quantdag.store import Slice, Warehouse, load_sql
from quantdag.strategies import Strategy
from quantdag.strategies.keys import param_set_label
from quantdag.timeframes import timeframe_ms
from quantdag.tracking import log_backtest

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
    strategy: Strategy

    @property
    def data_range(self) -> tuple[datetime, datetime]:
        ts = self.result.equity["ts"]
        return ts.min(), ts.max()


def run_backtests(
    wh: Warehouse,
    key: str,
    markets: Sequence[Market],
    settings: BacktestSettings | None = None,
    *,
    accept_holes: bool = False,
    strategy: Strategy | None = None,
    candles: Mapping[Market, pl.DataFrame] | None = None,
) -> list[BacktestOutcome]:
    """Backtest parameter set ``key`` on each market from its stored candles and signals.

    The strategy's ``target`` column (a position fraction) drives the engine when the strategy
    has one; otherwise its entry/exit signals do. Signals act at the next candle's open, with
    the engine's default costs unless ``settings`` says otherwise.

    A hole in a market's candles (missing candles between stored ones, e.g. days never
    materialised; :mod:`quantdag.data.holes`) is refused unless ``accept_holes`` is true, in
    which case the candles either side of it are backtested as consecutive. ``candles`` (market ->
    its stored candles) spares a batch re-reading them.

    Raises
    ------
    DataError
        If a market's candles have a hole and ``accept_holes`` is false (every market is checked
        before any backtest; the message names each hole's market, first and last missing candle
        and count), or a market's signals do not line up with its candles (signals are stale:
        rerun them).
    StrategyError
        If the parameter set failed its look-ahead check.
    """
    strategy = strategy or resolve_param_set(wh, key)
    require_no_lookahead(wh, key)
    settings = settings or BacktestSettings()
    stored = [(m, candles[m] if candles is not None and m in candles else read_candles(wh, m)) for m in markets]
    if not accept_holes:
        found = [h for h in (find_holes(c) for _, c in stored) if h.height]
        if found:
            holes = pl.concat(found)
            raise DataError(
                f"{key}: the candles have {holes.height} hole(s), {int(holes['missing'].sum())} missing candles "
                f"between stored ones, not accepted: {describe_holes(holes)}. Backfill the missing days "
                "(daily_data_job), or accept holes (universe.accept_holes: true / accept_holes=True)"
            )
    out: list[BacktestOutcome] = []
    for m, bars in stored:
        sig = read_signals(wh, strategy, m)
        if bars.height == 0:
            continue
        if sig.height != bars.height or not sig["ts"].equals(bars["ts"]):
            raise DataError(
                f"{key} on {m}: {sig.height} signals for {bars.height} candles; materialize signals first"
            )
        out.append(BacktestOutcome(m, backtest_signals(bars, sig, settings.replace(timeframe=m.timeframe)), bars.height, strategy))
    return out


def backtest_signals(bars: pl.DataFrame, sig: pl.DataFrame, settings: BacktestSettings) -> BacktestResult:
    """The engine on a strategy's signals: its ``target`` column (a position fraction) when it has
    one, else its long and short entries/exits (``direction="both"`` for shorts), else entry/exit.

    One home for this choice: the pipeline's backtests and the ``quantdag`` command both use it.
    A column a strategy does not produce may be absent or all null.
    """
    if "target" in sig.columns and sig["target"].null_count() < sig.height:
        return run(bars, target=sig["target"].fill_null(0.0), settings=settings)
    if "short_entry" in sig.columns and sig["short_entry"].null_count() < sig.height:
        return run(
            bars, sig["entry"], sig["exit"], short_entries=sig["short_entry"].fill_null(False),
            short_exits=sig["short_exit"].fill_null(False), settings=settings.replace(direction="both"),
        )
    return run(bars, sig["entry"], sig["exit"], settings=settings)


@dataclass(frozen=True)
class StoredBacktests:
    """What one parameter set writes: its outcomes with their tracking run ids."""

    key: str
    strategy: Strategy
    outcomes: Sequence[BacktestOutcome]
    mlflow_run_ids: Mapping[str, str]


def store_backtests(
    wh: Warehouse,
    key: str,
    outcomes: Sequence[BacktestOutcome],
    markets: Sequence[Market],
    *,
    mlflow_run_ids: Mapping[str, str] | None = None,
    dagster_run_id: str | None = None,
    strategy: Strategy | None = None,
) -> StageReport:
    """Replace ``backtest.runs``/``trades``/``equity`` of ``key`` on ``markets`` in one transaction."""
    strategy = strategy or resolve_param_set(wh, key)
    return store_backtest_batch(
        wh, [StoredBacktests(key, strategy, outcomes, mlflow_run_ids or {})], markets, dagster_run_id=dagster_run_id
    )


def store_backtest_batch(
    wh: Warehouse, batch: Sequence[StoredBacktests], markets: Sequence[Market], *, dagster_run_id: str | None = None
) -> StageReport:
    """Replace the ``backtest.*`` slices of every parameter set of ``batch`` on ``markets`` in one
    transaction (one DELETE and one INSERT per table, whatever the batch's size)."""
    t0 = time.perf_counter()
    report = StageReport()
    runs, trades, equity = [], [], []
    for item in batch:
        strategy, ids = item.strategy, item.mlflow_run_ids
        for o in item.outcomes:
            m, r = o.market, o.result
            metrics = {k: finite_or_none(v) for k, v in r.metrics.items()}
            start, end = o.data_range
            runs.append(
                {
                    "param_set": item.key, "strategy": strategy.name, "params_hash": strategy.params_hash,
                    "params": strategy.params_json, **m.where, "data_start": start, "data_end": end,
                    "n_candles": o.n_candles, "settings": json.dumps(r.settings.as_dict(), sort_keys=True),
                    **{c: metrics.get(c) for c in RUN_METRIC_COLUMNS},
                    "metrics": json.dumps(metrics, sort_keys=True),
                    "mlflow_run_id": ids.get(m.key), "dagster_run_id": dagster_run_id,
                }
            )  # fmt: skip
            tag = {"strategy": strategy.name, "params_hash": strategy.params_hash, **m.where}
            trades.append(
                r.trades.drop("entry_bar", "exit_bar").rename({"return": "trade_return"}).with_columns(
                    *(pl.lit(v).alias(k) for k, v in tag.items())
                )
            )
            equity.append(r.equity.with_columns(*(pl.lit(v).alias(k) for k, v in tag.items())))
            report.add(m, trades=r.trades.height, equity_rows=r.equity.height)
    slices = [Slice(where=strategy_where(item.strategy, m), time_column=None) for item in batch for m in markets]
    if not slices:
        return report
    key_cols = ("strategy", "params_hash", "exchange", "symbol", "timeframe")
    with wh.transaction() as con:
        report.rows_written += Warehouse.replace(
            con, "backtest.runs", pl.DataFrame(runs, infer_schema_length=None) if runs else pl.DataFrame(), slices
        )
        for table, frames, order in (
            ("backtest.trades", trades, (*key_cols, "trade_id")),
            ("backtest.equity", equity, (*key_cols, "ts")),
        ):
            frame = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
            report.rows_written += Warehouse.replace(con, table, frame, slices, order_by=order if frame.height else ())
    report.seconds = time.perf_counter() - t0
    return report


#: Opens a tracking run (name, tags) whose ``info.run_id`` identifies it: the pipeline's MLflow resource.
StartRun = Callable[[str, dict[str, str]], AbstractContextManager[Any]]


@dataclass
class BacktestStage:
    """What :func:`backtest_param_set` did: the strategy, each market's outcome and run, the checks."""

    strategy: Strategy
    outcomes: list[BacktestOutcome]
    report: StageReport
    run_ids: dict[str, str] = field(default_factory=dict)
    checks: dict[str, CheckVerdict] = field(default_factory=dict)


def backtest_param_set(
    wh: Warehouse,
    key: str,
    markets: Sequence[Market],
    *,
    settings: BacktestSettings | None = None,
    accept_holes: bool = False,
    start_run: StartRun | None = None,
    dagster_run_id: str | None = None,
    candles: Mapping[Market, pl.DataFrame] | None = None,
) -> BacktestStage:
    """The whole stage: backtest ``key`` on ``markets``, log each run, store everything, check it.

    The parameter set is resolved once and handed to each step (each public step resolves it
    itself when called alone).

    ``start_run(name, tags)`` opens one tracking run per market (the asset passes its MLflow
    resource); each is named ``<strategy params> · <SYMBOL:TF>`` and holds the run's parameters,
    metrics, equity curve and report, tagged with the parameter set (``param_set``). Without it
    nothing is logged.
    """
    return backtest_param_sets(
        wh, [key], markets, settings=settings, accept_holes=accept_holes, start_run=start_run,
        dagster_run_id=dagster_run_id, candles=candles,
    ).stages[key]


def _counts(outcomes: Sequence[BacktestOutcome]) -> StageReport:
    """Per-market trade and equity counts of one parameter set (its share of a batch's report)."""
    report = StageReport()
    for o in outcomes:
        report.add(o.market, trades=o.result.trades.height, equity_rows=o.result.equity.height)
    return report


def _log_runs(key: str, strategy: Strategy, outcomes: Sequence[BacktestOutcome], start_run: StartRun | None) -> dict[str, str]:
    """One tracking run per market's backtest; their ids by market key."""
    run_ids: dict[str, str] = {}
    if start_run is None:
        return run_ids
    for o in outcomes:
        tags = {"strategy": strategy.name, "params_hash": strategy.params_hash, "market": o.market.key, "param_set": key}
        name = f"{param_set_label(strategy)} · {o.market.key}"
        with start_run(name, tags) as run:
            log_backtest(o.result, strategy_params=strategy.params, market=o.market.where, title=name)
            run_ids[o.market.key] = run.info.run_id
    return run_ids


def backtest_param_sets(
    wh: Warehouse,
    keys: Sequence[str],
    markets: Sequence[Market],
    *,
    settings: BacktestSettings | None = None,
    accept_holes: bool = False,
    start_run: StartRun | None = None,
    dagster_run_id: str | None = None,
    candles: Mapping[Market, pl.DataFrame] | None = None,
) -> BacktestBatch:
    """:func:`backtest_param_set` of every key in ``keys`` (a Dagster run over many parameter-set
    partitions): one warehouse connection, one read of each market's candles, every key's runs
    logged, then all of them stored in one transaction and checked.

    All or nothing in the warehouse: a key that fails (a hole, stale signals) stops the batch
    before anything is written, and a re-run replaces every slice. Tracking runs already logged
    for earlier keys stay (finished, tagged with their Dagster run).
    """
    t0 = time.perf_counter()
    settings = settings or BacktestSettings()
    done: list[StoredBacktests] = []
    with wh.session():
        bars = candles if candles is not None else {m: read_candles(wh, m) for m in markets}
        for key in keys:
            strategy = resolve_param_set(wh, key)
            outcomes = run_backtests(wh, key, markets, settings, accept_holes=accept_holes, strategy=strategy, candles=bars)
            done.append(StoredBacktests(key, strategy, outcomes, _log_runs(key, strategy, outcomes, start_run)))
        report = store_backtest_batch(wh, done, markets, dagster_run_id=dagster_run_id)
        checks = check_backtest_batch(wh, [item.strategy for item in done], markets, settings=settings, accept_holes=accept_holes)
        stages = {
            item.key: BacktestStage(
                item.strategy, list(item.outcomes), report if len(done) == 1 else _counts(item.outcomes),
                dict(item.mlflow_run_ids), checks[(item.strategy.name, item.strategy.params_hash)],
            )
            for item in done
        }  # fmt: skip
    report.seconds = time.perf_counter() - t0
    return BacktestBatch(stages, report, combine_checks({k: st.checks for k, st in stages.items()}))


@dataclass
class BacktestBatch:
    """What :func:`backtest_param_sets` did: each key's stage, the total report, the combined checks."""

    stages: dict[str, BacktestStage]
    report: StageReport
    checks: dict[str, CheckVerdict]


def combine_checks(per_key: Mapping[str, Mapping[str, CheckVerdict]]) -> dict[str, CheckVerdict]:
    """One verdict per check over several keys: passes if every key's passes; integer counts are
    summed, flags kept when all keys agree, and failing keys listed (``failed``)."""
    out: dict[str, CheckVerdict] = {}
    names = dict.fromkeys(n for checks in per_key.values() for n in checks)
    for name in names:
        verdicts = {k: checks[name] for k, checks in per_key.items() if name in checks}
        meta: dict[str, Any] = {}
        for v in verdicts.values():
            for field_name, value in v.metadata.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    meta[field_name] = meta.get(field_name, 0) + value
                elif field_name not in meta:
                    meta[field_name] = value
        failed = [k for k, v in verdicts.items() if not v.passed]
        meta["param_sets"] = len(verdicts)
        if failed:
            meta["failed"] = failed
        out[name] = CheckVerdict(not failed, meta)
    return out


#: Fewer trades than this and a run is listed, not ranked (the configuration's ``leaderboard.min_trades``).
LEADERBOARD_MIN_TRADES = 5


def leaderboard(wh: Warehouse, *, min_trades: int = LEADERBOARD_MIN_TRADES) -> pl.DataFrame:
    """Every stored backtest: ranked by Sharpe among runs with ``min_trades`` or more, the rest after.

    ``ranked`` says which; ``n_trades`` is the sample size (``sql/select_leaderboard.sql``).
    """
    return wh.query(load_sql("select_leaderboard"), [min_trades])


# ---- checks (computed from the stored tables by SQL) ----

#: Checks of the ``backtests`` asset: name -> description.
BACKTEST_CHECKS = {
    "no_unaccepted_holes": "no backtested series has a hole (missing candles between stored ones) unless holes are accepted",
    "signals_match_candles": "the signals backtested line up one to one with the stored candles of every research market",
    "costs_on": "every stored run charges a fee and slippage, unless the configuration turns costs off",
}


def costs_off(settings: BacktestSettings) -> bool:
    """Whether ``settings`` charge no fee or no slippage (only a configuration can ask for that)."""
    slips = settings.slippage > 0 or (settings.slippage_model == "volatility" and settings.slippage_vol_factor > 0)
    return not (settings.fee > 0 and slips)


def check_backtests(
    wh: Warehouse,
    key: str,
    markets: Sequence[Market],
    *,
    settings: BacktestSettings | None = None,
    accept_holes: bool = False,
    strategy: Strategy | None = None,
) -> dict[str, CheckVerdict]:
    """:data:`BACKTEST_CHECKS` of parameter set ``key``'s stored runs on ``markets``.

    ``settings`` are the configured backtest settings (costs may be off only if they say so);
    ``accept_holes`` whether holes were accepted.
    """
    s = strategy or resolve_param_set(wh, key)
    return check_backtest_batch(wh, [s], markets, settings=settings, accept_holes=accept_holes)[(s.name, s.params_hash)]


def check_backtest_batch(
    wh: Warehouse,
    strategies: Sequence[Strategy],
    markets: Sequence[Market],
    *,
    settings: BacktestSettings | None = None,
    accept_holes: bool = False,
) -> dict[tuple[str, str], dict[str, CheckVerdict]]:
    """:data:`BACKTEST_CHECKS` of many parameter sets, by (strategy, params_hash): one query per
    market and table for the whole batch (``check_backtest_runs.sql``, ``check_signals.sql``)."""
    settings = settings or BacktestSettings()
    keys = [(s.name, s.params_hash) for s in strategies]
    if not keys:
        return {}
    totals = batch_check_counts(
        wh, load_sql("check_backtest_runs"), keys, markets, ("runs", "holes", "hole_candles", "zero_cost_runs"),
        extra=lambda m: [timeframe_ms(m.timeframe)],
    )
    match = signals_match_candles_batch(wh, strategies, markets)
    off = costs_off(settings)
    return {
        k: {
            "no_unaccepted_holes": CheckVerdict(
                t["holes"] == 0 or accept_holes,
                {"holes": t["holes"], "hole_candles": t["hole_candles"], "accept_holes": accept_holes},
            ),
            "signals_match_candles": match[k],
            "costs_on": CheckVerdict(
                t["zero_cost_runs"] == 0 or off,
                {"runs": t["runs"], "zero_cost_runs": t["zero_cost_runs"], "fee": settings.fee,
                 "slippage": settings.slippage, "costs_off_by_configuration": off},
            ),
        }  # fmt: skip
        for k, t in totals.items()
    }
