"""Signed Binance spot v3 order endpoints for the simulated exchange: accounts, balances, matching.

Install on a server with :func:`install_orders`::

    with SimExchange(MarketModel(seed=7)) as sim:
        orders = install_orders(sim, api_key="k...", secret="s...", balances={"USDT": 100_000})
        ex = sim.ccxt_client(apiKey="k...", secret="s...")
        ex.create_order("BTC/USDT", "market", "buy", 0.01, params={"newClientOrderId": "abc"})

Endpoints (what ccxt's ``binance`` class calls for spot): ``POST/GET/DELETE /api/v3/order``,
``GET /api/v3/openOrders``, ``/api/v3/allOrders``, ``/api/v3/myTrades``, ``/api/v3/account``.
Every request is checked like Binance does: ``X-MBX-APIKEY`` header, HMAC-SHA256 ``signature`` over
the exact query string (GET/DELETE) or form body (POST), ``timestamp`` within ``recvWindow``.

Matching: MARKET orders walk the model's order book at the model clock's now (what is not filled
expires, like Binance); LIMIT orders take crossing levels at once and rest otherwise; resting orders
are matched on every signed request, at most once per book snapshot (the book changes each second),
against the crossing levels' quantity, so partial fills happen. Fees (``fee_rate`` of the notional)
are charged in the quote asset.

Faults: the server's :class:`~quantdag.sim.faults.FaultPlan` applies to these paths like any other
(``sim.inject("timeout", path="/api/v3/order")`` drops the request *before* it is handled). The
ambiguous case - the order is accepted but the client never gets the answer - is
:meth:`SimOrders.lose_responses`: ``"timeout"`` holds the response longer than the client waits,
``"server_error"`` answers 500 after the order was booked.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from quantdag.errors import ConfigurationError
from quantdag.sim.markets import SimMarket
from quantdag.sim.model import MarketModel
from quantdag.sim.public_api import fmt_float
from quantdag.sim.routing import BinanceError, Route, SimRequest, SimResponse

ORDER_PATH = "/api/v3/order"
_HTML_500 = b"<html><head><title>500 Internal Server Error</title></head><body>500</body></html>"
_OPEN = ("NEW", "PARTIALLY_FILLED")


@dataclass
class SimOrder:
    order_id: int
    client_order_id: str
    spec: SimMarket
    side: str  # BUY / SELL
    type: str  # MARKET / LIMIT
    qty_units: int
    price_units: int | None  # limit price in ticks
    time_ms: int
    status: str = "NEW"
    executed_units: int = 0
    quote_qty: float = 0.0
    update_ms: int = 0
    locked: float = 0.0  # funds held for a resting order (quote for buys, base for sells)
    last_match_s: int = -1
    fills: list[dict[str, Any]] = field(default_factory=list)

    def payload(self, *, with_fills: bool = False, transact: bool = False) -> dict[str, Any]:
        s = self.spec
        p, q = s.price_decimals, s.qty_decimals
        out: dict[str, Any] = {
            "symbol": s.id, "orderId": self.order_id, "orderListId": -1, "clientOrderId": self.client_order_id,
            "price": fmt_float((self.price_units or 0) / 10**p, 8),
            "origQty": fmt_float(self.qty_units / 10**q, 8),
            "executedQty": fmt_float(self.executed_units / 10**q, 8),
            "cummulativeQuoteQty": fmt_float(self.quote_qty, 8),
            "status": self.status, "timeInForce": "GTC" if self.type == "LIMIT" else "GTC",
            "type": self.type, "side": self.side, "stopPrice": "0.00000000", "icebergQty": "0.00000000",
            "workingTime": self.time_ms, "selfTradePreventionMode": "NONE",
        }
        if transact:
            out["transactTime"] = self.time_ms
        else:
            out.update(time=self.time_ms, updateTime=self.update_ms or self.time_ms, isWorking=True,
                       origQuoteOrderQty="0.00000000")
        if with_fills:
            out["fills"] = [
                {"price": f["price"], "qty": f["qty"], "commission": f["commission"],
                 "commissionAsset": f["commissionAsset"], "tradeId": f["id"]}
                for f in self.fills
            ]
        return out


class SimOrders:
    """One simulated spot account with an order book matcher; thread-safe.

    Parameters
    ----------
    model:
        Prices and books.
    api_key, secret:
        The only accepted key pair.
    balances:
        Starting free balance per asset.
    fee_rate:
        Commission as a fraction of the notional, charged in the quote asset.
    wall_ms:
        Clock for ``timestamp``/``recvWindow`` checks and order times (the client's clock is wall time).
    """

    def __init__(
        self,
        model: MarketModel,
        *,
        api_key: str,
        secret: str,
        balances: Mapping[str, float] | None = None,
        fee_rate: float = 0.001,
        wall_ms: Any = None,
    ) -> None:
        if not api_key or not secret:
            raise ConfigurationError("the simulated account needs an api_key and a secret")
        if not 0 <= fee_rate < 0.1:
            raise ConfigurationError(f"fee_rate must be in [0, 0.1), got {fee_rate!r}")
        self.model = model
        self._key = api_key
        self._secret = secret.encode()
        self.fee_rate = fee_rate
        self._wall = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.RLock()
        self._free: dict[str, float] = {a: float(v) for a, v in (balances or {}).items()}
        self._locked: dict[str, float] = {}
        self._orders: list[SimOrder] = []
        self._order_ids = itertools.count(1_000_001)
        self._trade_ids = itertools.count(5_000_001)
        self._trades: list[dict[str, Any]] = []
        self._lose: list[tuple[str, float]] = []  # scripted after-accept faults
        self._lose_random: tuple[float, str, float] | None = None
        self._lose_rng = random.Random(0)
        self.accepted = 0  # orders booked
        self.lost_responses = 0  # after-accept faults that fired

    # ---- wiring ------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("POST", ORDER_PATH, self.new_order, 1),
            Route("GET", ORDER_PATH, self.query_order, 4),
            Route("DELETE", ORDER_PATH, self.cancel_order, 1),
            Route("GET", "/api/v3/openOrders", self.open_orders, lambda p: 6 if "symbol" in p else 80),
            Route("GET", "/api/v3/allOrders", self.all_orders, 20),
            Route("GET", "/api/v3/myTrades", self.my_trades, 20),
            Route("GET", "/api/v3/account", self.account, 20),
        ]

    def lose_responses(self, count: int = 1, *, mode: str = "timeout", delay_s: float = 1.5,
                       probability: float | None = None, seed: int = 0) -> None:
        """Book the next ``count`` new orders but lose their answers (or each with ``probability``).

        ``mode="timeout"`` holds the answer ``delay_s`` (longer than the client's timeout) before
        sending it; ``"server_error"`` answers 500 with an HTML page.
        """
        if mode not in ("timeout", "server_error"):
            raise ConfigurationError(f"lose_responses mode must be 'timeout' or 'server_error', got {mode!r}")
        with self._lock:
            if probability is not None:
                self._lose_random = (float(probability), mode, delay_s) if probability > 0 else None
                self._lose_rng = random.Random(seed)
            else:
                self._lose.extend([(mode, delay_s)] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._lose.clear()
            self._lose_random = None

    # ---- inspection (tests) --------------------------------------------------------------------

    def orders(self) -> list[dict[str, Any]]:
        with self._lock:
            return [o.payload() for o in self._orders]

    def count_by_client_id(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for o in self._orders:
                out[o.client_order_id] = out.get(o.client_order_id, 0) + 1
            return out

    def trades(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(t) for t in self._trades]

    def balances(self) -> dict[str, tuple[float, float]]:
        with self._lock:
            assets = set(self._free) | set(self._locked)
            return {a: (self._free.get(a, 0.0), self._locked.get(a, 0.0)) for a in sorted(assets)}

    # ---- auth ----------------------------------------------------------------------------------

    def _auth(self, req: SimRequest) -> None:
        headers = {k.lower(): v for k, v in req.headers.items()}
        key = headers.get("x-mbx-apikey")
        if not key:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        if not hmac.compare_digest(key, self._key):
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        total = req.query + (req.body.decode("utf-8", "replace") if req.body else "")
        signed, sep, sig = total.rpartition("signature=")
        if not sep or (signed and not signed.endswith("&")):
            raise BinanceError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        signed = signed[:-1]
        sig = sig.split("&")[0]
        expected = hmac.new(self._secret, signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig, expected):
            raise BinanceError(-1022, "Signature for this request is not valid.", 401)
        try:
            ts = int(req.params["timestamp"])
            window = int(req.params.get("recvWindow", "5000"))
        except (KeyError, ValueError):
            raise BinanceError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.") from None
        if window > 60_000:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        now = self._wall()
        if ts > now + 1000 or now - ts > window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")

    def _spec(self, params: Mapping[str, str]) -> SimMarket:
        symbol = params.get("symbol")
        if not symbol:
            raise BinanceError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        spec = next((m for m in self.model.markets if m.id == symbol), None)
        if spec is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return spec

    # ---- matching ------------------------------------------------------------------------------

    def _take(self, order: SimOrder, levels: list[tuple[float, float]], now_s: int) -> None:
        """Fill ``order`` against ``levels`` ([(price, qty)] best first, already limited to crossing ones)."""
        s = order.spec
        q = 10**s.qty_decimals
        base, quote = s.base, s.quote
        for price, level_qty in levels:
            remaining = order.qty_units - order.executed_units
            if remaining <= 0:
                break
            units = min(remaining, int(round(level_qty * q)))
            if units <= 0:
                continue
            fill_price = price if order.type == "MARKET" or order.last_match_s < 0 else order.price_units / 10**s.price_decimals
            qty = units / q
            notional = qty * fill_price
            fee = notional * self.fee_rate
            if order.side == "BUY":
                cost = notional + fee
                if order.locked > 0:
                    use = min(order.locked, cost)
                    order.locked -= use
                    self._locked[quote] = self._locked.get(quote, 0.0) - use
                    self._free[quote] = self._free.get(quote, 0.0) - (cost - use)
                else:
                    self._free[quote] = self._free.get(quote, 0.0) - cost
                self._free[base] = self._free.get(base, 0.0) + qty
            else:
                if order.locked > 0:
                    use = min(order.locked, qty)
                    order.locked -= use
                    self._locked[base] = self._locked.get(base, 0.0) - use
                    self._free[base] = self._free.get(base, 0.0) - (qty - use)
                else:
                    self._free[base] = self._free.get(base, 0.0) - qty
                self._free[quote] = self._free.get(quote, 0.0) + notional - fee
            order.executed_units += units
            order.quote_qty += notional
            now = self._wall()
            order.update_ms = now
            trade = {
                "symbol": s.id, "id": next(self._trade_ids), "orderId": order.order_id, "orderListId": -1,
                "price": fmt_float(fill_price, 8), "qty": fmt_float(qty, 8), "quoteQty": fmt_float(notional, 8),
                "commission": fmt_float(fee, 8), "commissionAsset": quote, "time": now,
                "isBuyer": order.side == "BUY", "isMaker": order.type == "LIMIT" and order.last_match_s >= 0,
                "isBestMatch": True,
            }
            order.fills.append(trade)
            self._trades.append(trade)
        order.last_match_s = now_s
        if order.executed_units >= order.qty_units:
            order.status = "FILLED"
        elif order.executed_units > 0:
            order.status = "PARTIALLY_FILLED"

    def _crossing(self, order: SimOrder) -> tuple[list[tuple[float, float]], int]:
        now = self.model.now_ms()
        book = self.model.order_book(order.spec.symbol, 100, now_ms=now)
        side = book.asks if order.side == "BUY" else book.bids
        levels = [(float(p), float(qty)) for p, qty in side]
        if order.price_units is not None:
            limit = order.price_units / 10**order.spec.price_decimals
            levels = [(p, qty) for p, qty in levels if (p <= limit + 1e-12 if order.side == "BUY" else p >= limit - 1e-12)]
        return levels, now // 1000

    def _match_resting(self) -> None:
        for order in self._orders:
            if order.status not in _OPEN or order.type != "LIMIT":
                continue
            levels, now_s = self._crossing(order)
            if now_s == order.last_match_s or not levels:
                continue
            self._take(order, levels, now_s)
            if order.status == "FILLED":
                self._release(order)

    def _release(self, order: SimOrder) -> None:
        if order.locked > 0:
            asset = order.spec.quote if order.side == "BUY" else order.spec.base
            self._locked[asset] = self._locked.get(asset, 0.0) - order.locked
            self._free[asset] = self._free.get(asset, 0.0) + order.locked
            order.locked = 0.0

    # ---- endpoints -----------------------------------------------------------------------------

    def new_order(self, req: SimRequest) -> SimResponse:
        self._auth(req)
        p = req.params
        spec = self._spec(p)
        side, otype = p.get("side", "").upper(), p.get("type", "").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1100, "Illegal characters found in parameter 'side'.")
        if otype not in ("MARKET", "LIMIT"):
            raise BinanceError(-1116, "Invalid orderType.")
        try:
            qty = float(p["quantity"])
        except (KeyError, ValueError):
            raise BinanceError(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.") from None
        qty_units = round(qty * 10**spec.qty_decimals)
        if qty <= 0 or abs(qty_units - qty * 10**spec.qty_decimals) > 1e-6:
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        price_units = None
        if otype == "LIMIT":
            try:
                price = float(p["price"])
            except (KeyError, ValueError):
                raise BinanceError(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.") from None
            price_units = round(price * 10**spec.price_decimals)
            if price <= 0 or abs(price_units - price * 10**spec.price_decimals) > 1e-6:
                raise BinanceError(-1013, "Filter failure: PRICE_FILTER")
        cid = p.get("newClientOrderId") or f"sim-{next(self._order_ids)}"
        resp_type = p.get("newOrderRespType", "FULL" if otype == "MARKET" else "ACK")
        with self._lock:
            self._match_resting()
            if any(o.client_order_id == cid and o.status in _OPEN for o in self._orders):
                raise BinanceError(-2010, "Duplicate order sent.")
            now = self._wall()
            order = SimOrder(next(self._order_ids), cid, spec, side, otype, qty_units, price_units, now)
            levels, now_s = self._crossing(order)
            ref = levels[0][0] if levels else self.model.ticker(spec.symbol).last
            est_price = price_units / 10**spec.price_decimals if price_units is not None else ref
            if qty * est_price < 5.0:
                raise BinanceError(-1013, "Filter failure: NOTIONAL")
            if side == "BUY":
                need = (qty * est_price if otype == "LIMIT" else _walk_cost(levels, qty)) * (1 + self.fee_rate)
                have = self._free.get(spec.quote, 0.0)
            else:
                need, have = qty, self._free.get(spec.base, 0.0)
            if need > have + 1e-9:
                raise BinanceError(-2010, "Account has insufficient balance for requested action.")
            self._orders.append(order)
            self.accepted += 1
            if levels:
                self._take(order, levels, now_s)
            if otype == "MARKET" and order.status not in ("FILLED",):
                order.status = "EXPIRED"  # book exhausted, like Binance
            elif otype == "LIMIT" and order.status in _OPEN:
                remaining = (order.qty_units - order.executed_units) / 10**spec.qty_decimals
                asset = spec.quote if side == "BUY" else spec.base
                amount = remaining * est_price * (1 + self.fee_rate) if side == "BUY" else remaining
                self._free[asset] = self._free.get(asset, 0.0) - amount
                self._locked[asset] = self._locked.get(asset, 0.0) + amount
                order.locked = amount
            if resp_type == "ACK":
                body = {"symbol": spec.id, "orderId": order.order_id, "orderListId": -1,
                        "clientOrderId": cid, "transactTime": order.time_ms}
            else:
                body = order.payload(with_fills=resp_type == "FULL", transact=True)
            lost = self._draw_lost()
        if lost is not None:
            self.lost_responses += 1
            mode, delay = lost
            if mode == "timeout":
                time.sleep(delay)  # the client has given up by now; the order stays booked
            else:
                return SimResponse(500, body=_HTML_500, content_type="text/html; charset=utf-8")
        return SimResponse(payload=body)

    def _draw_lost(self) -> tuple[str, float] | None:
        if self._lose:
            return self._lose.pop(0)
        if self._lose_random is not None:
            prob, mode, delay = self._lose_random
            if self._lose_rng.random() < prob:
                return mode, delay
        return None

    def _find(self, spec: SimMarket, params: Mapping[str, str]) -> SimOrder | None:
        oid, cid = params.get("orderId"), params.get("origClientOrderId")
        if oid is None and cid is None:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        for o in reversed(self._orders):
            if o.spec.id == spec.id and ((oid is not None and str(o.order_id) == oid) or (oid is None and o.client_order_id == cid)):
                return o
        return None

    def query_order(self, req: SimRequest) -> SimResponse:
        self._auth(req)
        spec = self._spec(req.params)
        with self._lock:
            self._match_resting()
            order = self._find(spec, req.params)
            if order is None:
                raise BinanceError(-2013, "Order does not exist.")
            return SimResponse(payload=order.payload())

    def cancel_order(self, req: SimRequest) -> SimResponse:
        self._auth(req)
        spec = self._spec(req.params)
        with self._lock:
            self._match_resting()
            order = self._find(spec, req.params)
            if order is None or order.status not in _OPEN:
                raise BinanceError(-2011, "Unknown order sent.")
            order.status = "CANCELED"
            order.update_ms = self._wall()
            self._release(order)
            return SimResponse(payload=order.payload(transact=True))

    def open_orders(self, req: SimRequest) -> SimResponse:
        self._auth(req)
        spec = self._spec(req.params) if "symbol" in req.params else None
        with self._lock:
            self._match_resting()
            return SimResponse(payload=[o.payload() for o in self._orders
                                        if o.status in _OPEN and (spec is None or o.spec.id == spec.id)])

    def all_orders(self, req: SimRequest) -> SimResponse:
        self._auth(req)
        spec = self._spec(req.params)
        p = req.params
        start, end = int(p.get("startTime", 0)), int(p.get("endTime", 2**62))
        oid = int(p.get("orderId", 0))
        limit = min(int(p.get("limit", 500)), 1000)
        with self._lock:
            self._match_resting()
            rows = [o.payload() for o in self._orders
                    if o.spec.id == spec.id and o.order_id >= oid and start <= o.time_ms <= end]
        return SimResponse(payload=rows[:limit])

    def my_trades(self, req: SimRequest) -> SimResponse:
        self._auth(req)
        spec = self._spec(req.params)
        p = req.params
        start, end = int(p.get("startTime", 0)), int(p.get("endTime", 2**62))
        from_id = int(p.get("fromId", 0))
        oid = p.get("orderId")
        limit = min(int(p.get("limit", 500)), 1000)
        with self._lock:
            self._match_resting()
            rows = [dict(t) for t in self._trades
                    if t["symbol"] == spec.id and t["id"] >= from_id and start <= t["time"] <= end
                    and (oid is None or str(t["orderId"]) == oid)]
        return SimResponse(payload=rows[:limit])

    def account(self, req: SimRequest) -> SimResponse:
        self._auth(req)
        with self._lock:
            self._match_resting()
            balances = [{"asset": a, "free": fmt_float(max(f, 0.0), 8), "locked": fmt_float(max(lk, 0.0), 8)}
                        for a, (f, lk) in self.balances().items()]
        return SimResponse(payload={
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self._wall(),
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 1,
        })


def _walk_cost(levels: list[tuple[float, float]], qty: float) -> float:
    cost, left = 0.0, qty
    for price, level_qty in levels:
        take = min(left, level_qty)
        cost += take * price
        left -= take
        if left <= 1e-12:
            break
    if left > 1e-12 and levels:  # beyond the book: price the rest at its worst level
        cost += left * levels[-1][0]
    return cost


def install_orders(sim: Any, *, api_key: str, secret: str, balances: Mapping[str, float] | None = None,
                   fee_rate: float = 0.001) -> SimOrders:
    """Create a :class:`SimOrders` account over ``sim.model`` and register its routes on ``sim``."""
    orders = SimOrders(sim.model, api_key=api_key, secret=secret, balances=balances, fee_rate=fee_rate)
    for route in orders.routes():
        sim.add_route(route)
    sim.orders = orders
    return orders


__all__ = ["ORDER_PATH", "SimOrder", "SimOrders", "install_orders"]
