"""Binance spot REST v3 public market-data endpoints, as ccxt's ``binance`` class calls them.

Shapes follow Binance: klines are 12-element rows with prices and volumes as decimal strings
(8 decimals); errors are ``{"code": ..., "msg": ...}`` with HTTP 400 (``-1121 Invalid symbol.``
makes ccxt raise ``BadSymbol``). Klines follow Binance's window rules: with ``startTime`` the first
``limit`` candles opening at or after it; otherwise the last ``limit`` candles up to ``endTime``
(or now), the one containing now being still open. ``limit`` defaults to 500 and is capped at 1000.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from quantdag.errors import DataError
from quantdag.sim.faults import PAGE_FAULTS, rewrite_page
from quantdag.sim.markets import SimMarket
from quantdag.sim.model import QUOTE_DECIMALS, KlineUnits, MarketModel, timeframe_supported
from quantdag.sim.routing import BinanceError, Route, SimRequest, SimResponse
from quantdag.timeframes import timeframe_ms

KLINES_DEFAULT_LIMIT, KLINES_MAX_LIMIT = 500, 1000
DEPTH_DEFAULT_LIMIT, DEPTH_MAX_LIMIT = 100, 5000
WEIGHT_LIMIT_PER_MINUTE = 6000

_ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]


def fmt_units(units: int, decimals: int) -> str:
    """Exact decimal string with Binance's 8 decimals from an integer count of ``10**-decimals``."""
    whole, frac = divmod(int(units), 10**decimals)
    if decimals == 0:
        return f"{whole}.00000000"
    return f"{whole}.{frac:0{decimals}d}{'0' * (8 - decimals)}"


def fmt_float(value: float, decimals: int) -> str:
    """A float already on a ``10**-decimals`` grid, as Binance's 8-decimal string."""
    return fmt_units(round(value * 10**decimals), decimals)


def kline_rows(units: KlineUnits) -> list[list[Any]]:
    """Binance kline rows ``[openTime, o, h, l, c, v, closeTime, quoteVol, trades, takerBase, takerQuote, "0"]``."""
    pd, qd, tf = units.price_decimals, units.qty_decimals, units.timeframe_ms
    cols = zip(
        units.open_time.tolist(), units.open.tolist(), units.high.tolist(), units.low.tolist(),
        units.close.tolist(), units.volume.tolist(), units.quote_volume.tolist(), units.trades.tolist(),
        units.taker_base.tolist(), units.taker_quote.tolist(), strict=False,
    )
    return [
        [t, fmt_units(o, pd), fmt_units(h, pd), fmt_units(lo, pd), fmt_units(c, pd), fmt_units(v, qd), t + tf - 1,
         fmt_units(q, QUOTE_DECIMALS), n, fmt_units(tb, qd), fmt_units(tq, QUOTE_DECIMALS), "0"]
        for t, o, h, lo, c, v, q, n, tb, tq in cols
    ]


# ---- parameter parsing ----------------------------------------------------------------------


