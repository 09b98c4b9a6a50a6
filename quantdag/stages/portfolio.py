"""Portfolio stage: several parameter sets' signals → one account's weights → its backtest.

Weights: a member's target on a market at candle ``t`` is its signal's position fraction (the
``target`` column, else the entry/exit state; negative only with ``allow_short``) times the
allocation's weight of that market (``quantdag.portfolio.allocate``, fitted on trailing closes;
equal weight until its first fit). Only changes are stored (``portfolio.weights``): each row is a
decision the engine trades at the next open. The backtest (``run_portfolio``) stores the account's
equity, its strategies' sub-ledger equity, fills, attribution, a summary row and its risk events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import polars as pl

from quantdag.errors import ConfigurationError, DataError
from quantdag.markets import Market
from quantdag.portfolio import PortfolioResult, RiskRules, allocate, run_portfolio
from quantdag.stages.common import read_candles
from quantdag.stages.signals import read_signals, require_no_lookahead, resolve_param_set
from quantdag.store import Slice, Warehouse
from quantdag.strategies import Strategy
from quantdag.strategies.base import position_state

TS = pl.Datetime("ms", "UTC")


@dataclass(frozen=True)
class PortfolioSpec:
    """What a portfolio is made of and how it trades (the configuration's ``portfolio`` + ``risk``)."""

    name: str
    members: tuple[str, ...]  # parameter-set keys or strategy names
    shares: Mapping[str, float] = field(default_factory=dict)  # by entry of members
    allocation: str = "equal_weight"
    lookback: int = 720
    every: int | str = "weekly"
    allocation_options: Mapping[str, float] = field(default_factory=dict)
    rebalance: str = "signal"
    drift_band: float = 0.05
    turnover_cap: float | None = None
    min_notional: float = 10.0
    allow_short: bool = False
    rules: RiskRules = field(default_factory=RiskRules)
    fee: float = 0.001
    slippage: float = 0.0005
    init_cash: float = 10_000.0

    @property
    def backtest_account(self) -> str:
        """The ``risk.events`` account of the backtest."""
        return f"backtest:{self.name}"

    @property
    def paper_account(self) -> str:
        """The paper broker (``paper.*``) and ``risk.*`` account of the portfolio's paper trading."""
        return f"portfolio:{self.name}"


def member_strategies(wh: Warehouse, spec: PortfolioSpec, configured: Mapping[str, Strategy] | None = None) -> dict[str, Strategy]:
    """Each member entry's parameter set, by entry. A member that failed its look-ahead check is
    refused (:class:`StrategyError`): a peeking strategy never reaches an account."""
    out = {}
    for entry in spec.members:
        s = resolve_param_set(wh, entry, configured)
        require_no_lookahead(wh, s.key)
        out[entry] = s
    if len({s.key for s in out.values()}) < len(out):
        raise ConfigurationError(f"portfolio {spec.name}: members {list(spec.members)} name a parameter set twice")
    return out


def candles_long(wh: Warehouse, markets: Sequence[Market]) -> pl.DataFrame:
    """The markets' stored candles in one long frame (ts, symbol, OHLCV)."""
    symbols = [m.symbol for m in markets]
    if len(set(symbols)) < len(symbols):
        raise ConfigurationError(f"a portfolio trades each symbol once; markets {[m.key for m in markets]} repeat one")
    frames = [read_candles(wh, m).select("ts", pl.lit(m.symbol).alias("symbol"), "open", "high", "low", "close", "volume")
              for m in markets]  # fmt: skip
    return pl.concat(frames).with_columns(pl.col("ts").cast(TS)) if frames else pl.DataFrame()


def _fractions(sig: pl.DataFrame, allow_short: bool) -> pl.Series:
    """A parameter set's position fraction at every signal candle."""
    if sig["target"].null_count() < sig.height:
        frac = sig["target"].fill_null(0.0)
    else:
        frac = sig.select(position_state(pl.col("entry"), pl.col("exit")).cast(pl.Float64).alias("f"))["f"]
        if allow_short and "short_entry" in sig.columns and sig["short_entry"].null_count() < sig.height:
            frac = frac - sig.select(position_state(pl.col("short_entry"), pl.col("short_exit")).cast(pl.Float64).alias("f"))["f"]
    return frac.clip(-1.0 if allow_short else 0.0, 1.0)


def allocation_weights(candles: pl.DataFrame, spec: PortfolioSpec) -> pl.DataFrame:
    """(ts, symbol, alloc) at every candle: the latest fit at or before it, equal weight before the first."""
    grid = candles.select("ts", "symbol").sort("ts", "symbol")
    n = candles["symbol"].n_unique()
    if spec.allocation == "equal_weight" or n == 0:
        return grid.with_columns(alloc=pl.lit(1.0 / max(n, 1)))
    fits = allocate(candles, spec.allocation, lookback=spec.lookback, every=spec.every, **dict(spec.allocation_options))
    fits = fits.rename({"weight": "alloc"}).with_columns(pl.col("ts").cast(TS)).sort("ts")
    out = grid.join_asof(fits, on="ts", by="symbol", strategy="backward")
    return out.with_columns(pl.col("alloc").fill_null(1.0 / n))


def build_weights(wh: Warehouse, spec: PortfolioSpec, markets: Sequence[Market],
                  configured: Mapping[str, Strategy] | None = None) -> pl.DataFrame:  # fmt: skip
    """Compute and store (``portfolio.weights``, the portfolio's rows replaced) each member's
    target weights; returns them (portfolio, strategy, ts, symbol, weight)."""
    members = member_strategies(wh, spec, configured)
    candles = candles_long(wh, markets)
    alloc = allocation_weights(candles, spec)
    parts = []
    for s in members.values():
        for m in markets:
            sig = read_signals(wh, s, m)
            if not sig.height:
                continue
            parts.append(pl.DataFrame({"ts": sig["ts"].cast(TS), "symbol": m.symbol, "frac": _fractions(sig, spec.allow_short)})
                         .with_columns(strategy=pl.lit(s.key)))  # fmt: skip
    schema = {"portfolio": pl.Utf8, "strategy": pl.Utf8, "ts": TS, "symbol": pl.Utf8, "weight": pl.Float64}
    if not parts:
        weights = pl.DataFrame(schema=schema)
    else:
        weights = (
            pl.concat(parts).join(alloc, on=["ts", "symbol"], how="inner")
            .with_columns(weight=pl.col("frac") * pl.col("alloc"))
            .sort("strategy", "symbol", "ts")
            .filter(pl.col("weight") != pl.col("weight").shift(1).over("strategy", "symbol").fill_null(float("nan")))
            .select(portfolio=pl.lit(spec.name), strategy="strategy", ts="ts", symbol="symbol", weight="weight")
        )  # fmt: skip
    wh.replace_slices("portfolio.weights", weights, [Slice(where={"portfolio": spec.name}, time_column=None)],
                      order_by=("strategy", "ts", "symbol"))  # fmt: skip
    return weights


def read_weights(wh: Warehouse, name: str) -> pl.DataFrame:
    return wh.read("portfolio.weights", [Slice(where={"portfolio": name}, time_column=None)], order_by=("strategy", "ts", "symbol"))


def member_shares(spec: PortfolioSpec, members: Mapping[str, Strategy]) -> dict[str, float]:
    """Capital share by parameter-set key: the configured ones (by member entry), else equal."""
    if not spec.shares:
        return {s.key: 1.0 / len(members) for s in members.values()}
    unknown = sorted(set(spec.shares) - set(members))
    if unknown:
        raise ConfigurationError(f"portfolio {spec.name}: shares for {unknown}, which are not members {sorted(members)}")
    return {s.key: float(spec.shares.get(entry, 0.0)) for entry, s in members.items()}


@dataclass(frozen=True)
class PortfolioBacktest:
    result: PortfolioResult
    members: dict[str, str]  # member entry -> parameter-set key
    mlflow_run_id: str | None


def backtest_portfolio(
    wh: Warehouse,
    spec: PortfolioSpec,
    markets: Sequence[Market],
    *,
    configured: Mapping[str, Strategy] | None = None,
    start_run: Callable[[str, dict[str, str]], AbstractContextManager[Any]] | None = None,
) -> PortfolioBacktest:
    """Run the portfolio over its stored weights and candles; store every ``portfolio.*`` table and
    the backtest's ``risk.events``; log one MLflow run when ``start_run(name, tags)`` is given."""
    members = member_strategies(wh, spec, configured)
    weights = read_weights(wh, spec.name)
    if not weights.height:
        raise DataError(f"portfolio {spec.name}: no weights stored (materialize portfolio_weights first)")
    candles = candles_long(wh, markets)
    result = run_portfolio(
        candles, weights.select("ts", "symbol", "strategy", "weight"), fee=spec.fee, slippage=spec.slippage,
        init_cash=spec.init_cash, min_notional=spec.min_notional, timeframe=_timeframe(markets),
        shares=member_shares(spec, members), rebalance=spec.rebalance, drift_band=spec.drift_band,
        turnover_cap=spec.turnover_cap, risk=spec.rules, name=spec.name,
    )  # fmt: skip
    keys = {entry: s.key for entry, s in members.items()}
    run_id = None
    if start_run is not None:
        from quantdag.tracking.mlflow_runs import log_portfolio

        with start_run(f"portfolio {spec.name} ({', '.join(s.name for s in members.values())})",
                       {"portfolio": spec.name}) as run:  # fmt: skip
            log_portfolio(result, members=keys)
            run_id = run.info.run_id
    store_result(wh, spec, result, run_id)
    return PortfolioBacktest(result, keys, run_id)


def _timeframe(markets: Sequence[Market]) -> str | None:
    tfs = {m.timeframe for m in markets}
    return tfs.pop() if len(tfs) == 1 else None


def store_result(wh: Warehouse, spec: PortfolioSpec, result: PortfolioResult, mlflow_run_id: str | None) -> None:
    """Every table of one portfolio backtest, replaced together in one transaction."""
    name = spec.name
    one = [Slice(where={"portfolio": name}, time_column=None)]
    tag = {"portfolio": pl.lit(name)}
    strategy_equity = result.strategy_equity.unpivot(index="ts", variable_name="strategy", value_name="equity")
    eq = result.equity
    m = result.metrics
    run = pl.DataFrame([{
        "portfolio": name, "run_at": datetime.now(timezone.utc),
        "first_ts": eq["ts"][0] if eq.height else None, "last_ts": eq["ts"][-1] if eq.height else None,
        "final_equity": result.final_equity, "total_return": m["total_return"], "sharpe": m["sharpe"],
        "max_drawdown": m["max_drawdown"], "turnover": m["turnover"], "n_trades": m["n_trades"],
        "settings": json.dumps(result.settings, sort_keys=True, default=str),
        "metrics": json.dumps(m, sort_keys=True, default=str), "mlflow_run_id": mlflow_run_id,
    }]).with_columns(pl.col("run_at", "first_ts", "last_ts").cast(TS))  # fmt: skip
    events = result.risk_events.with_columns(account=pl.lit(spec.backtest_account), equity=pl.lit(None, dtype=pl.Float64))
    with wh.transaction() as con:
        Warehouse.replace(con, "portfolio.equity", eq.with_columns(**tag), one)
        Warehouse.replace(con, "portfolio.strategy_equity", strategy_equity.with_columns(**tag), one)
        Warehouse.replace(con, "portfolio.trades", result.trades.with_columns(**tag), one)
        Warehouse.replace(con, "portfolio.attribution", result.attribution.with_columns(**tag), one)
        Warehouse.replace(con, "portfolio.runs", run, one)
        Warehouse.replace(con, "risk.events", events, [Slice(where={"account": spec.backtest_account}, time_column=None)])


def attribution_summary(wh: Warehouse, name: str) -> pl.DataFrame:
    """Net P&L by strategy (and the total) of the stored backtest of portfolio ``name``."""
    return wh.query(
        "SELECT strategy, sum(trading_pnl) AS trading_pnl, sum(fees) AS fees, sum(slippage) AS slippage, "
        "sum(net_pnl) AS net_pnl FROM portfolio.attribution WHERE portfolio = ? GROUP BY strategy ORDER BY strategy",
        [name],
    )


__all__ = ["PortfolioBacktest", "PortfolioSpec", "attribution_summary", "backtest_portfolio", "build_weights",
           "candles_long", "member_strategies", "read_weights", "store_result"]  # fmt: skip
