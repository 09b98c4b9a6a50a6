"""The streamer: closed 1m candles of the configured markets over websockets, with no silent gaps.

ccxt.pro's ``watch_ohlcv`` keeps a cache of candles that later messages overwrite, and drops
Binance's ``x`` (kline closed) flag. :class:`ClosedKlineBinance` keeps it: every kline message
with ``x = true`` is a final candle, queued per market; nothing else is ever emitted (a forming
candle never passes for a traded one). Per market a loop awaits the stream under a watchdog:

- a stream quiet for ``watchdog_s`` (about twice its cadence), or a dropped connection, is a
  reconnect: the websocket is closed and reopened (ccxt.pro resubscribes), and
- after every reconnect, and whenever a closed candle arrives more than one minute after the last
  one, the missing minutes are fetched over REST (``fetch_ohlcv`` since the last stored candle)
  before any newer streamed candle is used; minutes REST does not have either are a gap event.
- a candle at or before the last one (a duplicate, an out-of-order message) is dropped and counted.

Candles go to the landing area (:mod:`quantdag.stream.landing`) at once; ``ingest`` moves them into
the warehouse when the file is free. Connections are recycled every ``recycle_s``; memory is
bounded (ccxt's caches are capped by ``OHLCVLimit``, ours hold one minute's queue).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from quantdag.stream.landing import TS, write_batch

log = logging.getLogger(__name__)

MINUTE_MS = 60_000


def _closed_kline_class() -> type:
    import ccxt.pro

    class ClosedKlineBinance(ccxt.pro.binance):  # type: ignore[misc, valid-type]
        """ccxt.pro binance that also queues every closed kline (``k.x``) per symbol, as sent."""

        def __init__(self, config: dict[str, Any] | None = None) -> None:
            super().__init__(config or {})
            self.closed_klines: dict[str, deque[list[float]]] = {}
            self.kline_messages = 0

        def handle_ohlcv(self, client: Any, message: dict) -> None:
            super().handle_ohlcv(client, message)
            self.kline_messages += 1
            k = message.get("k") or {}
            if k.get("x") is True and k.get("i") == "1m":
                symbol = self.safe_symbol(k.get("s"), None, None, "spot")
                row = [int(k["t"]), float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"]), float(k["v"])]
                self.closed_klines.setdefault(symbol, deque(maxlen=10_000)).append(row)

    return ClosedKlineBinance


def make_client(rest_url: str | None, ws_url: str | None, **config: Any) -> Any:
    """A :class:`ClosedKlineBinance`; with urls, pointed at the simulator (REST ``.../api/v3``, ws ``.../ws``)."""
    options: dict[str, Any] = {"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
                               "enableRateLimit": True, "newUpdates": False}  # fmt: skip
    options.update(config)
    ex = _closed_kline_class()(options)
    if rest_url:
        ex.urls["api"]["public"] = ex.urls["api"]["private"] = rest_url.rstrip("/")
    if ws_url:
        ws = dict(ex.urls["api"]["ws"])
        ws["spot"] = ws["margin"] = ws_url.rstrip("/")
        ex.urls["api"]["ws"] = ws
    return ex


@dataclass
class StreamStats:
    """What a run did (the benchmark's and ``--seconds``' report)."""

    streamed: int = 0
    backfilled: int = 0
    dropped: Counter = field(default_factory=Counter)  # duplicate / out_of_order
    reconnects: Counter = field(default_factory=Counter)  # silence / disconnect / recycle
    backfills: int = 0
    gaps: list[tuple[str, int, int]] = field(default_factory=list)  # symbol, first and last missing open (ms)
    latency_ms: list[float] = field(default_factory=list)  # candle close (exchange event time) -> landed

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latency_ms)
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None  # noqa: E731
        return {"streamed": self.streamed, "backfilled": self.backfilled, "dropped": dict(self.dropped),
                "reconnects": dict(self.reconnects), "backfills": self.backfills, "gaps": len(self.gaps),
                "latency_ms_p50": q(0.5), "latency_ms_p99": q(0.99)}  # fmt: skip


class Streamer:
    """Closed 1m candles of ``symbols`` into the landing area at ``root`` (see the module docstring).

    ``client_factory()`` makes a :class:`ClosedKlineBinance` (a new one per reconnect);
    ``last_closed``: per symbol the open time (ms) of the last candle already stored, so a restart
    backfills from there; ``on_candles`` is called (in a worker thread) after each landing write.
    """

    def __init__(self, client_factory: Callable[[], Any], symbols: Sequence[str], root: Path, *, exchange: str = "sim",
                 watchdog_s: float = 5.0, recycle_s: float = 3600.0, last_closed: dict[str, int] | None = None,
                 on_candles: Callable[[], None] | None = None, session: str | None = None,
                 wall_clock: bool = True) -> None:  # fmt: skip
        self.factory = client_factory
        self.symbols = list(symbols)
        self.root = Path(root)
        self.exchange = exchange
        self.watchdog_s = watchdog_s
        self.recycle_s = recycle_s
        self.last = dict(last_closed or {})
        self.on_candles = on_candles
        self.session = session or f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{os.getpid()}"
        self.stats = StreamStats()
        self.client: Any = None
        self._opened = 0.0
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self.wall_clock = wall_clock  # the exchange's clock is the wall's: close -> landed latency is measurable

    def stop(self) -> None:
        self._stop.set()

    async def run(self, seconds: float | None = None) -> StreamStats:
        """Stream until :meth:`stop` (or for ``seconds``); closes the client."""
        await self._connect("start")
        tasks = [asyncio.create_task(self._market(s)) for s in self.symbols]
        try:
            if seconds is None:
                await self._stop.wait()
            else:
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=seconds)
                except asyncio.TimeoutError:
                    pass
        finally:
            self._stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._close()
        return self.stats

    async def _reconnect(self, seen: Any, why: str) -> None:
        """Replace the client ``seen`` failed on, unless another market's loop already did."""
        async with self._lock:
            if self.client is seen:
                await self._connect(why)

    async def _connect(self, why: str) -> None:
        old, self.client = self.client, None
        if old is not None:
            try:
                await old.close()
            except Exception:  # a dead connection: nothing left to close
                pass
        client = self.factory()
        await client.load_markets()
        self.client = client
        self._opened = time.monotonic()
        if why != "start":
            self.stats.reconnects[why] += 1
            log.warning("stream %s: reconnected (%s)", self.session, why)

    async def _close(self) -> None:
        if self.client is not None:
            try:
                await self.client.close()
            except Exception:  # a dead connection: nothing left to close
                pass
            self.client = None

    async def _market(self, symbol: str) -> None:
        need_backfill = symbol in self.last  # a restart: the minutes since the last stored candle
        while not self._stop.is_set():
            client = self.client
            try:
                if need_backfill:  # inside the try: a backfill the venue drops is retried after a reconnect
                    await self._backfill(symbol, None)
                    need_backfill = False
                await asyncio.wait_for(client.watch_ohlcv(symbol, "1m"), timeout=self.watchdog_s)
                await self._drain(symbol)  # may backfill: a failure leaves ``last`` where it was, refetched next time
            except asyncio.TimeoutError:
                await self._reconnect(client, "silence")
                need_backfill = True
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # ccxt NetworkError and friends: the connection is gone
                log.info("stream %s %s: %s", self.session, symbol, type(exc).__name__)
                await asyncio.sleep(0.05)
                await self._reconnect(client, "disconnect")
                need_backfill = True
                continue
            if time.monotonic() - self._opened > self.recycle_s:
                await self._reconnect(client, "recycle")
                need_backfill = True

    async def _drain(self, symbol: str) -> None:
        queue = self.client.closed_klines.get(symbol)
        rows = []
        while queue:
            rows.append(queue.popleft())
        for row in sorted(rows, key=lambda r: r[0]):
            last = self.last.get(symbol)
            if last is not None and row[0] <= last:
                self.stats.dropped["duplicate" if row[0] == last else "out_of_order"] += 1
                continue
            if last is not None and row[0] > last + MINUTE_MS:
                await self._backfill(symbol, row[0])  # the minutes the stream skipped, before this one
            self._land(symbol, [row], "stream")
            self.stats.streamed += 1

    async def _backfill(self, symbol: str, until_ms: int | None) -> None:
        """REST candles after the last stored one, up to ``until_ms`` (exclusive) or the last closed."""
        last = self.last.get(symbol)
        if last is None:
            return
        self.stats.backfills += 1
        end = until_ms
        if end is None:  # up to the minute forming on the exchange's clock, read first: what comes back after is closed
            now = int(await self.client.fetch_time())
            end = now - now % MINUTE_MS
        since = last + MINUTE_MS
        got: list[list[float]] = []
        while since < end:
            page = [r for r in await self.client.fetch_ohlcv(symbol, "1m", since=since, limit=1000) if r[0] < end]
            got += page
            if len(page) < 1000:
                break
            since = page[-1][0] + MINUTE_MS
        closed = got
        have = {int(r[0]) for r in closed}
        missing = [t for t in range(last + MINUTE_MS, end, MINUTE_MS) if t not in have]
        if missing:
            self.stats.gaps.append((symbol, missing[0], missing[-1]))
            log.warning("stream %s %s: %d minute(s) neither streamed nor on REST", self.session, symbol, len(missing))
        if closed:
            self._land(symbol, closed, "backfill")
            self.stats.backfilled += len(closed)

    def _land(self, symbol: str, rows: list[list[float]], source: str) -> None:
        now = datetime.now(timezone.utc)
        frame = pl.DataFrame(rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row").with_columns(
            pl.col("ts").cast(pl.Int64).cast(TS), exchange=pl.lit(self.exchange), symbol=pl.lit(symbol), timeframe=pl.lit("1m"),
            source=pl.lit(source), received_at=pl.lit(now).cast(TS),
        )  # fmt: skip
        write_batch(self.root, frame, session=self.session)
        self.last[symbol] = int(rows[-1][0])
        if source == "stream" and self.wall_clock:
            self.stats.latency_ms.append(now.timestamp() * 1000 - (rows[-1][0] + MINUTE_MS))
        if self.on_candles is not None:
            self.on_candles()
