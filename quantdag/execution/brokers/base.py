"""The broker interface the order manager talks to, and the broker's view of one order.

Contract of :meth:`Broker.submit`: it sends once and never retries. It raises
:class:`~quantdag.errors.OrderRejected` when the broker definitively refused the order (insufficient
funds, invalid order, bad symbol, auth), and :class:`~quantdag.errors.ExchangeUnavailable` when the
outcome is unknown (timeout, 5xx, 429, connection reset, unparseable answer): the order may or may
not exist, and only :meth:`Broker.fetch_order` can tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from quantdag.execution.types import Balance, Fill, Order, OrderStatus, Side


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker reports it."""

    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: Side
    status: OrderStatus  # SUBMITTED (open, nothing filled), PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED
    qty: float
    filled_qty: float
    avg_price: float | None
    fee: float
    ts: int
    fills: tuple[Fill, ...] = field(default=())  # when the answer carried them (may be incomplete)


@runtime_checkable
class Broker(Protocol):
    name: str

    def submit(self, order: Order) -> BrokerOrder: ...

    def fetch_order(self, client_order_id: str, symbol: str) -> BrokerOrder | None: ...

    def cancel(self, client_order_id: str, symbol: str) -> BrokerOrder | None: ...

    def open_orders(self, symbol: str) -> list[BrokerOrder]: ...

    def order_fills(self, order: BrokerOrder) -> list[Fill]: ...

    def fills_since(self, symbol: str, since_ms: int | None) -> list[Fill]: ...

    def balances(self) -> dict[str, Balance]: ...

    def price(self, symbol: str) -> float: ...

    def round_qty(self, symbol: str, qty: float) -> float: ...

    def now_ms(self) -> int: ...
