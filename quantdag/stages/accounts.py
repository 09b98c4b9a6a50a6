"""One paper-trading cycle of an account, shared by every paper account (a parameter set's, a portfolio's).

The account follows the portfolio backtest's rules (:mod:`quantdag.portfolio`): target weights are
fractions of the account's *current* equity (marked at the live prices, open P&L included), the
same :func:`~quantdag.portfolio.risk.limit_weights` shrinks them and the same
:func:`~quantdag.portfolio.risk.update_state` — on the state stored in ``risk.state`` by the previous
cycle — trips and resumes the kill switches. Orders go through the order manager (write-ahead,
idempotent per decision); sells before buys; a parent above ``above_notional`` is sliced by TWAP or
VWAP; every parent gets a ``paper.tca`` row.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from quantdag.execution import OrderManager, RiskEngine, RiskLimits
from quantdag.execution.algos import ChildSlice, twap_schedule, volume_profile, vwap_schedule
from quantdag.execution.brokers.base import Broker
from quantdag.execution.risk import RiskState
from quantdag.markets import Market
from quantdag.portfolio.risk import HALTED, REDUCING, STATE_NAMES, RiskRules, limit_weights, trailing_returns
from quantdag.portfolio.risk_store import mark
from quantdag.stages.common import read_candles
from quantdag.store import Slice, Warehouse
from quantdag.tracking import WEBHOOK_ENV

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Execution:
    """How parents are executed: above ``above_notional`` (quote) sliced by ``algo`` into ``slices``
    children over ``duration_s``; below it one market order."""

    algo: str = "twap"
    above_notional: float = 2_500.0
    slices: int = 3
    duration_s: float = 3.0


def target_units(weights: Mapping[str, float], equity: float, prices: Mapping[str, float]) -> dict[str, float]:
    """Units that hold ``weights`` (fractions of ``equity``) at ``prices``: the backtest's sizing."""
    return {s: w * equity / prices[s] for s, w in weights.items()}


def limited_weights(targets: Mapping[str, float], current: Mapping[str, float], state: int, rules: RiskRules,
                    returns: np.ndarray, symbols: Sequence[str]) -> tuple[dict[str, float], int]:  # fmt: skip
    """The risk rules' weights (in ``symbols`` order), every market tradable; and the limits hit."""
    tgt = np.array([float(targets.get(s, current.get(s, 0.0))) for s in symbols])
    cur = np.array([float(current.get(s, 0.0)) for s in symbols])
    lim, hits = limit_weights(tgt, cur, np.ones(len(symbols), dtype=np.bool_), int(state), rules.params(), returns)
    return dict(zip(symbols, lim.tolist())), int(hits)


def closes(wh: Warehouse, markets: Sequence[Market]) -> np.ndarray:
    """Stored closes of ``markets`` on their common time grid (candles × markets, NaN = none)."""
    frames = [read_candles(wh, m).select("ts", pl.col("close").alias(m.symbol)) for m in markets]
    if not frames:
        return np.empty((0, 0))
    grid = pl.concat([f.select("ts") for f in frames]).unique().sort("ts")
    for f in frames:
        grid = grid.join(f, on="ts", how="left")
    return grid.drop("ts").to_numpy().astype(float)


def record_equity(wh: Warehouse, broker: str, equity: float, state: str, positions: Mapping[str, float]) -> None:
    """Append the account's marked-to-market equity (one row per step, keyed by the minute)."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    row = pl.DataFrame(
        {"broker": [broker], "ts": [now], "equity": [float(equity)], "risk_state": [state],
         "positions": [json.dumps(dict(positions), sort_keys=True)]},
        schema_overrides={"ts": pl.Datetime("ms", "UTC")},
    )  # fmt: skip
    wh.replace_slices("paper.equity", row, [Slice(where={"broker": broker}, start=now, end=now + timedelta(minutes=1))])


def last_decision(wh: Warehouse, broker: str) -> int | None:
    """The decision (epoch ms) the account last acted on, None before its first cycle."""
    rows = wh.query("SELECT decision_ts FROM paper.decisions WHERE broker = ?", [broker])
    return int(rows["decision_ts"][0].timestamp() * 1000) if rows.height else None


def _resumed_by_hand(wh: Warehouse, account: str, broker: str) -> bool:
    """Whether a resume was stored after the account's last cycle (a human, the dashboard)."""
    rows = wh.query(
        "SELECT count(*) AS n FROM risk.events e WHERE e.account = ? AND e.state = 'active' AND e.ts > "
        "coalesce((SELECT acted_at FROM paper.decisions WHERE broker = ?), TIMESTAMPTZ '1970-01-01 00:00:00+00')",
        [account, broker],
    )  # fmt: skip
    return bool(rows["n"][0])


