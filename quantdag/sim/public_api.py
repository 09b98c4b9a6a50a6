"""Binance spot REST v3 public market-data endpoints, as ccxt's ``binance`` class calls them.

Shapes follow Binance: klines are 12-element rows with prices and volumes as decimal strings
(8 decimals); errors are ``{"code": ..., "msg": ...}`` with HTTP 400 (``-1121 Invalid symbol.``
makes ccxt raise ``BadSymbol``). Klines follow Binance's window rules: with ``startTime`` the first
``limit`` candles opening at or after it; otherwise the last ``limit`` candles up to ``endTime``
(or now), the one containing now being still open. ``limit`` defaults to 500 and is capped at 1000.

Trades (``/api/v3/trades``, ``/historicalTrades``, ``/aggTrades``) come from :class:`TradeTape`: every
1-minute candle's trades are drawn from the model's seed and the minute, so the same trades are
served whenever they are asked for, and streamed (see :mod:`quantdag.sim.stream`). Their ids run
from the candle's first trade id (the ticker's ``firstId``) over its trade count, their sizes sum to
its volume (the taker buys to its taker-buy volume) and the first, highest, lowest and last prices
are its open, high, low and close. Each aggregate trade holds exactly one trade, so an aggregate id
equals its trade id (``a == f == l``): ids agree whichever endpoint or stream a client uses.

The order book (``/api/v3/depth``) is the model's book of :data:`BOOK_LEVELS` levels a side (it is
redrawn every simulated second); ``limit`` returns its top levels. ``lastUpdateId`` is the clock's
now in ms, consistent with the depth stream, whose event for second ``s`` has
``U = (s - 1) * 1000 + 1`` and ``u = s * 1000``.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantdag.errors import DataError
from quantdag.sim.faults import PAGE_FAULTS, rewrite_page
from quantdag.sim.markets import SimMarket
from quantdag.sim.model import QUOTE_DECIMALS, KlineUnits, MarketModel, OrderBook, timeframe_supported
from quantdag.sim.paths import MS_PER_MINUTE, series_rng
from quantdag.sim.routing import BinanceError, Route, SimRequest, SimResponse
from quantdag.timeframes import timeframe_ms

KLINES_DEFAULT_LIMIT, KLINES_MAX_LIMIT = 500, 1000
DEPTH_DEFAULT_LIMIT, DEPTH_MAX_LIMIT = 100, 5000
TRADES_DEFAULT_LIMIT, TRADES_MAX_LIMIT = 500, 1000
#: Levels a side of the simulated book: every depth limit is served from this one book, so a
#: snapshot and the depth stream describe the same levels (the model's book depends on its depth).
BOOK_LEVELS = 100
AGG_TRADES_MAX_WINDOW_MS = 3_600_000
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


# ---- trades ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeBlock:
    """Trades as exact integers, in id order: times (ms), prices (ticks), quantities (lot steps)."""

    spec: SimMarket
    ids: np.ndarray
    time: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    buyer_maker: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)

    def take(self, index: Any) -> TradeBlock:
        """The trades selected by a slice or boolean mask."""
        return TradeBlock(self.spec, self.ids[index], self.time[index], self.price[index], self.qty[index],
                          self.buyer_maker[index])

    @staticmethod
    def concat(spec: SimMarket, blocks: list[TradeBlock]) -> TradeBlock:
        if not blocks:
            empty = np.empty(0, dtype=np.int64)
            return TradeBlock(spec, empty, empty, empty, empty, np.empty(0, dtype=bool))
        return TradeBlock(spec, *(np.concatenate([getattr(b, f) for b in blocks])
                                  for f in ("ids", "time", "price", "qty", "buyer_maker")))

    def quote_units(self) -> tuple[np.ndarray, int]:
        """price x quantity as integers and their decimals (at most 8, rounded if the product has more)."""
        decimals = self.spec.price_decimals + self.spec.qty_decimals
        raw = self.price * self.qty
        if decimals <= 8:
            return raw, decimals
        scale = 10 ** (decimals - 8)
        return (raw + scale // 2) // scale, 8


def minute_trades(model: MarketModel, spec: SimMarket, minute: int) -> TradeBlock:
    """Every trade of the 1-minute candle opening at ``minute * 60000`` ms (the whole minute, even if open).

    Drawn from the model's seed and the minute only. The ids are the candle's ``[f, f + n)``; times
    follow the model's within-minute volume profile (the trade count of the open candle at second
    ``k`` is the number of trades before second ``k``) and prices its within-minute path, with the
    first, highest, lowest and last trades at the candle's open, high, low and close. Sizes are
    positive lot counts summing to the volume, taker buys (``buyer_maker`` false) to the taker-buy
    volume, whenever the candle's counts allow it (they always do for the default markets).
    """
    t0 = minute * MS_PER_MINUTE
    units = model.kline_units(spec.symbol, "1m", t0, t0 + MS_PER_MINUTE, now_ms=t0 + MS_PER_MINUTE)
    if len(units) != 1:
        raise DataError(f"{spec.symbol}: no candle at {t0}")
    o, h, low, c = (int(x[0]) for x in (units.open, units.high, units.low, units.close))
    v, n, tb = int(units.volume[0]), int(units.trades[0]), int(units.taker_base[0])
    tb = min(max(tb, 0), v)
    index = (t0 - model.genesis_ms) // MS_PER_MINUTE
    first_id = model._trade_id_before(spec, index)
    # the within-minute path and trade counts the open candle is served from, second by second
    partial = np.array([model._partial_minute(spec, minute, k) for k in range(61)])
    path = partial[:, 3].astype(float)
    counts = np.minimum(np.maximum.accumulate(partial[:, 5]), n)
    counts[0], counts[60] = 0, n
    per_second = np.diff(counts)
    rng = series_rng(model.seed, "trades:" + spec.symbol, minute)
    second = np.repeat(np.arange(60), per_second)
    offset = rng.integers(0, 1000, size=n)
    offset = offset[np.lexsort((offset, second))]  # ``second`` is sorted: times never go back
    time = t0 + second * 1000 + offset
    frac = offset / 1000.0
    base = path[second] + (path[second + 1] - path[second]) * frac
    noise = rng.standard_normal(n) * max(1.0, (h - low) * 0.05)
    price = np.clip(np.rint(base + noise), low, h).astype(np.int64)
    if n:
        price[0] = o
        fixed = {0, n - 1}
        for level, at in ((h, int(np.argmax(path))), (low, int(np.argmin(path)))):
            if n > len(fixed) and level != price[0] and level != c:
                near = np.argsort(np.abs(time - (t0 + at * 1000)), kind="stable")
                i = next(int(j) for j in near if int(j) not in fixed)
                price[i] = level
                fixed.add(i)
        price[n - 1] = c
    buyer_maker, qty = _sides_and_sizes(rng, n, v, tb)
    ids = first_id + np.arange(n, dtype=np.int64)
    return TradeBlock(spec, ids, time.astype(np.int64), price, qty, buyer_maker)


def _sides_and_sizes(rng: np.random.Generator, n: int, v: int, tb: int) -> tuple[np.ndarray, np.ndarray]:
    """Which trades are taker sells (buyer is maker) and their sizes: buys sum to ``tb``, all to ``v``."""
    if n == 0:
        return np.empty(0, dtype=bool), np.empty(0, dtype=np.int64)
    lo = max(n - (v - tb), 1 if tb > 0 else 0)
    hi = min(tb, n - 1 if tb < v else n)
    target = round(n * tb / v) if v > 0 else 0
    k = min(max(target, lo), hi) if lo <= hi else min(max(target, 0), n)
    buys = np.zeros(n, dtype=bool)
    buys[rng.permutation(n)[:k]] = True
    weights = rng.exponential(size=n)
    qty = np.zeros(n, dtype=np.int64)
    for mask, total in ((buys, tb), (~buys, v - tb)):
        m = int(mask.sum())
        if m == 0:
            continue
        floor = 1 if total >= m else 0  # positive sizes whenever the candle's volume allows
        w = weights[mask]
        qty[mask] = floor + rng.multinomial(total - floor * m, w / w.sum())
    return ~buys, qty


class TradeTape:
    """Trades of a :class:`MarketModel` by time or id, minutes cached; thread-safe.

    Parameters
    ----------
    model:
        The markets.
    cache_minutes:
        Generated minutes kept (a minute of BTC/USDT is about 1,500 trades).
    """

    def __init__(self, model: MarketModel, cache_minutes: int = 256) -> None:
        self.model = model
        self._cache: OrderedDict[tuple[str, int], TradeBlock] = OrderedDict()
        self._size = cache_minutes
        self._lock = threading.Lock()

    def minute(self, spec: SimMarket, minute: int) -> TradeBlock:
        """All trades of one minute (``minute`` counted from the epoch)."""
        key = (spec.symbol, minute)
        with self._lock:
            block = self._cache.get(key)
            if block is not None:
                self._cache.move_to_end(key)
                return block
        block = minute_trades(self.model, spec, minute)
        with self._lock:
            self._cache[key] = block
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return block

    def between(self, spec: SimMarket, start_ms: int, end_ms: int, now_ms: int) -> TradeBlock:
        """Trades with ``start_ms < time <= end_ms`` (and not after now), in id order."""
        end = min(end_ms, now_ms)
        first = max(start_ms + 1, self.model.genesis_ms) // MS_PER_MINUTE
        blocks = []
        for minute in range(first, end // MS_PER_MINUTE + 1):
            block = self.minute(spec, minute)
            keep = (block.time > start_ms) & (block.time <= end)
            blocks.append(block.take(keep))
        return TradeBlock.concat(spec, blocks)

    def page(self, spec: SimMarket, now_ms: int, limit: int, *, start_ms: int | None = None,
             end_ms: int | None = None, from_id: int | None = None) -> TradeBlock:
        """Binance's trade pages: the first ``limit`` trades from ``from_id`` or ``start_ms`` (inclusive),
        else the last ``limit`` up to ``end_ms`` (inclusive) or now; never a trade after now."""
        self.model.warm(now_ms)
        end = now_ms if end_ms is None else min(end_ms, now_ms)
        now_minute = now_ms // MS_PER_MINUTE
        if end < self.model.genesis_ms:
            return TradeBlock.concat(spec, [])
        if from_id is None and start_ms is None:
            blocks: list[TradeBlock] = []
            got = 0
            for minute in range(end // MS_PER_MINUTE, self.model.genesis_ms // MS_PER_MINUTE - 1, -1):
                block = self.minute(spec, minute)
                block = block.take(block.time <= end)
                blocks.insert(0, block)
                got += len(block)
                if got >= limit:
                    break
            out = TradeBlock.concat(spec, blocks)
            return out.take(slice(max(0, len(out) - limit), None))
        if from_id is not None:
            minute = self._minute_of_id(spec, from_id, now_minute)
        else:
            minute = max(start_ms, self.model.genesis_ms) // MS_PER_MINUTE  # type: ignore[arg-type]
        blocks, got = [], 0
        while minute <= end // MS_PER_MINUTE and got < limit:
            block = self.minute(spec, minute)
            keep = block.time <= end
            if from_id is not None:
                keep &= block.ids >= from_id
            if start_ms is not None:
                keep &= block.time >= start_ms
            block = block.take(keep)
            blocks.append(block)
            got += len(block)
            minute += 1
        return TradeBlock.concat(spec, blocks).take(slice(0, limit))

    def _minute_of_id(self, spec: SimMarket, trade_id: int, now_minute: int) -> int:
        """The minute holding ``trade_id`` (the first minute if it is older, now's if it is newer)."""
        g = self.model.genesis_ms // MS_PER_MINUTE
        lo, hi = 0, now_minute - g
        if trade_id < self.model._trade_id_before(spec, 0):
            return g
        while lo < hi:  # last index whose first id <= trade_id
            mid = (lo + hi + 1) // 2
            if self.model._trade_id_before(spec, mid) <= trade_id:
                lo = mid
            else:
                hi = mid - 1
        return g + lo


def book_levels(model: MarketModel, spec: SimMarket, now_ms: int) -> OrderBook:
    """The one simulated book at ``now_ms``: :data:`BOOK_LEVELS` levels a side, fixed within each second."""
    return model.order_book(spec.symbol, BOOK_LEVELS, now_ms=now_ms)


def trade_rows(block: TradeBlock) -> list[dict[str, Any]]:
    """``/api/v3/trades`` rows: id, price, qty, quoteQty, time, isBuyerMaker, isBestMatch."""
    pd, qd = block.spec.price_decimals, block.spec.qty_decimals
    quote, quote_decimals = block.quote_units()
    return [
        {"id": i, "price": fmt_units(p, pd), "qty": fmt_units(q, qd), "quoteQty": fmt_units(qq, quote_decimals),
         "time": t, "isBuyerMaker": m, "isBestMatch": True}
        for i, p, q, qq, t, m in zip(block.ids.tolist(), block.price.tolist(), block.qty.tolist(), quote.tolist(),
                                     block.time.tolist(), block.buyer_maker.tolist(), strict=True)
    ]


def agg_trade_rows(block: TradeBlock) -> list[dict[str, Any]]:
    """``/api/v3/aggTrades`` rows ``{a, p, q, f, l, T, m, M}``; every aggregate is one trade (a == f == l)."""
    pd, qd = block.spec.price_decimals, block.spec.qty_decimals
    return [
        {"a": i, "p": fmt_units(p, pd), "q": fmt_units(q, qd), "f": i, "l": i, "T": t, "m": m, "M": True}
        for i, p, q, t, m in zip(block.ids.tolist(), block.price.tolist(), block.qty.tolist(), block.time.tolist(),
                                 block.buyer_maker.tolist(), strict=True)
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

    def __init__(self, model: MarketModel, tape: TradeTape | None = None) -> None:
        self.model = model
        self.tape = tape if tape is not None else TradeTape(model)

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
            Route("GET", "/api/v3/trades", self.trades, 25),
            Route("GET", "/api/v3/historicalTrades", self.historical_trades, 25),
            Route("GET", "/api/v3/aggTrades", self.agg_trades, 4),
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
        book = book_levels(self.model, spec, self.model.now_ms())
        pd, qd = spec.price_decimals, spec.qty_decimals
        return SimResponse(payload={
            "lastUpdateId": book.last_update_id,
            "bids": [[fmt_float(p, pd), fmt_float(q, qd)] for p, q in book.bids[:limit].tolist()],
            "asks": [[fmt_float(p, pd), fmt_float(q, qd)] for p, q in book.asks[:limit].tolist()],
        })

    # ---- trades ------------------------------------------------------------------------------

    def _trade_page(self, params: Mapping[str, str], *, times: bool, ids: bool) -> TradeBlock:
        spec = self._market(_mandatory(params, "symbol"))
        limit = _int(params, "limit")
        limit = TRADES_DEFAULT_LIMIT if limit is None else limit
        if limit < 1:
            raise BinanceError(-1130, "Invalid data sent for a parameter.")
        limit = min(limit, TRADES_MAX_LIMIT)
        start = _int(params, "startTime") if times else None
        end = _int(params, "endTime") if times else None
        from_id = _int(params, "fromId") if ids else None
        if start is not None and end is not None:
            if start > end:
                raise BinanceError(-1023, "Start time is greater than end time.")
            if end - start > AGG_TRADES_MAX_WINDOW_MS:
                raise BinanceError(-1127, "More than 1 hours between startTime and endTime.")
        now = self.model.now_ms()
        try:
            return self.tape.page(spec, now, limit, start_ms=start, end_ms=end, from_id=from_id)
        except DataError as exc:
            raise BinanceError(-1000, f"An unknown error occurred while processing the request. ({exc})", 500) from exc

    def trades(self, req: SimRequest) -> SimResponse:
        """``/api/v3/trades``: the most recent ``limit`` trades."""
        return SimResponse(payload=trade_rows(self._trade_page(req.params, times=False, ids=False)))

    def historical_trades(self, req: SimRequest) -> SimResponse:
        """``/api/v3/historicalTrades``: ``limit`` trades from ``fromId`` (default: the most recent)."""
        return SimResponse(payload=trade_rows(self._trade_page(req.params, times=False, ids=True)))

    def agg_trades(self, req: SimRequest) -> SimResponse:
        """``/api/v3/aggTrades`` by ``fromId`` or ``startTime``/``endTime`` (inclusive), one trade each."""
        return SimResponse(payload=agg_trade_rows(self._trade_page(req.params, times=True, ids=True)))


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
