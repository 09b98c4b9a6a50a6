"""A real exchange (or the simulator) through ccxt: create_order / fetch_order / cancel_order / fetch_balance.

Submission goes straight to ``client.ccxt.create_order`` exactly once (never through the retrying
``ExchangeClient._call``: a blind resend could duplicate the order); queries, cancels and balances
are idempotent and use the bounded retries. Testnet is :attr:`ExchangeConfig.sandbox`.
Error messages are scrubbed of registered secrets before they leave this module.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ccxt

from quantdag.errors import ExchangeError, ExchangeUnavailable, OrderRejected
from quantdag.exchange.client import ExchangeClient
from quantdag.exchange.secrets import scrub
from quantdag.execution.brokers.base import BrokerOrder
from quantdag.execution.types import Balance, Fill, Order, OrderStatus, OrderType, Side, quote_of

log = logging.getLogger(__name__)

#: Definitive refusals: the order does not exist and must not be retried.
_DEFINITIVE = (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.BadSymbol, ccxt.AuthenticationError,
               ccxt.PermissionDenied, ccxt.BadRequest, ccxt.NotSupported, ccxt.AccountSuspended)
_STATUS = {"closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED, "expired": OrderStatus.EXPIRED,
           "rejected": OrderStatus.REJECTED}


class CcxtBroker:
    """Orders through an :class:`~quantdag.exchange.client.ExchangeClient` (which holds the credentials)."""

    #: Trades per ``fetch_my_trades`` page (Binance's maximum).
    trades_page: int = 1000

    def __init__(self, client: ExchangeClient, *, name: str | None = None) -> None:
        self.client = client
        self.ex = client.ccxt
        self.name = name or client.config.venue_name

    def __repr__(self) -> str:
        return f"CcxtBroker({self.name!r})"

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def _markets(self) -> None:
        if not self.ex.markets:
            self.client.markets()

    # ---- orders ----------------------------------------------------------------------------

    def submit(self, order: Order) -> BrokerOrder:
        self._markets()
        price = order.limit_price if order.type is OrderType.LIMIT else None
        try:
            raw = self.ex.create_order(order.symbol, str(order.type), str(order.side), order.qty, price,
                                       {"newClientOrderId": order.client_order_id})
        except ccxt.InvalidOrder as exc:
            if "Duplicate order" in str(exc):  # an order with this id is open: outcome known only by a query
                raise ExchangeUnavailable(f"{self.name} submit {order.client_order_id}: duplicate id reported",
                                          kind=type(exc).__name__) from None
            raise OrderRejected(scrub(f"{self.name} refused {order.client_order_id}: {exc}")) from None
        except _DEFINITIVE as exc:
            err = OrderRejected(scrub(f"{self.name} refused {order.client_order_id}: {exc}"))
            err.kind = type(exc).__name__  # type: ignore[attr-defined]
            raise err from None
        except ccxt.BaseError as exc:  # network, 5xx, 429, timeouts, garbage: outcome unknown
            raise ExchangeUnavailable(scrub(f"{self.name} submit {order.client_order_id} outcome unknown: "
                                            f"{type(exc).__name__}"), kind=type(exc).__name__) from None
        return self._parse(raw, order.client_order_id)

    def fetch_order(self, client_order_id: str, symbol: str) -> BrokerOrder | None:
        self._markets()
        try:
            raw = self.client._call(lambda: self.ex.fetch_order(None, symbol, {"clientOrderId": client_order_id}),
                                    f"fetch_order {client_order_id}")
        except ExchangeError as exc:
            if exc.kind == "OrderNotFound":
                return None
            raise
        return self._parse(raw, client_order_id)

    def fetch_order_by_id(self, exchange_order_id: str, symbol: str) -> BrokerOrder | None:
        """The venue's view of an order known only by its exchange id (e.g. behind a fill we cannot
        place); its ``client_order_id`` is the venue's (empty if it has none). None if not found."""
        self._markets()
        try:
            raw = self.client._call(lambda: self.ex.fetch_order(exchange_order_id, symbol),
                                    f"fetch_order id {exchange_order_id}")
        except ExchangeError as exc:
            if exc.kind == "OrderNotFound":
                return None
            raise
        return self._parse(raw, "")

    def cancel(self, client_order_id: str, symbol: str) -> BrokerOrder | None:
        self._markets()
        try:
            raw = self.client._call(lambda: self.ex.cancel_order(None, symbol, {"clientOrderId": client_order_id}),
                                    f"cancel_order {client_order_id}")
        except ExchangeError as exc:
            if exc.kind in ("OrderNotFound", "OperationRejected"):
                return None
            raise
        return self._parse(raw, client_order_id)

    def open_orders(self, symbol: str) -> list[BrokerOrder]:
        self._markets()
        rows = self.client._call(lambda: self.ex.fetch_open_orders(symbol), f"fetch_open_orders {symbol}")
        return [self._parse(r, r.get("clientOrderId") or "") for r in rows]

    def order_fills(self, order: BrokerOrder) -> list[Fill]:
        self._markets()
        rows = self.client._call(
            lambda: self.ex.fetch_my_trades(order.symbol, None, None, {"orderId": order.exchange_order_id}),
            f"fetch_my_trades {order.symbol} order {order.exchange_order_id}",
        )
        return [self._fill(t, order.client_order_id, order.side) for t in rows]

    def fills_since(self, symbol: str, since_ms: int | None) -> list[Fill]:
        """Every trade of ``symbol`` from ``since_ms`` on, however many pages that takes: the first
        page by time, the next ones by trade id (``fromId``, which Binance will not combine with a
        time), until a page comes back short. A reconcile after a long outage thus sees every fill."""
        self._markets()
        page = self.trades_page
        rows = self.client._call(lambda: self.ex.fetch_my_trades(symbol, since_ms, page), f"fetch_my_trades {symbol}")
        out = list(rows)
        while len(rows) >= page:
            last = max(int(t["id"]) for t in rows)
            rows = self.client._call(lambda: self.ex.fetch_my_trades(symbol, None, page, {"fromId": last + 1}),
                                     f"fetch_my_trades {symbol} fromId {last + 1}")
            out += rows
        return [self._fill(t, None, None) for t in out]

    def balances(self) -> dict[str, Balance]:
        raw = self.client._call(self.ex.fetch_balance, "fetch_balance")
        out = {}
        for asset, b in raw.items():
            if isinstance(b, dict) and "total" in b and asset not in ("info", "free", "used", "total"):
                out[asset] = Balance(asset, float(b.get("free") or 0), float(b.get("used") or 0), float(b.get("total") or 0))
        return out

    def price(self, symbol: str) -> float:
        t = self.client.fetch_ticker(symbol)
        bid, ask = t.get("bid"), t.get("ask")
        return (bid + ask) / 2 if bid and ask else float(t["last"])

    def round_qty(self, symbol: str, qty: float) -> float:
        self._markets()
        step = self.ex.markets[symbol]["precision"]["amount"]
        return float(int(qty / step + 1e-9) * step) if step else qty

    # ---- parsing ---------------------------------------------------------------------------

    def _parse(self, raw: dict[str, Any], client_order_id: str) -> BrokerOrder:
        filled = float(raw.get("filled") or 0.0)
        status = _STATUS.get(raw.get("status") or "", None)
        if status is None:
            status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
        side = Side(raw["side"])
        cid = raw.get("clientOrderId") or client_order_id
        ts = int(raw.get("timestamp") or raw.get("lastTradeTimestamp") or self.now_ms())
        fee = raw.get("fee") or {}
        fills = tuple(self._fill(t, cid, side, default_ts=ts) for t in raw.get("trades") or [])
        return BrokerOrder(
            client_order_id=cid, exchange_order_id=str(raw["id"]), symbol=raw["symbol"], side=side,
            status=status, qty=float(raw.get("amount") or 0.0), filled_qty=filled,
            avg_price=float(raw["average"]) if raw.get("average") else None,
            fee=float(fee.get("cost") or 0.0), ts=ts, fills=fills,
        )

    def _fill(self, t: dict[str, Any], cid: str | None, side: Side | None, default_ts: int | None = None) -> Fill:
        fee = t.get("fee") or {}
        return Fill(
            trade_id=str(t["id"]), client_order_id=cid, symbol=t["symbol"],
            side=Side(t.get("side") or side), qty=float(t["amount"]), price=float(t["price"]),
            fee=float(fee.get("cost") or 0.0), fee_asset=fee.get("currency") or quote_of(t["symbol"]),
            ts=int(t.get("timestamp") or default_ts or self.now_ms()),
            exchange_order_id=str(t["order"]) if t.get("order") is not None else None,
        )
