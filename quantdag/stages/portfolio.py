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
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import polars as pl

from quantdag.errors import ConfigurationError, DataError
from quantdag.markets import Market
from quantdag.portfolio import PortfolioResult, RiskRules, allocate, run_portfolio
from quantdag.stages.accounts import Execution, last_decision, rebalance_account
from quantdag.stages.common import read_candles
from quantdag.stages.signals import position_fractions, read_signals, require_no_lookahead, resolve_param_set
from quantdag.store import Slice, Warehouse
from quantdag.strategies import Strategy
from quantdag.tracking import WEBHOOK_ENV

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
    drift_tolerance: float = 0.02

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
            parts.append(pl.DataFrame({"ts": sig["ts"].cast(TS), "symbol": m.symbol, "frac": position_fractions(sig, allow_short=spec.allow_short)})
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



def strategy_shares(wh: Warehouse, spec: PortfolioSpec, members: Mapping[str, Strategy]) -> dict[str, float]:
    """Each member's share of the account now: its sub-ledger's equity over the total at the
    backtest's last candle (what the backtest sizes by), else the configured shares."""
    rows = wh.query(
        "SELECT strategy, equity FROM portfolio.strategy_equity WHERE portfolio = ? AND "
        "ts = (SELECT max(ts) FROM portfolio.strategy_equity WHERE portfolio = ?)", [spec.name, spec.name],
    )  # fmt: skip
    keys = {s.key for s in members.values()}
    got = {r["strategy"]: float(r["equity"]) for r in rows.iter_rows(named=True) if r["strategy"] in keys}
    total = sum(got.values())
    if set(got) == keys and total > 0 and all(v >= 0 for v in got.values()):
        return {k: v / total for k, v in got.items()}
    return member_shares(spec, members)


def paper_targets(wh: Warehouse, spec: PortfolioSpec, markets: Sequence[Market],
                  configured: Mapping[str, Strategy] | None = None) -> tuple[dict[str, float], int]:  # fmt: skip
    """The account's target weights now (each member's latest weight x its share) and the
    decision time: the last stored candle of the markets (closed, so already decided on)."""
    members = member_strategies(wh, spec, configured)
    shares = strategy_shares(wh, spec, members)
    latest = read_weights(wh, spec.name).sort("ts").group_by("strategy", "symbol").last()
    combined = {m.symbol: 0.0 for m in markets}
    for r in latest.iter_rows(named=True):
        if r["symbol"] in combined and r["strategy"] in shares:
            combined[r["symbol"]] += shares[r["strategy"]] * r["weight"]
    last = wh.query(
        "SELECT max(ts) AS ts FROM market.candles WHERE " + " OR ".join(
            "(exchange = ? AND symbol = ? AND timeframe = ?)" for _ in markets),
        [v for m in markets for v in (m.exchange, m.symbol, m.timeframe)],
    )["ts"][0]  # fmt: skip
    decision = int(last.timestamp() * 1000) if last is not None else 0
    return combined, decision


def make_broker(kind: str, spec: PortfolioSpec, client: Any, *, capital: float, quote: str, fee: float,
                slippage: float) -> Any:  # fmt: skip
    """The portfolio's broker: ``paper`` (simulated fills at ``client``'s live prices, the backtest's
    costs; balances rebuilt from the fill ledger) or ``ccxt`` (the exchange's own order API through
    ``client``: its sandbox/testnet, or the simulator's signed endpoints offline)."""
    from quantdag.backtest import BacktestSettings
    from quantdag.execution import CcxtBroker, PaperBroker, ticker_source

    if kind == "paper":
        return PaperBroker(ticker_source(client), balances={quote: capital}, name=spec.paper_account,
                           settings=BacktestSettings(fee=fee, slippage=slippage))  # fmt: skip
    if kind == "ccxt":
        return CcxtBroker(client, name=spec.paper_account)
    raise ConfigurationError(f"portfolio.broker must be 'paper' or 'ccxt', got {kind!r}")


def decided_since(wh: Warehouse, spec: PortfolioSpec, since_ms: int | None, until_ms: int) -> set[str] | None:
    """Symbols with a weight row decided after ``since_ms`` up to ``until_ms`` (None: no cycle yet, all)."""
    if since_ms is None:
        return None
    rows = wh.query(
        "SELECT DISTINCT symbol FROM portfolio.weights WHERE portfolio = ? AND ts > ? AND ts <= ?",
        [spec.name, datetime.fromtimestamp(since_ms / 1000, tz=timezone.utc), datetime.fromtimestamp(until_ms / 1000, tz=timezone.utc)],
    )  # fmt: skip
    return set(rows["symbol"].to_list())


def spec_of(config: Any) -> PortfolioSpec:
    """The configuration's portfolio (``portfolio`` + ``risk`` + the backtest's costs + paper capital of a
    :class:`~quantdag.config.ProjectConfig`): one spec for the daily assets and the streamer's intraday loop."""
    p, bt = config.portfolio, config.backtest_settings()
    return PortfolioSpec(
        name=p.name, members=tuple(p.strategies), shares=dict(p.shares), allocation=p.allocation.method,
        lookback=p.allocation.lookback, every=p.allocation.every,
        allocation_options=({"vol_target": p.allocation.vol_target} if p.allocation.method == "vol_target" else
                            {"turnover_penalty": p.allocation.turnover_penalty} if p.allocation.method == "max_sharpe" else {}),
        rebalance=p.rebalance, drift_band=p.drift_band, turnover_cap=p.turnover_cap, min_notional=p.min_notional,
        allow_short=p.allow_short, rules=config.risk.rules(), fee=bt.fee, slippage=bt.slippage,
        init_cash=config.paper.capital, drift_tolerance=p.drift_tolerance,
    )  # fmt: skip


def paper_portfolio_step(
    wh: Warehouse,
    spec: PortfolioSpec,
    markets: Sequence[Market],
    broker: Any,
    *,
    quote: str = "USDT",
    execution: Execution = Execution(),
    configured: Mapping[str, Strategy] | None = None,
    webhook_env: str = WEBHOOK_ENV,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, object]:
    """One paper cycle of the portfolio's account (``broker``: a PaperBroker named
    :attr:`PortfolioSpec.paper_account`, or a CcxtBroker): the backtest's targets, sizing and risk rules."""
    weights, decision = paper_targets(wh, spec, markets, configured)
    return rebalance_account(
        wh, broker, account=spec.paper_account, strategy=f"portfolio-{spec.name}", markets=markets, weights=weights,
        decision_ts_ms=decision, rules=spec.rules, pending=decided_since(wh, spec, last_decision(wh, broker.name), decision),
        turnover_cap=spec.turnover_cap, cost_rate=(spec.fee + spec.slippage) * 1.5, quote=quote, execution=execution, min_notional=spec.min_notional,
        webhook_env=webhook_env, sleep=sleep,
    )  # fmt: skip


def portfolio_drift(wh: Warehouse, spec: PortfolioSpec, markets: Sequence[Market], broker_name: str, *,
                    configured: Mapping[str, Strategy] | None = None) -> pl.DataFrame:  # fmt: skip
    """Paper vs backtest of the portfolio over the paper period, stored in ``portfolio.drift``.

    The backtest is re-run over the paper period only (a shadow): from the candle the paper
    account first decided on, with the paper account's equity then, its targets then and every
    later weight row, the same rules and costs. At the last candle both have seen: each market's
    position (as a weight of equity), the quantity traded since, and the P&L since (of the starting
    equity). Apart by more than ``spec.drift_tolerance``: 'diverged'; while the shadow has no
    candle after the first decision yet: 'pending'.
    """
    marks = wh.query("SELECT ts, equity, positions FROM paper.equity WHERE broker = ? ORDER BY ts", [broker_name])
    fills = wh.query(
        "SELECT o.symbol, o.side, f.qty, o.intent FROM paper.fills f JOIN paper.orders o USING (client_order_id) "
        "WHERE o.broker = ?", [broker_name],
    )  # fmt: skip
    schema = {"portfolio": pl.Utf8, "ts": TS, "kind": pl.Utf8, "symbol": pl.Utf8, "paper": pl.Float64,
              "backtest": pl.Float64, "difference": pl.Float64, "tolerance": pl.Float64, "status": pl.Utf8}  # fmt: skip
    rows: list[dict] = []
    decisions = sorted({int(i.split(":")[1]) for i in fills["intent"] if i.startswith("rebalance:")})
    if marks.height and decisions:
        first, last = marks.row(0, named=True), marks.row(-1, named=True)
        start = datetime.fromtimestamp(decisions[0] / 1000, tz=timezone.utc)
        candles = candles_long(wh, markets).filter(pl.col("ts") >= start)
        shadow = _shadow(wh, spec, candles, start, float(first["equity"]), configured)
        held = json.loads(last["positions"])
        paper_traded = fills.group_by("symbol").agg(
            pl.when(pl.col("side") == "buy").then(pl.col("qty")).otherwise(-pl.col("qty")).sum().alias("q"))
        traded = {r["symbol"]: float(r["q"]) for r in paper_traded.iter_rows(named=True)}
        done = shadow is not None and shadow.equity.height > 1
        ts = shadow.equity["ts"][-1] if done else start
        eq_b = float(shadow.final_equity) if done else None
        px = {s: float(shadow.prices[s][-1]) for s in shadow.prices.columns[1:]} if done else {}
        units_b = dict(shadow.positions.iter_rows()) if done else {}
        traded_b = {r[0]: float(r[1]) for r in shadow.trades.group_by("symbol").agg(pl.col("qty").sum()).iter_rows()} if done else {}
        eq_p = float(last["equity"])
        for m in markets:
            s = m.symbol
            p_w = float(held.get(s, 0.0)) * px.get(s, 0.0) / eq_p if done else float(held.get(s, 0.0))
            b_w = units_b.get(s, 0.0) * px.get(s, 0.0) / eq_b if done else None
            rows.append(_drift_row(ts, "position", s, p_w, b_w, spec.drift_tolerance))
            p_t, b_t = traded.get(s, 0.0), traded_b.get(s, 0.0) if done else None
            rows.append(_drift_row(ts, "traded", s, p_t, b_t, spec.drift_tolerance,
                                   scale=(px.get(s, 0.0) / float(first["equity"])) if done else 1.0))  # fmt: skip
        pnl_p = eq_p / float(first["equity"]) - 1.0
        pnl_b = eq_b / float(first["equity"]) - 1.0 if done else None
        rows.append(_drift_row(ts, "pnl", "*", pnl_p, pnl_b, spec.drift_tolerance))
        for r in rows:
            r["portfolio"] = spec.name
    out = pl.DataFrame(rows, schema=schema)
    wh.replace_slices("portfolio.drift", out, [Slice(where={"portfolio": spec.name}, time_column=None)])
    return out


def _drift_row(ts: datetime, kind: str, symbol: str, paper: float, backtest: float | None, tol: float,
               scale: float = 1.0) -> dict:  # fmt: skip
    diff = None if backtest is None else abs(paper - backtest) * scale
    status = "pending" if diff is None else ("ok" if diff <= tol else "diverged")
    return {"ts": ts, "kind": kind, "symbol": symbol, "paper": paper, "backtest": backtest, "difference": diff,
            "tolerance": tol, "status": status}  # fmt: skip


def _shadow(wh: Warehouse, spec: PortfolioSpec, candles: pl.DataFrame, start: datetime, equity: float,
            configured: Mapping[str, Strategy] | None) -> PortfolioResult | None:  # fmt: skip
    """The portfolio backtest over ``candles`` from ``start``: the targets in force at ``start``
    (each member's latest weight then) and every later decision, starting with ``equity``."""
    if not candles.height:
        return None
    members = member_strategies(wh, spec, configured)
    shares = strategy_shares(wh, spec, members)
    weights = read_weights(wh, spec.name).select("ts", "symbol", "strategy", "weight")
    at_start = weights.filter(pl.col("ts") <= start).sort("ts").group_by("strategy", "symbol").last().with_columns(ts=pl.lit(start).cast(TS))
    later = weights.filter(pl.col("ts") > start)
    w = pl.concat([at_start.select(later.columns), later]).join(candles.select("ts", "symbol"), on=["ts", "symbol"], how="semi")
    return run_portfolio(
        candles, w, fee=spec.fee, slippage=spec.slippage, init_cash=equity, min_notional=spec.min_notional,
        shares=shares, rebalance=spec.rebalance, drift_band=spec.drift_band, turnover_cap=spec.turnover_cap,
        risk=spec.rules, name=spec.name,
    )  # fmt: skip
