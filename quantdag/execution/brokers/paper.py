"""Simulated fills against live prices, priced with the backtest's own cost model.

:class:`PaperBroker` fills a market order at a reference price (the live ticker's last price by
default, or whatever ``price_source`` returns) through :func:`quantdag.backtest.costs.fill` with a
:class:`~quantdag.backtest.settings.BacktestSettings`' ``fee``/``slippage`` (and its volatility
slippage model when the price source gives the current candle), after ``latency_ms``. Given the
same reference price, quantity and settings a paper fill and a backtest fill are identical.

Limit orders fill at once when marketable (at the better of limit and slipped price) and rest
otherwise; resting orders are checked against the price whenever the broker is asked about them.
State (orders, fills, balances) lives in memory; after a restart :meth:`restore` rebuilds it
from the order store's fill ledger and open orders (the order manager's ``reconcile`` does).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from quantdag.backtest.costs import fill as cost_fill
from quantdag.backtest.costs import slippage_rate
from quantdag.backtest.settings import BacktestSettings
from quantdag.errors import ConfigurationError, OrderRejected
from quantdag.execution.brokers.base import BrokerOrder
from quantdag.execution.types import OPEN, Balance, Fill, Order, OrderStatus, OrderType, Side, base_of, quote_of


@dataclass(frozen=True)
class Quote:
    """Reference price for a fill; ``high/low/close`` of the current candle feed the volatility slippage model."""

    price: float
    high: float | None = None
    low: float | None = None
    close: float | None = None


def ticker_source(client: object) -> Callable[[str], Quote]:
    """Prices from an :class:`~quantdag.exchange.client.ExchangeClient`'s ticker (last trade)."""

    def source(symbol: str) -> Quote:
        t = client.fetch_ticker(symbol)  # type: ignore[attr-defined]
        return Quote(float(t["last"]))

    return source


def paper_fill_price(quote: Quote, qty: float, side: Side, settings: BacktestSettings) -> tuple[float, float]:
    """(fill price, fee) of one paper fill: the backtest's cost model, nothing else."""
    if quote.high is not None and quote.low is not None and quote.close is not None:
        slip = slippage_rate(settings, quote.high, quote.low, quote.close)
    else:
        slip = settings.slippage
    f = cost_fill(quote.price, qty, str(side), fee=settings.fee, slippage=slip)
    return f.price, f.fee


