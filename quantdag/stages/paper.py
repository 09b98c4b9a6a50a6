"""Paper trading: a parameter set's latest signals → target positions → risk → OMS, and its drift.

The target of each market is read from the last stored signal (a candle that has closed): the
strategy's ``target`` fraction if it has one, else its position state rebuilt from entries and
exits. Each market gets an equal share of the account's current equity (marked at live prices,
not its starting capital); the risk rules and kill switches are the portfolio backtest's, on the
state stored in ``risk.state`` (:mod:`quantdag.stages.accounts`); the OMS sends the orders with
write-ahead storage in ``paper.*``.

Drift: every paper fill of a rebalance decision (intent ``rebalance:<decision_ts_ms>:...``) is set
beside the price the backtest engine fills the same decision at: the open of the candle after the
signal candle. The difference, signed so that positive means the paper account paid more (or
received less), is stored in ``paper.drift``; beyond the tolerance the fill is 'diverged'.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from typing import Any

import duckdb
import polars as pl

from quantdag.execution import PaperBroker, ticker_source
from quantdag.execution.brokers.paper import Quote
from quantdag.markets import Market
from quantdag.portfolio import RiskRules
from quantdag.stages.accounts import Execution, last_decision, rebalance_account
from quantdag.stages.signals import position_fractions, read_signals, require_no_lookahead, resolve_param_set
from quantdag.errors import ConfigurationError
from quantdag.store import Slice, Warehouse, WarehouseError
from quantdag.strategies import Strategy
from quantdag.timeframes import timeframe_ms
from quantdag.tracking import WEBHOOK_ENV, send_alert

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE_BPS = 50.0


def broker_name(strategy: Strategy) -> str:
    """The paper account (``broker`` column of ``paper.*``) of a parameter set: named here only."""
    return f"paper:{strategy.key}"


@dataclass(frozen=True)
class PaperAccount:
    """Starting capital (quote currency), risk rules and execution of a parameter set's paper account."""

    capital: float = 10_000.0
    quote: str = "USDT"
    max_drawdown: float = 0.2
    daily_loss_limit: float = 0.05
    max_orders_per_cycle: int = 20
    cash_buffer: float = 0.01  # kept in cash so fees and slippage never make the last buy unaffordable
    rules: RiskRules | None = None  # the configuration's risk rules; None: the three limits above only
    execution: Execution = Execution()
    min_notional: float = 10.0

    def risk_rules(self) -> RiskRules:
        return self.rules or RiskRules(max_drawdown=self.max_drawdown, daily_loss=self.daily_loss_limit,
                                       max_orders=self.max_orders_per_cycle)  # fmt: skip


def target_fractions(
    wh: Warehouse, key: str, markets: Sequence[Market], *, strategy: Strategy | None = None
) -> tuple[dict[str, float], int]:
    """Each market's target position fraction from its stored signals, and the decision time (ms).

    A parameter set that failed its look-ahead check never trades (:class:`StrategyError`).
    """
    strategy = strategy or resolve_param_set(wh, key)
    require_no_lookahead(wh, key)
    out: dict[str, float] = {}
    decision = 0
    for m in markets:
        sig = read_signals(wh, strategy, m)
        if sig.height == 0:
            continue
        out[m.symbol] = float(position_fractions(sig)[-1])  # the paper account is long-only (spot)
        decision = max(decision, int(sig["ts"][-1].timestamp() * 1000))
    return out, decision


def changed_markets(wh: Warehouse, strategy: Strategy, markets: Sequence[Market], since_ms: int | None,
                    until_ms: int) -> set[str] | None:  # fmt: skip
    """Markets whose signal position changed after ``since_ms`` up to ``until_ms`` (None: first cycle, all)."""
    if since_ms is None:
        return None
    out = set()
    lo, hi = (datetime.fromtimestamp(x / 1000, tz=timezone.utc) for x in (since_ms, until_ms))
    for m in markets:
        sig = read_signals(wh, strategy, m)
        if not sig.height:
            continue
        frac = position_fractions(sig)
        changed = sig.select("ts").with_columns(f=frac, prev=frac.shift(1))
        hit = changed.filter((pl.col("ts") > lo) & (pl.col("ts") <= hi) & (pl.col("f") != pl.col("prev").fill_null(-1.0)))
        if hit.height:
            out.add(m.symbol)
    return out


