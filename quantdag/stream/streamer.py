"""The streamer: closed 1m candles, trades and order books of the configured markets, with no silent gaps.

Per market and channel a loop awaits its stream under a watchdog (clients: :mod:`quantdag.stream.clients`):

- a stream quiet for ``watchdog_s`` (about twice its cadence; trades get four times that, a quiet
  market is not a dead socket), or a dropped connection, is a reconnect: the websocket is closed and
  reopened (ccxt.pro resubscribes every channel), recorded as a ``reconnect`` event;
- after every reconnect the missing interval is fetched over REST before newer streamed data is
  used: candles (``fetch_ohlcv`` since the last stored one) and trades (by id from the last stored
  one on venues with sequential ids, else by time); minutes or trades REST does not have either are a
  ``gap`` event. A closed candle more than a minute after the last one, or a trade id past the next,
  is the same: the skipped part is fetched first. Nothing synthetic is ever emitted: a gap stays one.
- a candle or trade at or before the last one (a duplicate, an out-of-order message) is dropped and
  counted (``dropped`` events);
- the order book is ccxt.pro's: a snapshot plus sequenced diffs; a diff whose first id does not follow
  the last applied one raises ``ChecksumError`` and the book is fetched again (a ``resnapshot`` event).
  Its top and depth are sampled every ``book_sample_ms`` of venue time.

On Binance-shaped venues a kline says when it is closed (``x``); elsewhere a candle is closed when the
stream shows the next one, and its values are read over REST (source ``confirm``). Candles go to the
landing area (:mod:`quantdag.stream.landing`) at once; trades, book samples and events every
``flush_s``; ``ingest`` moves them into the warehouse when the file is free. Connections are recycled
every ``recycle_s``; memory is bounded (ccxt's caches by their limits, our queues are drained).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from quantdag.stream.clients import make_client, trade_row
from quantdag.stream.landing import SCHEMAS, TS, write_batch

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
TRADE_PAGE = 1000
#: REST pages of trades one backfill may fetch; beyond them the rest is a gap event (a long outage of a busy market)
TRADE_BACKFILL_PAGES = 30


@dataclass
class StreamStats:
    """What a run did (the benchmark's and ``--seconds``' report)."""

    streamed: int = 0
    backfilled: int = 0
    dropped: Counter = field(default_factory=Counter)  # duplicate / out_of_order (candles)
    reconnects: Counter = field(default_factory=Counter)  # silence / disconnect / recycle
    backfills: int = 0
    gaps: list[tuple[str, int, int]] = field(default_factory=list)  # symbol, first and last missing open (ms)
    latency_ms: list[float] = field(default_factory=list)  # candle close (exchange event time) -> landed
    trades: Counter = field(default_factory=Counter)  # streamed / backfilled / dropped / missing
    book: Counter = field(default_factory=Counter)  # updates / samples / resnapshots

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latency_ms)
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None  # noqa: E731
        return {"streamed": self.streamed, "backfilled": self.backfilled, "dropped": dict(self.dropped),
                "reconnects": dict(self.reconnects), "backfills": self.backfills, "gaps": len(self.gaps),
                "latency_ms_p50": q(0.5), "latency_ms_p99": q(0.99), "trades": dict(self.trades),
                "book": dict(self.book)}  # fmt: skip


def _ms(dt_ms: int | None) -> datetime | None:
    return None if dt_ms is None else datetime.fromtimestamp(dt_ms / 1000, tz=timezone.utc)


class Streamer:
    """Candles of ``symbols``, trades of ``trades``, books of ``books`` into the landing area at ``root``.

    ``client_factory()`` makes a client (:func:`~quantdag.stream.clients.make_client`; a new one per
    reconnect); ``last_closed``: per symbol the open time (ms) of the last candle already stored and
    ``last_trade`` the (id, ms) of its last stored trade, so a restart backfills from there;
    ``on_candles`` is called after each candle landing write.
    """

    def __init__(self, client_factory: Callable[[], Any], symbols: Sequence[str], root: Path, *, exchange: str = "sim",
                 watchdog_s: float = 5.0, recycle_s: float = 3600.0, last_closed: dict[str, int] | None = None,
                 on_candles: Callable[[], None] | None = None, session: str | None = None, wall_clock: bool = True,
                 trades: Sequence[str] = (), books: Sequence[str] = (), book_levels: int = 10,
                 book_sample_ms: int = 1000, last_trade: dict[str, tuple[int, int]] | None = None,
                 flush_s: float = 1.0) -> None:  # fmt: skip
        self.factory = client_factory
        self.symbols = list(symbols)
        self.trade_symbols, self.book_symbols = list(trades), list(books)
        self.root = Path(root)
        self.exchange = exchange
        self.watchdog_s = watchdog_s
        self.recycle_s = recycle_s
        self.last = dict(last_closed or {})
        self.last_trade = dict(last_trade or {})
        self.on_candles = on_candles
        self.session = session or f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{os.getpid()}"
        self.book_levels, self.book_sample_ms, self.flush_s = book_levels, book_sample_ms, flush_s
        self.stats = StreamStats()
        self.client: Any = None
        self._opened = 0.0
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._buffers: dict[str, list[dict]] = {"trades": [], "book": [], "events": []}
        self._last_sample: dict[str, int] = {}
        self._seen_at_last: dict[str, set] = {}  # trade ids at the last trade's ms (venues without sequential ids)
        self.wall_clock = wall_clock  # the exchange's clock is the wall's: close -> landed latency is measurable

    def stop(self) -> None:
        self._stop.set()

    async def run(self, seconds: float | None = None) -> StreamStats:
        """Stream until :meth:`stop` (or for ``seconds``); closes the client and flushes what is buffered."""
        await self._connect("start")
        loops = [self._loop("ohlcv", s, self._candles_step, self._candles_catch_up, s in self.last) for s in self.symbols]
        loops += [self._loop("trades", s, self._trades_step, self._trades_catch_up, s in self.last_trade, 4.0)
                  for s in self.trade_symbols]  # fmt: skip
        loops += [self._loop("book", s, self._book_step, None, False) for s in self.book_symbols]
        tasks = [asyncio.create_task(c) for c in loops] + [asyncio.create_task(self._flusher())]
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
            self.flush()
        return self.stats

    # --- connection -------------------------------------------------------------------------------

    async def _reconnect(self, seen: Any, why: str) -> None:
        """Replace the client ``seen`` failed on, unless another loop already did."""
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
            self._event("ohlcv", "*", "reconnect", detail=why)
            log.warning("stream %s: reconnected (%s)", self.session, why)

    async def _close(self) -> None:
        if self.client is not None:
            try:
                await self.client.close()
            except Exception:  # a dead connection: nothing left to close
                pass
            self.client = None

    async def _loop(self, channel: str, symbol: str, step: Callable[[Any, str], Awaitable[None]],
                    catch_up: Callable[[str], Awaitable[None]] | None, need_catch_up: bool, quiet: float = 2.0) -> None:  # fmt: skip
        """One market's channel under the watchdog: ``step`` awaits one message and uses it; after a
        reconnect ``catch_up`` fetches what the stream missed, before the next ``step``."""
        from ccxt.base.errors import ChecksumError

        while not self._stop.is_set():
            client = self.client
            try:
                if need_catch_up and catch_up is not None:  # inside the try: a backfill the venue drops is retried
                    await catch_up(symbol)
                need_catch_up = False
                await asyncio.wait_for(step(client, symbol), timeout=self.watchdog_s * quiet / 2.0)
            except asyncio.TimeoutError:
                await self._reconnect(client, "silence")
                need_catch_up = True
                continue
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._stop.is_set() or (task is not None and task.cancelling()):
                    raise  # the run is ending
                # else a future of the old client that another loop's reconnect closed: this loop goes on
                need_catch_up = True
                continue
            except ChecksumError:  # the book missed a diff: ccxt dropped it; the next watch fetches a new snapshot
                self.stats.book["resnapshots"] += 1
                self._event(channel, symbol, "resnapshot", detail="sequence gap in the depth stream")
                continue
            except Exception as exc:  # ccxt NetworkError and friends: the connection is gone
                log.info("stream %s %s %s: %s", self.session, channel, symbol, type(exc).__name__)
                await asyncio.sleep(0.05)
                await self._reconnect(client, "disconnect")
                need_catch_up = True
                continue
            if time.monotonic() - self._opened > self.recycle_s:
                await self._reconnect(client, "recycle")
                need_catch_up = True

    # --- candles ----------------------------------------------------------------------------------

    async def _candles_step(self, client: Any, symbol: str) -> None:
        cache = await client.watch_ohlcv(symbol, "1m")
        if getattr(client, "closed_flag", False):
            await self._drain(symbol)
        else:
            await self._confirm(symbol, [int(r[0]) for r in cache])

    async def _candles_catch_up(self, symbol: str) -> None:
        await self._backfill(symbol, None)

    async def _drain(self, symbol: str) -> None:
        queue = self.client.closed_klines.get(symbol)
        rows = []
        while queue:
            rows.append(queue.popleft())
        for row in sorted(rows, key=lambda r: r[0]):
            last = self.last.get(symbol)
            if last is not None and row[0] <= last:
                why = "duplicate" if row[0] == last else "out_of_order"
                self.stats.dropped[why] += 1
                self._event("ohlcv", symbol, "dropped", first=row[0], last=row[0], detail=why)
                continue
            if last is not None and row[0] > last + MINUTE_MS:
                await self._backfill(symbol, row[0])  # the minutes the stream skipped, before this one
            self._land(symbol, [row], "stream")
            self.stats.streamed += 1

    async def _confirm(self, symbol: str, opens: list[int]) -> None:
        """A venue without a closed flag: every candle before the newest one shown is closed; read it over REST."""
        if not opens:
            return
        newest = max(opens)
        if symbol not in self.last:  # the first candle seen: closed candles start with the next one
            self.last[symbol] = newest - MINUTE_MS
            return
        if newest > self.last[symbol] + MINUTE_MS:
            await self._backfill(symbol, newest, source="confirm")

    async def _backfill(self, symbol: str, until_ms: int | None, *, source: str = "backfill") -> None:
        """REST candles after the last stored one, up to ``until_ms`` (exclusive) or the last closed."""
        last = self.last.get(symbol)
        if last is None:
            return
        self.stats.backfills += source == "backfill"
        end = until_ms
        if end is None:  # up to the minute forming on the exchange's clock, read first: what comes back after is closed
            now = int(await self.client.fetch_time())
            end = now - now % MINUTE_MS
        got: list[list[float]] = []
        for attempt in range(3 if source == "confirm" else 1):  # a venue's REST may lag its stream by a moment
            since = last + MINUTE_MS
            got = []
            while since < end:
                page = [r for r in await self.client.fetch_ohlcv(symbol, "1m", since=since, limit=1000) if r[0] < end]
                got += page
                if len(page) < 1000:
                    break
                since = page[-1][0] + MINUTE_MS
            if not got or got[-1][0] >= end - MINUTE_MS:
                break
            await asyncio.sleep(0.5)
        have = {int(r[0]) for r in got}
        missing = [t for t in range(last + MINUTE_MS, end, MINUTE_MS) if t not in have]
        if missing:
            self.stats.gaps.append((symbol, missing[0], missing[-1]))
            self._event("ohlcv", symbol, "gap", first=missing[0], last=missing[-1], count=len(missing),
                        detail="neither streamed nor on REST")  # fmt: skip
            log.warning("stream %s %s: %d minute(s) neither streamed nor on REST", self.session, symbol, len(missing))
        if got:
            self._land(symbol, got, source)
            if source == "backfill":
                self.stats.backfilled += len(got)
            else:
                self.stats.streamed += len(got)
        elif missing:
            self.last[symbol] = missing[-1]  # never asked again; the gap is on record

    def _land(self, symbol: str, rows: list[list[float]], source: str) -> None:
        now = datetime.now(timezone.utc)
        frame = pl.DataFrame(rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row").with_columns(
            pl.col("ts").cast(pl.Int64).cast(TS), exchange=pl.lit(self.exchange), symbol=pl.lit(symbol), timeframe=pl.lit("1m"),
            source=pl.lit(source), received_at=pl.lit(now).cast(TS),
        )  # fmt: skip
        write_batch(self.root, frame, session=self.session)
        self.last[symbol] = int(rows[-1][0])
        if source != "backfill" and self.wall_clock:
            self.stats.latency_ms.append(now.timestamp() * 1000 - (rows[-1][0] + MINUTE_MS))
        if self.on_candles is not None:
            self.on_candles()

    # --- trades -----------------------------------------------------------------------------------

    async def _trades_step(self, client: Any, symbol: str) -> None:
        cache = await client.watch_trades(symbol)
        queue = getattr(client, "trade_queue", {}).get(symbol)
        if queue is not None:
            rows = []
            while queue:
                rows.append(queue.popleft())
        else:  # plain ccxt.pro: its cache holds the last tradesLimit trades, so a reader that fell behind lost some
            last = self.last_trade.get(symbol, (None, -1))[1]
            if last >= 0 and cache and cache[0]["timestamp"] > last:  # none of the cache seen: some may be lost between
                await self._trades_catch_up(symbol)  # fetch them by time first
            last = self.last_trade.get(symbol, (None, -1))[1]
            rows = [trade_row(t) for t in cache if t["timestamp"] >= last]
        await self._take_trades(symbol, rows)

    def _is_new(self, symbol: str, row: list[Any], sequential: bool) -> bool:
        """Not stored yet: an id past the last (sequential ids), else a later time or an unseen id at the same ms."""
        last_id, last_ms = self.last_trade.get(symbol, (None, None))
        if last_id is None:
            return True
        if sequential:
            return row[0] > last_id
        return row[1] > last_ms or (row[1] == last_ms and row[0] not in self._seen_at_last.get(symbol, {last_id}))

    def _advance(self, symbol: str, row: list[Any]) -> None:
        last_ms = self.last_trade.get(symbol, (None, None))[1]
        seen = self._seen_at_last.get(symbol, set()) if row[1] == last_ms else set()
        self._seen_at_last[symbol] = seen | {row[0]}
        self.last_trade[symbol] = (row[0], row[1])

    async def _take_trades(self, symbol: str, rows: list[list[Any]]) -> None:
        sequential = getattr(self.client, "sequential_trade_ids", False)
        keep: list[list[Any]] = []
        for row in sorted(rows, key=lambda r: r[0] if sequential else r[1]):
            if not self._is_new(symbol, row, sequential):
                self.stats.trades["dropped"] += 1
                continue
            last_id = self.last_trade.get(symbol, (None, None))[0]
            if sequential and last_id is not None and row[0] > last_id + 1:  # ids skipped: fetch them first
                self._buffer_trades(symbol, keep, "stream")
                keep = []
                await self._trades_catch_up(symbol, until_id=row[0])
            keep.append(row)
            self._advance(symbol, row)
        self._buffer_trades(symbol, keep, "stream")

    async def _trades_catch_up(self, symbol: str, until_id: int | None = None) -> None:
        """REST trades after the last stored one, by id (``fromId``) on sequential-id venues, else by time;
        up to ``until_id`` (exclusive) or the newest. What REST does not give is a gap event."""
        if symbol not in self.last_trade:
            return
        self.stats.backfills += 1
        sequential = getattr(self.client, "sequential_trade_ids", False)
        got: list[list[Any]] = []
        for _ in range(TRADE_BACKFILL_PAGES):
            last_id, last_ms = self.last_trade[symbol]
            params = {"fromId": last_id + 1} if sequential else {}
            page = await self.client.fetch_trades(symbol, since=None if sequential else last_ms, limit=TRADE_PAGE, params=params)
            rows = [r for r in sorted((trade_row(t) for t in page), key=lambda r: r[0] if sequential else r[1])
                    if self._is_new(symbol, r, sequential) and (until_id is None or r[0] < until_id)]  # fmt: skip
            for r in rows:
                self._advance(symbol, r)
            got += rows
            if not rows or len(page) < TRADE_PAGE:
                break
        else:
            self._event("trades", symbol, "gap", first=self.last_trade[symbol][1], count=0,
                        detail=f"backfill stopped after {TRADE_BACKFILL_PAGES} pages; later trades not fetched")  # fmt: skip
        last_id = self.last_trade[symbol][0]
        if sequential and until_id is not None and last_id < until_id - 1:
            n = until_id - 1 - last_id
            self._event("trades", symbol, "gap", first=self.last_trade[symbol][1], count=n,
                        detail=f"trade ids {last_id + 1}..{until_id - 1} neither streamed nor on REST")  # fmt: skip
            self.stats.trades["missing"] += n
        self._buffer_trades(symbol, got, "backfill")

    def _buffer_trades(self, symbol: str, rows: list[list[Any]], source: str) -> None:
        if not rows:
            return
        now = datetime.now(timezone.utc)
        self.stats.trades["streamed" if source == "stream" else "backfilled"] += len(rows)
        self._buffers["trades"] += [{"exchange": self.exchange, "symbol": symbol, "id": r[0], "ts": _ms(r[1]), "price": r[2],
                                     "amount": r[3], "side": r[4], "source": source, "received_at": now} for r in rows]  # fmt: skip

    # --- order book -------------------------------------------------------------------------------

    async def _book_step(self, client: Any, symbol: str) -> None:
        ob = await client.watch_order_book(symbol)
        self.stats.book["updates"] += 1
        ts = ob.get("timestamp")  # None on a fresh snapshot (REST depth has no time): sampled from its first diff on
        if ts is None or ts - self._last_sample.get(symbol, -(10**15)) < self.book_sample_ms:
            return
        bids, asks = ob["bids"][: self.book_levels], ob["asks"][: self.book_levels]
        if not bids or not asks:
            return
        self._last_sample[symbol] = ts
        self.stats.book["samples"] += 1
        self._buffers["book"].append({
            "exchange": self.exchange, "symbol": symbol, "ts": _ms(ts), "nonce": ob.get("nonce"), "bid": bids[0][0],
            "ask": asks[0][0], "bid_qty": bids[0][1], "ask_qty": asks[0][1], "bid_depth": sum(p * q for p, q, *_ in bids),
            "ask_depth": sum(p * q for p, q, *_ in asks), "levels": self.book_levels,
            "received_at": datetime.now(timezone.utc)})  # fmt: skip

    # --- events and flushing ----------------------------------------------------------------------

    def _event(self, channel: str, symbol: str, kind: str, *, first: int | None = None, last: int | None = None,
               count: int = 1, detail: str | None = None) -> None:  # fmt: skip
        self._buffers["events"].append({"exchange": self.exchange, "symbol": symbol, "channel": channel, "kind": kind,
                                        "first_ts": _ms(first), "last_ts": _ms(last), "count": count, "detail": detail,
                                        "seen_at": datetime.now(timezone.utc)})  # fmt: skip

    def flush(self) -> None:
        """Land the buffered trades, book samples and events (one file per kind)."""
        for kind, rows in self._buffers.items():
            if rows:
                self._buffers[kind] = []
                schema = {c: t for c, t in SCHEMAS[kind].items() if c != "session"}
                write_batch(self.root, pl.DataFrame(rows, schema=schema, orient="row"), session=self.session, kind=kind)

    async def _flusher(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(self.flush_s)
            self.flush()


__all__ = ["StreamStats", "Streamer", "make_client"]