def _acted(wh: Warehouse, broker: str, decision_ts_ms: int) -> None:
    now = datetime.now(timezone.utc)
    row = pl.DataFrame({"broker": [broker], "decision_ts": [datetime.fromtimestamp(decision_ts_ms / 1000, tz=timezone.utc)],
                        "acted_at": [now]}).with_columns(pl.col("decision_ts", "acted_at").cast(pl.Datetime("ms", "UTC")))  # fmt: skip
    wh.replace_slices("paper.decisions", row, [Slice(where={"broker": broker}, time_column=None)])


def _schedule(qty: float, notional: float, now_ms: int, execution: Execution, profile: np.ndarray | None) -> tuple[str, list[ChildSlice]]:
    if notional <= execution.above_notional:
        return "market", [ChildSlice(0, now_ms, qty)]
    end = now_ms + int(execution.duration_s * 1000)
    if execution.algo == "vwap" and profile is not None:
        return "vwap", vwap_schedule(qty, now_ms, end, execution.slices, profile)
    return "twap", twap_schedule(qty, now_ms, end, execution.slices)


def rebalance_account(
    wh: Warehouse,
    broker: Broker,
    *,
    account: str,
    strategy: str,
    markets: Sequence[Market],
    weights: Mapping[str, float],
    decision_ts_ms: int,
    rules: RiskRules,
    pending: Collection[str] | None = None,
    quote: str = "USDT",
    execution: Execution = Execution(),
    min_notional: float = 10.0,
    cost_rate: float = 0.002,
    turnover_cap: float | None = None,
    webhook_env: str = WEBHOOK_ENV,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, object]:
    """One cycle: reconcile, mark equity and risk state, rebalance to ``weights`` (fractions of the
    current equity, by symbol) through the risk rules; a JSON-safe summary.

    ``pending``: the markets a decision newer than the last acted on changed (None: all) — the
    others keep their units, as in the backtest, unless a risk rule moves them; a resume brings
    every market back to its target. ``cost_rate``: fee + slippage a buy may cost, as a fraction
    (with a margin): buys are scaled so cash covers them, as the backtest scales them.
    ``turnover_cap`` (of equity) and ``rules.max_orders`` leave part of a decision for the next
    cycle, which takes it up again (the decision is not marked acted on until it is done).
    """
    symbols = [m.symbol for m in markets]
    oms_limits = RiskLimits(max_orders=rules.max_orders * 4 if rules.max_orders else None)  # children of sliced parents
    with OrderManager(wh, broker, strategy=strategy, risk=RiskEngine(oms_limits), min_notional=min_notional) as oms:
        oms.acquire_lease()
        report = oms.reconcile()
        prices = {s: float(broker.price(s)) for s in symbols}
        oms.store.save_balances(broker.balances().values(), broker.now_ms())
        equity = oms.equity(prices, quote)
        risk = mark(wh, account, rules, equity, broker.now_ms(), webhook_env=webhook_env)
        state = STATE_NAMES.index(risk.state)
        if state == HALTED:
            oms.risk.halt(f"risk state of {account}: halted")
        elif state == REDUCING:
            oms.risk.state, oms.risk.reason = RiskState.REDUCING, f"risk state of {account}: reducing"
        positions = {s: p.qty for s, p in oms.positions().items()}
        current = {s: positions.get(s, 0.0) * prices[s] / equity for s in symbols} if equity > 0 else {}
        returns = np.empty((0, len(symbols)))
        if rules.needs_history:
            c = closes(wh, markets)
            returns = trailing_returns(c, c.shape[0] - 1, rules.window) if c.shape[0] >= 3 else np.empty((0, len(symbols)))
        resumed = any(state_ == "active" for state_, _, _ in risk.events) or _resumed_by_hand(wh, account, broker.name)
        if pending is None or resumed:
            pending = set(symbols)
        done_parents = {o.parent_id for o in oms.store.orders() if o.parent_id}
        prefix = f"rebalance:{decision_ts_ms}:{risk.state}:"
        done = {p[len(prefix):-len(strategy) - 1] for p in done_parents if p.startswith(prefix) and p.endswith(f":{strategy}")}
        pending = set(pending) - done  # this decision's markets already traded: only the deferred ones are left
        wanted = {s: weights.get(s, 0.0) if s in pending else current.get(s, 0.0) for s in symbols}
        limited, hits = limited_weights(wanted, current, state, rules, returns, symbols)
        units = target_units(limited, max(equity, 0.0), prices)
        deltas = {s: units[s] - positions.get(s, 0.0) for s in symbols}
        orders = [(s, d) for s, d in deltas.items() if abs(d) * prices[s] >= max(min_notional, 1e-9)]
        orders.sort(key=lambda o: (o[1] > 0, -abs(o[1]) * prices[o[0]]))  # sells first, biggest first
        unfinished = False  # part of the decision waits for the next cycle (it stays pending, as in the backtest)
        traded = sum(abs(d) * prices[s] for s, d in orders)
        if turnover_cap is not None and equity > 0 and traded > turnover_cap * equity:
            f = turnover_cap * equity / traded
            orders = [(s, d * f) for s, d in orders]
            unfinished = True
        if rules.max_orders is not None and len(orders) > rules.max_orders:
            log.warning("%s: %d orders, %d deferred to the next cycle (max_orders)", account, len(orders), len(orders) - rules.max_orders)
            orders = orders[: rules.max_orders]
            unfinished = True
        tca, sent = [], 0
        cut = 0
        scale = None
        for symbol, d in orders:
            if d > 0 and scale is None:  # the sells are done: buys that cash cannot cover shrink together
                free = broker.balances().get(quote)
                need = sum(q * prices[s] * (1.0 + cost_rate) for s, q in orders if q > 0)
                scale = min(1.0, max(free.free if free else 0.0, 0.0) / need) if need > 0 else 1.0
                if scale < 1.0:
                    cut = sum(1 for _, q in orders if q > 0)
                    log.warning("%s: buys scaled by %.6f: cash %.2f cannot cover %.2f", account, scale, free.free if free else 0.0, need)
            qty = broker.round_qty(symbol, abs(d) * (scale if d > 0 and scale is not None else 1.0))
            if qty <= 0 or qty * prices[symbol] < min_notional:
                continue
            profile = None
            if execution.algo == "vwap":
                m = markets[symbols.index(symbol)]
                try:
                    profile = volume_profile(read_candles(wh, m))
                except Exception:  # no volume stored yet: TWAP
                    profile = None
            parent = f"rebalance:{decision_ts_ms}:{risk.state}:{symbol}:{strategy}"
            if parent in done_parents:  # executed by an earlier attempt of this cycle: never again
                continue
            algo, schedule = _schedule(qty, qty * prices[symbol], broker.now_ms(), execution, profile)
            result = oms.execute_schedule(parent_id=parent, symbol=symbol, side="buy" if d > 0 else "sell",
                                          schedule=schedule, algo=algo, arrival_price=prices[symbol], sleep=sleep)  # fmt: skip
            sent += len(schedule)
            tca.append({"symbol": symbol, "algo": algo, "filled": result.filled_qty,
                        "shortfall_bps": result.implementation_shortfall_bps})  # fmt: skip
        oms.store.save_balances(broker.balances().values(), broker.now_ms())
        positions = {s: p.qty for s, p in oms.positions().items()}
        equity_after = oms.equity(prices, quote)
    record_equity(wh, broker.name, equity_after, risk.state, positions)
    if not unfinished:
        _acted(wh, broker.name, decision_ts_ms)
    return {
        "account": account, "risk_state": risk.state, "risk_events": [list(e) for e in risk.events],
        "limits_hit": hits, "equity": equity_after, "equity_before": equity, "decision_ts_ms": decision_ts_ms,
        "targets": {s: round(w, 6) for s, w in limited.items()}, "orders_sent": sent, "parents": tca, "n_cut_for_cash": cut, "unfinished": unfinished,
        "positions": positions, "reconciled_orders": len(report.resolved), "lost_orders": len(report.lost),
        "balance_mismatches": len(report.balance_mismatches),
    }  # fmt: skip