def paper_cycle(
    wh: Warehouse,
    key: str,
    markets: Sequence[Market],
    prices: dict[str, Quote] | None = None,
    *,
    price_source=None,
    account: PaperAccount = PaperAccount(),
    webhook_env: str = WEBHOOK_ENV,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, object]:
    """Rebalance the paper account of parameter set ``key`` to its latest signals; a JSON-safe summary.

    Each market's weight is its signal's fraction of an equal share of the account's current
    equity (less the cash buffer), through the account's stored risk state and rules
    (:func:`quantdag.stages.accounts.rebalance_account`).
    """
    strategy = resolve_param_set(wh, key)
    fractions, decision_ts = target_fractions(wh, key, markets, strategy=strategy)
    source = price_source or (lambda symbol: prices[symbol])
    broker = PaperBroker(source, balances={account.quote: account.capital}, name=broker_name(strategy))
    share = (1.0 - account.cash_buffer) / max(1, len(markets))
    summary = rebalance_account(
        wh, broker, account=broker.name, strategy=strategy.key, markets=markets,
        weights={s: f * share for s, f in fractions.items()}, decision_ts_ms=decision_ts, rules=account.risk_rules(),
        pending=changed_markets(wh, strategy, markets, last_decision(wh, broker.name), decision_ts),
        quote=account.quote, execution=account.execution, min_notional=account.min_notional,
        webhook_env=webhook_env, sleep=sleep,
    )  # fmt: skip
    summary["targets"] = {s: round(f, 4) for s, f in fractions.items()}
    return summary


def paper_drift(
    wh: Warehouse, key: str, markets: Sequence[Market], *, tolerance_bps: float = DEFAULT_TOLERANCE_BPS
) -> pl.DataFrame:
    """Compare parameter set ``key``'s paper fills with the backtest's fills; replace its ``paper.drift`` rows."""
    strategy = resolve_param_set(wh, key)
    broker = broker_name(strategy)
    fills = wh.query(
        "SELECT o.client_order_id, o.symbol, o.side, o.intent, o.avg_price AS paper_price "
        "FROM paper.orders o WHERE o.broker = ? AND o.intent LIKE 'rebalance:%' AND o.filled_qty > 0 "
        "ORDER BY o.client_order_id",
        [broker],
    )
    rows = []
    by_symbol = {m.symbol: m for m in markets}
    for f in fills.iter_rows(named=True):
        m = by_symbol.get(f["symbol"])
        if m is None:
            continue
        decision_ms = int(f["intent"].split(":")[1])  # rebalance:<decision ms>:<state>:<symbol>[:<slice>]
        next_open = decision_ms + timeframe_ms(m.timeframe)
        candle = wh.read(
            "market.candles", [Slice(where=m.where, start=next_open, end=next_open + 1)]
        )
        ref = float(candle["open"][0]) if candle.height else None
        sign = 1.0 if f["side"] == "buy" else -1.0
        drift = None if ref is None else sign * (f["paper_price"] - ref) / ref * 1e4
        status = "pending" if drift is None else ("ok" if abs(drift) <= tolerance_bps else "diverged")
        rows.append({
            "broker": broker, "client_order_id": f["client_order_id"], "symbol": f["symbol"], "side": f["side"],
            "decision_ts": datetime.fromtimestamp(decision_ms / 1000, tz=timezone.utc),
            "paper_price": float(f["paper_price"]), "backtest_price": ref, "drift_bps": drift,
            "tolerance_bps": float(tolerance_bps), "status": status,
        })  # fmt: skip
    schema = {
        "broker": pl.Utf8, "client_order_id": pl.Utf8, "symbol": pl.Utf8, "side": pl.Utf8,
        "decision_ts": pl.Datetime("ms", "UTC"), "paper_price": pl.Float64, "backtest_price": pl.Float64,
        "drift_bps": pl.Float64, "tolerance_bps": pl.Float64, "status": pl.Utf8,
    }  # fmt: skip
    out = pl.DataFrame(rows, schema=schema)
    wh.replace_slices("paper.drift", out, [Slice(where={"broker": broker}, time_column=None)], order_by=("client_order_id",))
    return out