class PaperBroker:
    """Paper trading account. See the module docstring.

    Parameters
    ----------
    price_source:
        ``symbol -> Quote`` (e.g. :func:`ticker_source` over the exchange resource).
    balances:
        Starting balances per asset.
    settings:
        Fee and slippage (default: the backtest defaults, 10 bps fee, 5 bps slippage).
    latency_ms:
        Delay between the order and the price it fills at.
    qty_step:
        Lot step per symbol for :meth:`round_qty` (default 1e-8).
    """

    def __init__(
        self,
        price_source: Callable[[str], Quote],
        *,
        balances: Mapping[str, float],
        settings: BacktestSettings | None = None,
        latency_ms: int = 0,
        qty_step: Mapping[str, float] | None = None,
        clock: Callable[[], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        name: str = "paper",
    ) -> None:
        if latency_ms < 0:
            raise ConfigurationError(f"latency_ms must be >= 0, got {latency_ms!r}")
        self.name = name
        self.settings = settings or BacktestSettings()
        self._source = price_source
        self._latency = latency_ms
        self._steps = dict(qty_step or {})
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._sleep = sleep
        self._initial = {a: float(v) for a, v in balances.items()}
        self._free = dict(self._initial)
        self._used: dict[str, float] = {}
        self._orders: dict[str, BrokerOrder] = {}
        self._limits: dict[str, Order] = {}
        self._fills: list[Fill] = []
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._lock = threading.RLock()

    def now_ms(self) -> int:
        return self._clock()

    def restore(self, fills: Iterable[Fill], open_orders: Iterable[Order] = ()) -> None:
        """Rebuild the account after a restart: balances and the trade-id counter from the fill
        ledger, and the resting limit orders from the store's open orders (their funds locked
        again, so they fill or cancel as if the process had never stopped). An open order with
        no exchange id was never acknowledged by the broker that died: the order manager
        resolves it as lost, so it is not re-rested."""
        with self._lock:
            self._fills = list(fills)
            for o in open_orders:
                if o.type is OrderType.LIMIT and o.exchange_order_id is not None and o.client_order_id not in self._orders:
                    self._limits[o.client_order_id] = o
                    self._orders[o.client_order_id] = BrokerOrder(
                        o.client_order_id, o.exchange_order_id, o.symbol, o.side, OrderStatus.SUBMITTED, o.qty, 0.0,
                        None, 0.0, o.ts_submitted or o.ts_created,
                    )  # fmt: skip
            self._free = dict(self._initial)
            self._used = {}
            for f in self._fills:
                self._book(f)
            for o in self._limits.values():
                asset, held = self._hold(o)
                self._free[asset] = self._free.get(asset, 0.0) - held
                self._used[asset] = self._used.get(asset, 0.0) + held
            top = max((int(f.trade_id.rsplit("-", 1)[-1]) for f in self._fills if f.trade_id.startswith("paper-")), default=0)
            self._trade_ids = itertools.count(top + 1)
            ids = [int(b.exchange_order_id[1:]) for b in self._orders.values() if b.exchange_order_id[1:].isdigit()]
            self._ids = itertools.count(max(ids, default=0) + 1)

    def _hold(self, order: Order) -> tuple[str, float]:
        """The asset and amount a resting limit order locks: quote for a buy (fee included), base for a sell."""
        if order.side is Side.BUY:
            return quote_of(order.symbol), order.qty * order.limit_price * (1 + self.settings.fee)  # type: ignore[operator]
        return base_of(order.symbol), order.qty

    def _book(self, f: Fill) -> None:
        base, quote = base_of(f.symbol), quote_of(f.symbol)
        self._free[base] = self._free.get(base, 0.0) + f.signed_qty
        self._free[quote] = self._free.get(quote, 0.0) - f.signed_qty * f.price - f.fee

    def submit(self, order: Order) -> BrokerOrder:
        with self._lock:
            if order.client_order_id in self._orders:
                return self._orders[order.client_order_id]
        if self._latency:
            self._sleep(self._latency / 1000)
        quote = self._source(order.symbol)
        with self._lock:
            price, fee = paper_fill_price(quote, order.qty, order.side, self.settings)
            base, q = base_of(order.symbol), quote_of(order.symbol)
            marketable = order.type is OrderType.MARKET or (
                price <= order.limit_price if order.side is Side.BUY else price >= order.limit_price  # type: ignore[operator]
            )
            px = price if order.type is OrderType.MARKET else (order.limit_price or price)
            need = order.qty * px * (1 + self.settings.fee) if order.side is Side.BUY else order.qty
            asset = q if order.side is Side.BUY else base
            if need > self._free.get(asset, 0.0) + 1e-9:
                err = OrderRejected(f"{self.name}: insufficient {asset} for {order.client_order_id}: "
                                    f"need {need:.8g}, free {self._free.get(asset, 0.0):.8g}")
                err.kind = "InsufficientFunds"  # type: ignore[attr-defined]
                raise err
            bo = BrokerOrder(order.client_order_id, f"P{next(self._ids)}", order.symbol, order.side,
                             OrderStatus.SUBMITTED, order.qty, 0.0, None, 0.0, self.now_ms())
            if marketable:
                if order.type is OrderType.LIMIT:
                    price = min(price, order.limit_price) if order.side is Side.BUY else max(price, order.limit_price)  # type: ignore[type-var]
                bo = self._execute(bo, price, fee)
            else:
                self._free[asset] -= need
                self._used[asset] = self._used.get(asset, 0.0) + need
                self._limits[order.client_order_id] = order
            self._orders[order.client_order_id] = bo
            return bo

    def _execute(self, bo: BrokerOrder, price: float, fee: float) -> BrokerOrder:
        f = Fill(f"paper-{next(self._trade_ids)}", bo.client_order_id, bo.symbol, bo.side, bo.qty, price, fee,
                 quote_of(bo.symbol), self.now_ms(), bo.exchange_order_id)
        self._book(f)
        self._fills.append(f)
        return replace(bo, status=OrderStatus.FILLED, filled_qty=bo.qty, avg_price=price, fee=fee, fills=(f,))

    def _poll(self) -> None:
        for cid, order in list(self._limits.items()):
            quote = self._source(order.symbol)
            if (quote.price <= order.limit_price) if order.side is Side.BUY else (quote.price >= order.limit_price):  # type: ignore[operator]
                self._unlock(order)
                _, fee = paper_fill_price(Quote(order.limit_price), order.qty, order.side,  # type: ignore[arg-type]
                                          replace(self.settings, slippage=0.0))
                self._orders[cid] = self._execute(self._orders[cid], order.limit_price, fee)  # type: ignore[arg-type]

    def _unlock(self, order: Order) -> None:
        self._limits.pop(order.client_order_id, None)
        asset, held = self._hold(order)
        self._used[asset] -= held
        self._free[asset] += held

    def fetch_order(self, client_order_id: str, symbol: str) -> BrokerOrder | None:
        with self._lock:
            self._poll()
            return self._orders.get(client_order_id)

    def cancel(self, client_order_id: str, symbol: str) -> BrokerOrder | None:
        with self._lock:
            self._poll()
            bo = self._orders.get(client_order_id)
            if bo is None or bo.status not in OPEN:
                return None
            self._unlock(self._limits[client_order_id])
            bo = replace(bo, status=OrderStatus.CANCELED)
            self._orders[client_order_id] = bo
            return bo

    def open_orders(self, symbol: str) -> list[BrokerOrder]:
        with self._lock:
            self._poll()
            return [o for o in self._orders.values() if o.symbol == symbol and o.status in OPEN]

    def order_fills(self, order: BrokerOrder) -> list[Fill]:
        with self._lock:
            return [f for f in self._fills if f.client_order_id == order.client_order_id]

    def fills_since(self, symbol: str, since_ms: int | None) -> list[Fill]:
        with self._lock:
            return [f for f in self._fills if f.symbol == symbol and (since_ms is None or f.ts >= since_ms)]

    def balances(self) -> dict[str, Balance]:
        with self._lock:
            assets = set(self._free) | set(self._used)
            return {a: Balance(a, self._free.get(a, 0.0), self._used.get(a, 0.0),
                               self._free.get(a, 0.0) + self._used.get(a, 0.0)) for a in sorted(assets)}

    def price(self, symbol: str) -> float:
        return self._source(symbol).price

    def round_qty(self, symbol: str, qty: float) -> float:
        step = self._steps.get(symbol, 1e-8)
        return math.floor(qty / step + 1e-9) * step
