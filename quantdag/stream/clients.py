"""The ccxt.pro clients the streamer uses, and what each venue tells about a closed candle.

ccxt.pro's ``watch_ohlcv`` keeps a cache of candles that later messages overwrite, and drops
Binance's ``x`` (kline closed) flag; its ``watch_trades`` keeps the last ``tradesLimit`` trades, so a
slow reader loses the ones pushed out. For Binance (and the simulator, which speaks its shape)
:func:`make_client` returns a subclass that queues every closed kline (``k.x``) and every trade as
received, per market: nothing is overwritten or pushed out before the streamer takes it. Any other
ccxt.pro venue is used as ccxt ships it (``closed_flag`` False): a candle is closed when the stream
shows the next one, and its values are then read over REST (see :mod:`quantdag.stream.streamer`).
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

from quantdag.errors import ConfigurationError

#: the most items queued per market between two reads (a reader that falls further behind sees an id gap, backfilled)
QUEUE_MAX = 200_000
_OPTIONS: dict[str, Any] = {"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
                            "enableRateLimit": True, "newUpdates": False}  # fmt: skip


def _closed_kline_class() -> type:
    import ccxt.pro

    class ClosedKlineBinance(ccxt.pro.binance):  # type: ignore[misc, valid-type]
        """ccxt.pro binance that also queues every closed kline (``k.x``) and every trade per symbol, as sent."""

        closed_flag = True
        sequential_trade_ids = True

        def __init__(self, config: dict[str, Any] | None = None) -> None:
            super().__init__(config or {})
            self.closed_klines: dict[str, deque[list[float]]] = {}
            self.trade_queue: dict[str, deque[list[Any]]] = {}
            self.kline_messages = 0

        def handle_ohlcv(self, client: Any, message: dict) -> None:
            super().handle_ohlcv(client, message)
            self.kline_messages += 1
            k = message.get("k") or {}
            if k.get("x") is True and k.get("i") == "1m":
                symbol = self.safe_symbol(k.get("s"), None, None, "spot")
                row = [int(k["t"]), float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"]), float(k["v"])]
                self.closed_klines.setdefault(symbol, deque(maxlen=QUEUE_MAX)).append(row)

        def handle_trade(self, client: Any, message: dict) -> None:
            super().handle_trade(client, message)
            symbol = self.safe_symbol(message.get("s"), None, None, "spot")
            t = self.trades[symbol][-1]  # the trade just parsed (ccxt's own parser: same fields as REST's)
            self.trade_queue.setdefault(symbol, deque(maxlen=QUEUE_MAX)).append(trade_row(t))

    return ClosedKlineBinance


def trade_row(t: dict) -> list[Any]:
    """A ccxt trade as the streamer keeps it: [id, ts ms, price, amount, side]; a venue's non-numeric id
    becomes a stable 63-bit number (``market.trades.id`` is BIGINT)."""
    raw = str(t["id"])
    tid = int(raw) if raw.isdigit() else int.from_bytes(hashlib.blake2b(raw.encode(), digest_size=8).digest()) >> 1
    return [tid, int(t["timestamp"]), float(t["price"]), float(t["amount"]), t.get("side")]


def make_client(rest_url: str | None, ws_url: str | None, *, venue: str = "binance", closed_flag: bool = True,
                **config: Any) -> Any:  # fmt: skip
    """A ccxt.pro client of ``venue``; with urls, pointed at the simulator (REST ``.../api/v3``, ws ``.../ws``).

    Binance with ``closed_flag`` is the queueing subclass; ``closed_flag=False`` (or another venue) is
    plain ccxt.pro, whose closed candles the streamer confirms over REST.
    """
    import ccxt.pro

    options = {**_OPTIONS, **config}
    if venue == "binance" and closed_flag:
        ex = _closed_kline_class()(options)
    else:
        cls = getattr(ccxt.pro, venue, None)
        if cls is None:
            raise ConfigurationError(f"exchange.id {venue!r}: ccxt.pro has no websocket client for it "
                                     f"(one of {sorted(ccxt.pro.exchanges)[:8]}...)")  # fmt: skip
        ex = cls(options)
        ex.closed_flag = False
        ex.sequential_trade_ids = False
    if rest_url:
        ex.urls["api"]["public"] = ex.urls["api"]["private"] = rest_url.rstrip("/")
    if ws_url:
        ws = dict(ex.urls["api"]["ws"])
        ws["spot"] = ws["margin"] = ws_url.rstrip("/")
        ex.urls["api"]["ws"] = ws
    return ex


__all__ = ["QUEUE_MAX", "make_client", "trade_row"]