def paper_step(
    wh: Warehouse, key: str, markets: Sequence[Market], client: Any, account: PaperAccount, *, webhook_env: str = WEBHOOK_ENV
) -> dict[str, object]:
    """One paper-trading step at the exchange's live prices (``client``'s tickers), alerting on a kill switch.

    A tripped kill switch sends an alert (log + webhook from ``webhook_env``); its text is in
    ``summary["alert"]``.
    """
    summary = paper_cycle(wh, key, markets, price_source=ticker_source(client), account=account, webhook_env=webhook_env)
    if str(summary["risk_state"]).lower() != "active":
        summary["alert"] = send_alert(f"paper account {key}: risk state {summary['risk_state']}", event="paper",
                                      context={"param_set": key}, webhook_env=webhook_env)
    return summary


def drift_step(
    wh: Warehouse, key: str, markets: Sequence[Market], *, tolerance_bps: float = DEFAULT_TOLERANCE_BPS,
    webhook_env: str = WEBHOOK_ENV,
) -> tuple[pl.DataFrame, str | None]:
    """:func:`paper_drift`, and an alert (its text returned) when a fill diverges beyond the tolerance."""
    drift = paper_drift(wh, key, markets, tolerance_bps=tolerance_bps)
    diverged = drift.filter(pl.col("status") == "diverged")
    if not diverged.height:
        return drift, None
    worst = float(diverged["drift_bps"].abs().max())
    text = f"paper account {key}: {diverged.height} fill(s) diverge from the backtest, worst {worst:.1f} bps"
    return drift, send_alert(text, event="drift", context={"param_set": key}, webhook_env=webhook_env)


# ---- which strategies trade on paper -------------------------------------------------------------


def paper_overrides(wh: Warehouse) -> dict[str, bool]:
    """The newest hand switch of each strategy (``paper.switches``); {} when none or no warehouse."""
    try:
        rows = wh.query("SELECT strategy, arg_max(enabled, ts) AS enabled FROM paper.switches GROUP BY strategy")
    except (duckdb.CatalogException, WarehouseError, ConfigurationError) as exc:  # no table or no file yet: none
        log.debug("no paper switches read: %s", exc)
        return {}
    return {r["strategy"]: bool(r["enabled"]) for r in rows.iter_rows(named=True)}


def paper_strategies(configured: Sequence[str], overrides: dict[str, bool]) -> frozenset[str]:
    """``strategies.paper`` of the configuration with the hand switches applied (a switch wins)."""
    on = set(configured) | {s for s, e in overrides.items() if e}
    return frozenset(on - {s for s, e in overrides.items() if not e})


def switch_paper(wh: Warehouse, strategy: str, enabled: bool, changed_by: str, reason: str | None = None) -> None:
    """Switch ``strategy``'s paper trading on or off from now on, logged with who did it."""
    row = {"strategy": strategy, "enabled": enabled, "changed_by": changed_by, "ts": datetime.now(timezone.utc),
           "reason": reason}  # fmt: skip
    with wh.transaction() as con:
        Warehouse.insert(con, "paper.switches", [row])
    send_alert(f"paper trading of {strategy} switched {'on' if enabled else 'off'} by {changed_by}", event="paper_switch",
               context={"strategy": strategy})  # fmt: skip


def paper_enabled_now(warehouse_path: str | None, configured: Sequence[str], lock_timeout: float = 5.0) -> frozenset[str] | None:
    """The strategies that trade on paper now (configuration + hand switches), for a sensor or a
    schedule; None when the warehouse stayed busy: the caller skips the tick rather than trade a
    strategy someone switched off."""
    import os

    if warehouse_path is None or not os.path.exists(warehouse_path):
        return frozenset(configured)
    try:
        with Warehouse(warehouse_path, read_only=True, lock_timeout=lock_timeout).session() as wh:
            return paper_strategies(configured, paper_overrides(wh))
    except WarehouseError as exc:
        log.warning("paper switches unreadable (%s): this tick places no paper order", exc)
        return None