def _int(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 20:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
    return int(raw)


def _mandatory(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


class PublicApi:
    """Handlers of the public endpoints over one :class:`MarketModel`."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model

    def routes(self) -> list[Route]:
        """The route table entries, with Binance's request weights."""
        return [
            Route("GET", "/api/v3/ping", self.ping, 1),
            Route("GET", "/api/v3/time", self.time, 1),
            Route("GET", "/api/v3/exchangeInfo", self.exchange_info, 20),
            Route("GET", "/api/v3/klines", self.klines, 2),
            Route("GET", "/api/v3/ticker/24hr", self.ticker_24hr, _ticker_weight),
            Route("GET", "/api/v3/ticker/price", self.ticker_price, _price_weight),
            Route("GET", "/api/v3/ticker/bookTicker", self.book_ticker, _price_weight),
            Route("GET", "/api/v3/depth", self.depth, _depth_weight),
        ]

    # ---- helpers -----------------------------------------------------------------------------

    def _market(self, symbol: str) -> SimMarket:
        spec = next((m for m in self.model.markets if m.id == symbol), None)
        if spec is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return spec

    def _markets(self, params: Mapping[str, str], *, required: bool = False) -> tuple[list[SimMarket], bool]:
        """Markets named by ``symbol`` or ``symbols`` (JSON list); ``(markets, single)``."""
        if "symbol" in params and "symbols" in params:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        if "symbol" in params or required:
            return [self._market(_mandatory(params, "symbol"))], True
        if "symbols" in params:
            try:
                names = json.loads(params["symbols"])
            except ValueError:
                names = None
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.")
            return [self._market(n) for n in names], False
        return list(self.model.markets), False

    # ---- endpoints ---------------------------------------------------------------------------

    def ping(self, req: SimRequest) -> SimResponse:
        return SimResponse(payload={})

    def time(self, req: SimRequest) -> SimResponse:
        return SimResponse(payload={"serverTime": self.model.now_ms()})

    def exchange_info(self, req: SimRequest) -> SimResponse:
        markets, _ = self._markets(req.params)
        return SimResponse(payload={
            "timezone": "UTC",
            "serverTime": self.model.now_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": WEIGHT_LIMIT_PER_MINUTE},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(m) for m in markets],
        })

    def klines(self, req: SimRequest) -> SimResponse:
        params = req.params
        spec = self._market(_mandatory(params, "symbol"))
        interval = _mandatory(params, "interval")
        if not timeframe_supported(interval):
            raise BinanceError(-1120, "Invalid interval.")
        limit = _int(params, "limit")
        limit = KLINES_DEFAULT_LIMIT if limit is None else limit
        if limit < 1:
            raise BinanceError(-1130, "Invalid data sent for a parameter.")
        limit = min(limit, KLINES_MAX_LIMIT)
        start, end = _int(params, "startTime"), _int(params, "endTime")
        if start is not None and end is not None and start > end:
            raise BinanceError(-1023, "Start time is greater than end time.")
        tf = timeframe_ms(interval)
        now = self.model.now_ms()
        lo, hi = self.model.genesis_ms, now // tf * tf
        if start is not None:
            lo = max(lo, -(-start // tf) * tf)
        if end is not None:
            hi = min(hi, end // tf * tf)
        if start is not None:
            hi = min(hi, lo + (limit - 1) * tf)
        else:
            lo = max(lo, hi - (limit - 1) * tf)
        try:
            rows = kline_rows(self.model.kline_units(spec.symbol, interval, lo, hi + 1, now_ms=now)) if hi >= lo else []
            draw = req.draw
            if draw is not None and draw.fault.kind in PAGE_FAULTS:
                k = max(1, round(draw.fault.fraction * max(len(rows), 1)))
                overlap = kline_rows(self.model.kline_units(spec.symbol, interval, lo - k * tf, lo, now_ms=now))
                live = kline_rows(self.model.kline_units(spec.symbol, interval, now // tf * tf, now + 1, now_ms=now))
                rows = rewrite_page(draw, rows, overlap=overlap, open_row=live[-1] if live else None, limit=limit)
        except DataError as exc:
            raise BinanceError(-1000, f"An unknown error occurred while processing the request. ({exc})", 500) from exc
        return SimResponse(payload=rows)

    def _ticker(self, spec: SimMarket) -> dict[str, Any]:
        t = self.model.ticker(spec.symbol)
        pd, qd = spec.price_decimals, spec.qty_decimals
        change = t.last - t.open
        return {
            "symbol": spec.id,
            "priceChange": fmt_float(change, pd) if change >= 0 else "-" + fmt_float(-change, pd),
            "priceChangePercent": f"{100.0 * change / t.open:.3f}",
            "weightedAvgPrice": f"{t.vwap:.8f}",
            "prevClosePrice": fmt_float(t.prev_close, pd),
            "lastPrice": fmt_float(t.last, pd),
            "lastQty": fmt_float(t.last_qty, qd),
            "bidPrice": fmt_float(t.bid, pd),
            "bidQty": fmt_float(t.bid_qty, qd),
            "askPrice": fmt_float(t.ask, pd),
            "askQty": fmt_float(t.ask_qty, qd),
            "openPrice": fmt_float(t.open, pd),
            "highPrice": fmt_float(t.high, pd),
            "lowPrice": fmt_float(t.low, pd),
            "volume": fmt_float(t.volume, qd),
            "quoteVolume": f"{t.quote_volume:.8f}",
            "openTime": t.open_time_ms,
            "closeTime": t.time_ms,
            "firstId": t.first_trade_id,
            "lastId": t.last_trade_id,
            "count": t.count,
        }

    def ticker_24hr(self, req: SimRequest) -> SimResponse:
        markets, single = self._markets(req.params)
        tickers = [self._ticker(m) for m in markets]
        return SimResponse(payload=tickers[0] if single else tickers)

    def ticker_price(self, req: SimRequest) -> SimResponse:
        markets, single = self._markets(req.params)
        now = self.model.now_ms()
        prices = []
        for m in markets:
            last = self.model.kline_units(m.symbol, "1m", now // 60_000 * 60_000, now + 1, now_ms=now).close
            prices.append({"symbol": m.id, "price": fmt_units(int(last[-1]), m.price_decimals)})
        return SimResponse(payload=prices[0] if single else prices)

    def book_ticker(self, req: SimRequest) -> SimResponse:
        markets, single = self._markets(req.params)
        now = self.model.now_ms()
        out = []
        for m in markets:
            book = self.model.order_book(m.symbol, 1, now_ms=now)
            out.append({
                "symbol": m.id,
                "bidPrice": fmt_float(book.bids[0, 0], m.price_decimals),
                "bidQty": fmt_float(book.bids[0, 1], m.qty_decimals),
                "askPrice": fmt_float(book.asks[0, 0], m.price_decimals),
                "askQty": fmt_float(book.asks[0, 1], m.qty_decimals),
            })
        return SimResponse(payload=out[0] if single else out)

    def depth(self, req: SimRequest) -> SimResponse:
        spec = self._market(_mandatory(req.params, "symbol"))
        limit = _int(req.params, "limit")
        limit = DEPTH_DEFAULT_LIMIT if limit is None else limit
        if not 1 <= limit <= DEPTH_MAX_LIMIT:
            raise BinanceError(-1130, "Invalid data sent for a parameter.")
        book = self.model.order_book(spec.symbol, limit)
        pd, qd = spec.price_decimals, spec.qty_decimals
        return SimResponse(payload={
            "lastUpdateId": book.last_update_id,
            "bids": [[fmt_float(p, pd), fmt_float(q, qd)] for p, q in book.bids.tolist()],
            "asks": [[fmt_float(p, pd), fmt_float(q, qd)] for p, q in book.asks.tolist()],
        })


def _symbol_info(m: SimMarket) -> dict[str, Any]:
    tick, step = fmt_units(1, m.price_decimals), fmt_units(1, m.qty_decimals)
    return {
        "symbol": m.id,
        "status": "TRADING",
        "baseAsset": m.base,
        "baseAssetPrecision": 8,
        "quoteAsset": m.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": _ORDER_TYPES,
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000", "stepSize": step},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100000.00000000",
             "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


# ---- request weights (Binance's published ones) --------------------------------------------


def _count_symbols(params: Mapping[str, str]) -> int | None:
    if "symbol" in params:
        return 1
    if "symbols" in params:
        try:
            names = json.loads(params["symbols"])
        except ValueError:
            return 1
        return len(names) if isinstance(names, list) else 1
    return None


def _ticker_weight(params: Mapping[str, str]) -> int:
    n = _count_symbols(params)
    if n is None or n > 100:
        return 80
    return 2 if n <= 20 else 40


def _price_weight(params: Mapping[str, str]) -> int:
    return 2 if "symbol" in params else 4


def _depth_weight(params: Mapping[str, str]) -> int:
    raw = params.get("limit", "")
    limit = int(raw) if raw.isdigit() else DEPTH_DEFAULT_LIMIT
    for bound, weight in ((100, 5), (500, 25), (1000, 50)):
        if limit <= bound:
            return weight
    return 250
