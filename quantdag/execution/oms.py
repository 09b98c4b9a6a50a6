"""The order manager: write-ahead submission, in-flight resolution, reconciliation, rebalancing.

Typical run (what a Dagster ``paper_trade`` job calls)::

    oms = OrderManager(Warehouse(path), broker, strategy="ma_cross", risk=RiskEngine(limits))
    report = oms.reconcile()                       # always first: nothing is sent before it
    orders = oms.rebalance({"BTC/USDT": 0.05}, decision_ts_ms=ts)  # target positions (base units)

Guarantees: a row in ``paper.orders`` (status ``submitted``, no exchange id) exists before an order
is sent; the client order id is derived from (strategy, symbol, intent), so the same decision never
produces a second order, even from two managers at once: an order is sent only by the manager whose
insert created its row (:meth:`OrderStore.claim`), any other one polls it; one manager trades an
account at a time (the account lease in ``paper.leases``: taken by ``with OrderManager(...)`` /
:meth:`OrderManager.acquire_lease`, renewed every cycle and order, released on exit; others get
:class:`~quantdag.execution.lease.AccountLocked` until it expires or its holder dies); an order whose submit timed out / got 5xx / 429 stays in flight and is
resolved only by querying the broker, never by sending it again; fills, positions and the order row
move in one transaction; reconciliation rebuilds positions from the fill ledger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from quantdag.errors import ConfigurationError, ExchangeError, OrderRejected, QuantdagError
from quantdag.exchange.secrets import scrub
from quantdag.execution import state
import polars as pl

from quantdag.execution.algos import ChildSlice
from quantdag.execution.brokers.base import Broker, BrokerOrder
from quantdag.execution.ids import client_order_id
from quantdag.execution.lease import DEFAULT_TTL_S, AccountLocked, Lease
from quantdag.execution.risk import RiskEngine, RiskState
from quantdag.execution.store import OrderStore
from quantdag.execution.tca import Tca, analyse, interval_vwap
from quantdag.execution.types import (
    OPEN,
    Balance,
    Fill,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Position,
    Side,
    base_of,
    quote_of,
)
from quantdag.store.warehouse import Warehouse
from quantdag.tracking.alerts import send_alert

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    resolved: list[str] = field(default_factory=list)  # client ids whose state changed
    in_flight: list[str] = field(default_factory=list)  # still unknown (broker unreachable)
    lost: list[str] = field(default_factory=list)  # in flight, not at the broker -> rejected
    new_fills: int = 0
    foreign_open_orders: list[str] = field(default_factory=list)  # open at the broker, unknown here
    foreign_fills: list[Fill] = field(default_factory=list)  # venue fills of orders never sent here (not booked)
    positions: dict[str, Position] = field(default_factory=dict)
    balance_mismatches: list[BalanceMismatch] = field(default_factory=list)  # venue totals != baseline + ledger


BALANCE_HALT = "balance mismatch with the venue: "


@dataclass(frozen=True)
class BalanceMismatch:
    """One asset whose venue total differs from what the store explains (baseline + ledger flows)."""

    asset: str
    stored: float
    venue: float


def ledger_flows(fills: list[Fill]) -> dict[str, float]:
    """Net change of each asset the fill ledger explains: base +/- qty, quote -/+ notional, fees out."""
    out: dict[str, float] = {}
    for f in fills:
        base, quote = base_of(f.symbol), quote_of(f.symbol)
        out[base] = out.get(base, 0.0) + f.signed_qty
        out[quote] = out.get(quote, 0.0) - f.side.sign * f.notional
        out[f.fee_asset] = out.get(f.fee_asset, 0.0) - f.fee
    return out


class OrderManager:
    """See the module docstring.

    Parameters
    ----------
    warehouse:
        Where ``paper.*`` lives.
    broker:
        :class:`~quantdag.execution.brokers.paper.PaperBroker` or :class:`~quantdag.execution.brokers.ccxt.CcxtBroker`.
    strategy:
        Name used in client order ids and the ``strategy`` column.
    risk:
        Pre-trade checks (default: none beyond the broker's).
    lost_after_s, lost_after_answers, lost_window_s:
        An in-flight order the broker does not know is declared lost (rejected, never resent) only
        once it is ``lost_after_s`` old AND the broker answered "not found" ``lost_after_answers``
        times, the first at least ``lost_window_s`` before the last (a real venue can be slow to show
        a new order). The answers are counted in ``paper.not_found`` (they survive restarts); fills
        of an order that shows up after all are still booked by :meth:`reconcile`.
    min_notional:
        Rebalance deltas worth less are skipped.
    hook:
        Called with a step name at every lifecycle step (crash-injection tests).
    persistent:
        Keep one DuckDB connection open until :meth:`close` (the file is locked against other
        processes meanwhile); use the manager as a context manager.
    lease_ttl_s:
        Time to live of the account lease (``with`` takes it, each cycle and order renews it): a
        holder silent for this long loses the account to the next manager.
    balance_abs_tol, balance_rel_tol:
        Reconcile compares each asset's venue total with baseline + ledger flows; a difference above
        ``max(abs_tol, rel_tol * |amount|)`` is a mismatch (alert, risk HALTED until a matching
        reconcile or :meth:`resume`). Set ``abs_tol`` to about a lot step for a venue that rounds.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        broker: Broker,
        *,
        strategy: str,
        risk: RiskEngine | None = None,
        lost_after_s: float = 10.0,
        min_notional: float = 10.0,
        clock: Callable[[], int] | None = None,
        hook: Callable[[str], None] | None = None,
        persistent: bool = True,
        lease_ttl_s: float = DEFAULT_TTL_S,
        lost_after_answers: int = 3,
        lost_window_s: float = 60.0,
        balance_abs_tol: float = 1e-8,
        balance_rel_tol: float = 1e-8,
    ) -> None:
        if not strategy:
            raise ConfigurationError("OrderManager needs a strategy name")
        self.broker = broker
        self.strategy = strategy
        self.risk = risk or RiskEngine()
        self.lost_after_ms = int(lost_after_s * 1000)
        if lost_after_answers < 1 or lost_window_s < 0:
            raise ConfigurationError(f"lost_after_answers must be >= 1 and lost_window_s >= 0, got "
                                     f"{lost_after_answers!r}, {lost_window_s!r}")
        self.lost_after_answers = lost_after_answers
        self.lost_window_ms = int(lost_window_s * 1000)
        self.min_notional = min_notional
        if not (balance_abs_tol >= 0 and balance_rel_tol >= 0):
            raise ConfigurationError(f"balance tolerances must be >= 0, got {balance_abs_tol!r}, {balance_rel_tol!r}")
        self.balance_abs_tol = balance_abs_tol
        self.balance_rel_tol = balance_rel_tol
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._hook = hook or (lambda step: None)
        self.store = OrderStore(warehouse, broker.name, hook=self._hook, persistent=persistent,
                                lease_ttl_s=lease_ttl_s)
        self.reconciled = False
        self.leased = False

    def close(self) -> None:
        """Release the account lease (if held) and the store's connection."""
        try:
            if self.leased:
                self.leased = False
                self.store.release_lease()
        finally:
            self.store.close()

    def __enter__(self) -> OrderManager:
        try:
            self.acquire_lease()
        except BaseException:
            self.store.close()
            raise
        return self

    def acquire_lease(self) -> Lease:
        """Take (or renew) the account's lease: this manager alone trades the account until it expires.

        Raises
        ------
        AccountLocked
            If another live manager holds it (the message names the account and the holder).
        """
        lease = self.store.acquire_lease(self._clock())
        self.leased = True
        return lease

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- queries -----------------------------------------------------------------------------

    def positions(self) -> dict[str, Position]:
        return self.store.positions()

    def open_orders(self) -> list[Order]:
        return self.store.orders(OPEN)

    def in_flight(self) -> list[Order]:
        return [o for o in self.store.orders([OrderStatus.SUBMITTED]) if o.in_flight]

    # ---- submission --------------------------------------------------------------------------

    def submit(self, symbol: str, side: Side | str, qty: float, *, intent: str, type: OrderType | str = OrderType.MARKET,
               limit_price: float | None = None, parent_id: str | None = None, price: float | None = None) -> Order:
        """Risk-check, write ahead, send once. Returns the order in its latest known state.

        The same (strategy, symbol, intent) returns the stored order without sending anything.
        A risk refusal is stored as ``rejected`` and raises :class:`OrderRejected`; a broker
        refusal is stored as ``rejected`` and returned; an unknown outcome is returned in flight.
        """
        if not self.reconciled:
            raise QuantdagError("reconcile() must run before the order manager sends anything")
        cid = client_order_id(self.strategy, symbol, intent)
        existing = self.store.get(cid)
        if existing is not None:
            return self._poll_claimed(existing)
        now = self._clock()
        order = Order(cid, self.strategy, symbol, Side(side), float(qty), OrderType(type), limit_price,
                      parent_id=parent_id, intent=intent, ts_created=now, ts_updated=now)
        pos = self.store.positions().get(symbol, Position(symbol)).qty
        try:
            self.risk.check(order, position_qty=pos, price=price if price is not None else self.broker.price(symbol))
        except OrderRejected as exc:
            self.store.claim(state.apply(order, OrderEvent.REJECT, reason=str(exc), ts_updated=now), now_ms=now)
            raise
        order = state.apply(order, OrderEvent.SUBMIT, ts_submitted=now, ts_updated=now)
        stored, mine = self.store.claim(order, now_ms=now)
        if not mine:  # another manager wrote it ahead first: it alone sends it
            return self._poll_claimed(stored)
        self._hook("after_write_ahead")
        try:
            bo = self.broker.submit(order)
        except OrderRejected as exc:  # definitive: not retried
            order = state.apply(order, OrderEvent.REJECT, reason=scrub(exc), ts_updated=self._clock())
            self.store.update_order(order)
            log.warning("order %s rejected by %s: %s", cid, self.broker.name, scrub(exc))
            return order
        except ExchangeError as exc:  # ambiguous: leave in flight, resolve by query only
            log.warning("order %s outcome unknown (%s); resolving by query", cid, exc.kind)
            self._hook("after_ambiguous_send")
            return self.resolve(order)
        self._hook("after_send")
        return self._sync(order, bo)

    def _poll_claimed(self, order: Order) -> Order:
        """An order whose row this call did not create (a re-run, or another manager's): never sent
        again; brought up to date by a query if still open. Not declared lost here: its sender may
        not have sent it yet (that is the reconcile's call)."""
        return order if order.status.terminal else self.resolve(order, declare_lost=False)

    def cancel(self, client_order_id: str) -> Order:
        """Cancel an open order (risk never blocks cancels)."""
        order = self.store.get(client_order_id)
        if order is None:
            raise ConfigurationError(f"unknown order {client_order_id!r}")
        self.risk.check_cancel(client_order_id)
        if order.status.terminal:
            return order
        if order.status is OrderStatus.NEW:
            order = state.apply(order, OrderEvent.CANCEL, ts_updated=self._clock())
            self.store.update_order(order)
            return order
        self._hook("before_cancel_send")
        try:
            bo = self.broker.cancel(order.client_order_id, order.symbol)
        except ExchangeError as exc:  # cancels are idempotent, but the outcome is unknown: look it up
            log.warning("cancel %s outcome unknown (%s)", client_order_id, exc.kind)
            return self.resolve(order)
        self._hook("after_cancel_send")
        if bo is None:  # unknown or already done at the broker: look it up
            return self.resolve(order)
        return self._sync(order, bo)

    # ---- resolution --------------------------------------------------------------------------

    def resolve(self, order: Order, *, declare_lost: bool = True) -> Order:
        """Bring one non-terminal order up to date by querying the broker (never by resending).

        An in-flight order the broker does not know is rejected as lost after ``lost_after_s``
        (unless ``declare_lost`` is False)."""
        try:
            bo = self.broker.fetch_order(order.client_order_id, order.symbol)
        except ExchangeError as exc:
            log.warning("order %s still unresolved: %s", order.client_order_id, exc.kind)
            return order
        if bo is None:
            if declare_lost and order.in_flight:
                now = self._clock()
                answers, first = self.store.note_not_found(order.client_order_id, now)
                if (now - (order.ts_submitted or 0) >= self.lost_after_ms and answers >= self.lost_after_answers
                        and now - first >= self.lost_window_ms):
                    order = state.apply(order, OrderEvent.REJECT,
                                        reason=f"not found at the broker after an ambiguous submit ({answers} answers "
                                               f"over {(now - first) / 1000:.0f} s)", ts_updated=now)
                    self.store.update_order(order)
            return order
        return self._sync(order, bo)

    def _sync(self, order: Order, bo: BrokerOrder) -> Order:
        """Apply the broker's view: ack, then fills + status + positions in one transaction."""
        if order.status.terminal:
            return order
        now = self._clock()
        if order.exchange_order_id is None:
            order = state.apply(order, OrderEvent.ACCEPT, exchange_order_id=bo.exchange_order_id, ts_acked=now,
                                ts_updated=now)
            self.store.update_order(order)
            self._hook("after_ack_stored")
        fills: list[Fill] = []
        recorded = sum(f.qty for f in self.store.fills(client_order_id=order.client_order_id))
        if bo.filled_qty > recorded + 1e-12:
            fills = list(bo.fills)
            if sum(f.qty for f in fills) + 1e-12 < bo.filled_qty:
                try:
                    fills = self.broker.order_fills(bo)
                except ExchangeError as exc:  # never move the status past fills we have not stored
                    log.warning("order %s: fills unavailable (%s); will sync later", order.client_order_id, exc.kind)
                    return order
            fills = [Fill(f.trade_id, order.client_order_id, f.symbol, f.side, f.qty, f.price, f.fee, f.fee_asset,
                          f.ts, bo.exchange_order_id) for f in fills]
        changes = dict(filled_qty=bo.filled_qty, avg_price=bo.avg_price, fee=bo.fee, ts_updated=now)
        if bo.status is not order.status or bo.filled_qty != order.filled_qty:
            if bo.status is OrderStatus.SUBMITTED:
                order = order.with_(**changes)
            else:
                order = state.apply(order, state.event_for(bo.status), **changes)
        self.store.record(order, fills)
        self._hook("after_fills_stored")
        return order

    def _poll_open(self) -> list[tuple[Order, Order]]:
        """Query every non-terminal order at the broker and apply its state and fills: (before, after) pairs."""
        return [(o, self.resolve(o)) for o in self.store.orders(OPEN)]

    def _owners(self, symbol: str, exchange_ids: set[str | None]) -> dict[str | None, str]:
        """Client order id (the venue's, "" if none) of each order behind fills we cannot place, asked
        of the broker by exchange id (brokers without that lookup: nothing known)."""
        lookup = getattr(self.broker, "fetch_order_by_id", None)
        out: dict[str | None, str] = {}
        for eid in sorted(e for e in exchange_ids if e is not None):
            bo = lookup(eid, symbol) if callable(lookup) else None
            out[eid] = bo.client_order_id if bo is not None else ""
        return out

    def resolve_in_flight(self) -> list[Order]:
        return [after for _, after in self._poll_open()]

    def reconcile(self) -> ReconcileReport:
        """Sync the store with the broker before anything new is sent; see the module docstring.

        Raises
        ------
        AccountLocked
            If another live manager holds the account's lease (checked first; renewed if held here).
        """
        self.store.check_lease(self._clock())
        report = ReconcileReport()
        restore = getattr(self.broker, "restore", None)
        if callable(restore):  # an in-process broker (paper) rebuilds its account from the store
            restore(self.store.fills(), self.store.orders(OPEN))
        for order, after in self._poll_open():  # in-flight and open orders first, before any decision
            if after.status is not order.status or after.exchange_order_id != order.exchange_order_id:
                report.resolved.append(order.client_order_id)
            if after.status.terminal is False and after.in_flight:
                report.in_flight.append(order.client_order_id)
            if after.status is OrderStatus.REJECTED and order.in_flight:
                report.lost.append(order.client_order_id)
        orders = self.store.orders()
        symbols = {o.symbol for o in orders} | set(self.store.positions())
        by_exchange_id = {o.exchange_order_id: o for o in orders if o.exchange_order_id}
        known_ids = {o.client_order_id for o in orders}
        for symbol in sorted(symbols):
            try:
                trades = self.broker.fills_since(symbol, self.store.last_fill_ms(symbol))
                for bo in self.broker.open_orders(symbol):
                    if bo.client_order_id not in known_ids:
                        report.foreign_open_orders.append(bo.client_order_id)
            except ExchangeError as exc:
                log.warning("reconcile %s: broker unreachable (%s)", symbol, exc.kind)
                continue
            owner = {eid: o.client_order_id for eid, o in by_exchange_id.items()}
            try:
                owner.update(self._owners(symbol, {t.exchange_order_id for t in trades} - set(owner)))
            except ExchangeError as exc:  # cannot tell whose they are: neither booked nor called foreign yet
                log.warning("reconcile %s: unknown fills' orders unavailable (%s)", symbol, exc.kind)
                trades = [t for t in trades if t.exchange_order_id in owner]
            mine = [Fill(t.trade_id, owner[t.exchange_order_id], t.symbol, t.side, t.qty,
                         t.price, t.fee, t.fee_asset, t.ts, t.exchange_order_id)
                    for t in trades if owner.get(t.exchange_order_id) in known_ids]
            report.new_fills += len(self.store.record(None, mine))
            foreign = [Fill(t.trade_id, owner.get(t.exchange_order_id) or None, t.symbol, t.side, t.qty, t.price,
                            t.fee, t.fee_asset, t.ts, t.exchange_order_id)
                       for t in trades if owner.get(t.exchange_order_id) not in known_ids]
            report.foreign_fills += foreign
            new_foreign = self.store.record_foreign(foreign, self._clock())
            if new_foreign:
                send_alert(event="oms", text=f"{self.broker.name}: {len(new_foreign)} fill(s) of orders this manager never sent "
                           f"({symbol}): " + ", ".join(f"{f.side} {f.qty:g} @ {f.price:g} (order "
                                                        f"{f.exchange_order_id}, client id {f.client_order_id})"
                                                        for f in new_foreign[:5]),
                           context={"broker": self.broker.name, "symbol": symbol, "kind": "foreign_fills"})
        report.positions = self.store.rebuild_positions()
        try:
            venue = self.broker.balances()
        except ExchangeError as exc:
            log.warning("reconcile: balances unavailable (%s); not checked", exc.kind)
        else:
            self.store.save_balances(venue.values(), self._clock())
            report.balance_mismatches = self._check_balances(venue)
        self.reconciled = True
        return report

    def _check_balances(self, venue: Mapping[str, Balance]) -> list[BalanceMismatch]:
        """Venue totals against baseline + ledger flows; a mismatch alerts and halts risk-adding
        orders, a match lifts a halt this check put in place."""
        flows = ledger_flows(self.store.fills())
        totals = {a: b.total for a, b in venue.items()}
        baseline = self.store.balance_baseline()
        if baseline is None:
            baseline = self.store.set_balance_baseline(
                {a: totals.get(a, 0.0) - flows.get(a, 0.0) for a in set(totals) | set(flows)}, self._clock())
        out = []
        for asset in sorted(set(totals) | set(flows) | set(baseline)):
            stored = baseline.get(asset, 0.0) + flows.get(asset, 0.0)
            seen = totals.get(asset, 0.0)
            if abs(stored - seen) > max(self.balance_abs_tol, self.balance_rel_tol * max(abs(stored), abs(seen))):
                out.append(BalanceMismatch(asset, stored, seen))
        if out:
            reason = BALANCE_HALT + ", ".join(f"{m.asset} stored {m.stored:.10g} venue {m.venue:.10g}" for m in out)
            halted = self.risk.state is RiskState.HALTED
            repeat = halted and self.risk.reason == reason
            if not halted or (self.risk.reason or "").startswith(BALANCE_HALT):  # keep a kill switch's reason
                self.risk.halt(reason)
            if not repeat:  # the same mismatch seen again is not alerted again
                send_alert(f"{self.broker.name}: {reason}; risk-adding orders halted", event="oms",
                           context={"broker": self.broker.name, "kind": "balance_mismatch"})
        elif self.risk.state is RiskState.HALTED and (self.risk.reason or "").startswith(BALANCE_HALT):
            log.warning("%s: balances match the venue again; resuming", self.broker.name)
            self.risk.resume()
        return out

    def resume(self) -> None:
        """Lift a halt (balance mismatch or kill switch) by hand; the next reconcile checks again."""
        self.risk.resume()

    # ---- targets -----------------------------------------------------------------------------

    def rebalance(self, targets: Mapping[str, float], *, decision_ts_ms: int,
                  prices: Mapping[str, float] | None = None) -> list[Order]:
        """Send the orders that move each position to its target (base units, signed).

        Open orders count toward the position; deltas under ``min_notional`` are skipped. The
        intent is ``rebalance:<decision_ts_ms>``, so re-running the same decision sends nothing new.
        Risk refusals are logged and stored, not raised.
        """
        out = []
        positions = self.store.positions()
        pending: dict[str, float] = {}
        for o in self.store.orders(OPEN):
            pending[o.symbol] = pending.get(o.symbol, 0.0) + o.side.sign * o.remaining
        for symbol, target in sorted(targets.items()):
            price = (prices or {}).get(symbol) or self.broker.price(symbol)
            current = positions.get(symbol, Position(symbol)).qty + pending.get(symbol, 0.0)
            delta = self.broker.round_qty(symbol, abs(target - current))
            if delta * price < self.min_notional:
                continue
            side = Side.BUY if target > current else Side.SELL
            try:
                out.append(self.submit(symbol, side, delta, intent=f"rebalance:{decision_ts_ms}", price=price))
            except OrderRejected as exc:
                log.warning("rebalance %s: %s", symbol, exc)
        return out

    def execute_schedule(
        self,
        *,
        parent_id: str,
        symbol: str,
        side: Side | str,
        schedule: list[ChildSlice],
        algo: str,
        arrival_price: float | None = None,
        interval_candles: Callable[[int, int], pl.DataFrame] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Tca:
        """Send a TWAP/VWAP schedule's children at their times (market orders), then store its TCA.

        Child intents are ``<parent_id>:<slice index>``: re-running a parent after a crash only sends
        the slices never written ahead. ``interval_candles(start_ms, end_ms)`` gives the candles for
        the interval VWAP (e.g. from ``market.candles``); without it VWAP slippage is NULL.
        """
        arrival = arrival_price if arrival_price is not None else self.broker.price(symbol)
        ts_start = self._clock()
        for sl in schedule:
            wait = (sl.ts_ms - self._clock()) / 1000
            if wait > 0:
                sleep(wait)
            if sl.qty <= 0:
                continue
            try:
                self.submit(symbol, side, sl.qty, intent=f"{parent_id}:{sl.index}", parent_id=parent_id)
            except OrderRejected as exc:
                log.warning("%s slice %d refused: %s", parent_id, sl.index, exc)
        ts_end = self._clock()
        children = [o for o in self.store.orders() if o.parent_id == parent_id]
        fills = [f for o in children for f in self.store.fills(client_order_id=o.client_order_id)]
        vwap = interval_vwap(interval_candles(ts_start, ts_end)) if interval_candles is not None else None
        result = analyse(parent_id=parent_id, strategy=self.strategy, symbol=symbol, side=side, algo=algo,
                         parent_qty=sum(s.qty for s in schedule), arrival_price=arrival, fills=fills,
                         n_children=len(children), vwap=vwap, ts_start=ts_start, ts_end=ts_end)
        self.store.save_tca([result])
        return result

    def run_cycle(self, targets: Mapping[str, float], *, decision_ts_ms: int,
                  prices: Mapping[str, float] | None = None, quote: str = "USDT") -> dict[str, object]:
        """One paper/live step for a scheduled job: take/renew the account lease, reconcile (every
        open or in-flight order is queried and its fills applied first), refresh risk, rebalance to
        ``targets``.

        Returns a JSON-safe summary (for Dagster output metadata); never contains credentials.

        Raises
        ------
        AccountLocked
            If another live manager holds the account's lease.
        """
        self.acquire_lease()
        report = self.reconcile()
        px = dict(prices or {})
        for symbol in targets:
            px.setdefault(symbol, self.broker.price(symbol))
        risk_state = self.update_risk(px, quote)
        orders = self.rebalance(targets, decision_ts_ms=decision_ts_ms, prices=px)
        try:
            self.store.save_balances(self.broker.balances().values(), self._clock())
        except ExchangeError as exc:
            log.warning("balances unavailable after rebalance (%s)", exc.kind)
        positions = self.positions()
        return {
            "risk_state": risk_state,
            "reconciled_orders": len(report.resolved),
            "lost_orders": len(report.lost),
            "still_in_flight": len(report.in_flight) + sum(o.in_flight for o in orders),
            "new_fills_found": report.new_fills,
            "foreign_open_orders": len(report.foreign_open_orders),
            "foreign_fills": len(report.foreign_fills),
            "balance_mismatches": [{"asset": m.asset, "stored": m.stored, "venue": m.venue}
                                   for m in report.balance_mismatches],
            "orders_sent": len(orders),
            "orders_by_status": {str(s): sum(o.status is s for o in orders) for s in {o.status for o in orders}},
            "positions": {k: p.qty for k, p in positions.items()},
            "equity": self.equity(px, quote),
        }

    def update_risk(self, prices: Mapping[str, float], quote: str = "USDT") -> str:
        """Refresh balances from the broker, feed the marked-to-market equity to the risk engine;
        returns the risk state (HALTED / REDUCING trip here)."""
        self.store.save_balances(self.broker.balances().values(), self._clock())
        return str(self.risk.update_equity(self.equity(prices, quote), self._clock()))

    def equity(self, prices: Mapping[str, float], quote: str = "USDT") -> float:
        """Marked-to-market equity from the stored balances (assets valued via ``<asset>/<quote>`` prices)."""
        total = 0.0
        for b in self.store.balances().values():
            if b.asset == quote:
                total += b.total
            elif f"{b.asset}/{quote}" in prices:
                total += b.total * prices[f"{b.asset}/{quote}"]
        return total


__all__ = ["AccountLocked", "BalanceMismatch", "OrderManager", "ReconcileReport", "ledger_flows", "base_of", "quote_of"]
