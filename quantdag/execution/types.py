"""Value types of order management: sides, order types and statuses, orders, fills, positions, balances.

Everything here is immutable; an order changes state only through :func:`quantdag.execution.state.apply`,
which returns a new :class:`Order`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from quantdag.errors import ConfigurationError, DataError


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    NEW = "new"  # created (risk-checked), not yet handed to the broker
    SUBMITTED = "submitted"  # written ahead and sent (or about to be); ack or not (see Order.in_flight)
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})
OPEN = frozenset({OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED})


class OrderEvent(StrEnum):
    SUBMIT = "submit"  # handed to the broker (write-ahead done)
    ACCEPT = "accept"  # the broker acknowledged it (exchange order id known)
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"  # completely filled
    CANCEL = "cancel"
    REJECT = "reject"
    EXPIRE = "expire"


def _check_qty(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise DataError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True)
class Order:
    """One order as the OMS knows it. ``qty`` is in base units; prices in quote units."""

    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    qty: float
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    status: OrderStatus = OrderStatus.NEW
    exchange_order_id: str | None = None
    filled_qty: float = 0.0
    avg_price: float | None = None
    fee: float = 0.0
    parent_id: str | None = None
    intent: str = ""
    reason: str | None = None
    ts_created: int = 0  # ms since the epoch
    ts_submitted: int | None = None
    ts_acked: int | None = None
    ts_updated: int = 0

    def __post_init__(self) -> None:
        _check_qty(f"order {self.client_order_id} qty", self.qty)
        if self.type is OrderType.LIMIT:
            if self.limit_price is None:
                raise ConfigurationError(f"limit order {self.client_order_id} needs a limit_price")
            _check_qty(f"order {self.client_order_id} limit_price", self.limit_price)

    @property
    def in_flight(self) -> bool:
        """Sent (or possibly sent) but never acknowledged: its outcome must be resolved by a query."""
        return self.status is OrderStatus.SUBMITTED and self.exchange_order_id is None

    @property
    def remaining(self) -> float:
        return max(0.0, self.qty - self.filled_qty)

    @property
    def signed_qty(self) -> float:
        return self.side.sign * self.qty

    def with_(self, **changes: object) -> Order:
        return replace(self, **changes)


@dataclass(frozen=True)
class Fill:
    """One execution. ``fee`` is in ``fee_asset`` (the quote asset on the simulator and the paper broker)."""

    trade_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    qty: float
    price: float
    fee: float
    fee_asset: str
    ts: int
    exchange_order_id: str | None = None

    @property
    def signed_qty(self) -> float:
        return self.side.sign * self.qty

    @property
    def notional(self) -> float:
        return self.qty * self.price


@dataclass(frozen=True)
class Position:
    """Net position in one symbol: signed ``qty`` (a sell fill reduces it), average entry and realised P&L.

    ``realised_pnl`` is gross of fees; ``fees`` sums the fees valued in the quote asset (a base-asset
    fee at its fill's price; a fee in a third asset such as BNB is not valued here).
    """

    symbol: str
    qty: float = 0.0
    avg_price: float = 0.0
    realised_pnl: float = 0.0
    fees: float = 0.0
    ts: int = 0

    def apply(self, fill: Fill) -> Position:
        """The position after ``fill``. A fee charged in the base asset (Binance's default on a
        buy without BNB) comes out of the holding: buying 1 BTC with a 0.001 BTC fee leaves 0.999."""
        base_fee = fill.fee if fill.fee_asset == base_of(self.symbol) else 0.0
        q, p, dq = self.qty, self.avg_price, fill.signed_qty - base_fee
        realised = self.realised_pnl
        if q == 0 or (q > 0) == (dq > 0):  # opening or adding
            new_q = q + dq
            new_p = (abs(q) * p + abs(dq) * fill.price) / abs(new_q)
        else:  # reducing, closing or flipping
            closed = min(abs(q), abs(dq))
            realised += closed * (fill.price - p) * (1 if q > 0 else -1)
            new_q = q + dq
            if abs(new_q) < 1e-12:
                new_q, new_p = 0.0, 0.0
            elif (new_q > 0) == (q > 0):
                new_p = p
            else:
                new_p = fill.price
        if fill.fee_asset == quote_of(self.symbol):
            fee = fill.fee
        elif base_fee:
            fee = base_fee * fill.price
        else:  # a third asset (e.g. BNB) has no price here: the account balances carry that fee
            fee = 0.0
        return Position(self.symbol, new_q, new_p, realised, self.fees + fee, max(self.ts, fill.ts))

    def unrealised(self, price: float) -> float:
        return self.qty * (price - self.avg_price)


@dataclass(frozen=True)
class Balance:
    asset: str
    free: float
    used: float
    total: float


def base_of(symbol: str) -> str:
    return symbol.split("/")[0]


def quote_of(symbol: str) -> str:
    return symbol.split("/")[1].split(":")[0]


def positions_from_fills(fills: list[Fill]) -> dict[str, Position]:
    """Replay a fill ledger (in time order) into positions: the definition positions must match."""
    out: dict[str, Position] = {}
    for f in sorted(fills, key=lambda f: (f.ts, f.trade_id)):
        out[f.symbol] = out.get(f.symbol, Position(f.symbol)).apply(f)
    return out
