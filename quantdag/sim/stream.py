"""The simulated exchange's websocket market streams, in Binance's spot stream shape.

Driven by the same :class:`~quantdag.sim.model.MarketModel` and clock as the REST API, so a streamed
candle, trade or book level describes the same market a later REST call returns (see
:mod:`quantdag.sim.public_api` for the trade tape and the book). A speed factor on the clock
(:meth:`~quantdag.sim.clock.SimClock.set_speed`) speeds the streams up with it.

Endpoints (``ws://127.0.0.1:PORT``):

- ``/ws`` and ``/ws/<stream>[/<stream>...]``: raw events. Path names that are not streams are
  ignored (ccxt connects to ``/ws/0``, ``/ws/1``, ... and subscribes by message).
- ``/stream?streams=<a>/<b>``: combined, every event wrapped as ``{"stream": name, "data": event}``.
- Messages in: ``{"method": "SUBSCRIBE"|"UNSUBSCRIBE", "params": [names], "id": x}`` answered
  ``{"result": null, "id": x}``; ``LIST_SUBSCRIPTIONS`` answered ``{"result": [names], "id": x}``;
  errors ``{"error": {"code": 2|3, "msg": ...}, "id": x}`` (an unknown stream is an error here).

Streams (``<sym>`` is the lower-case market id, e.g. ``btcusdt``):

- ``<sym>@kline_<interval>``: ``{"e": "kline", "E", "s", "k": {t, T, s, i, f, L, o, c, h, l, v, n,
  x, q, V, Q, B}}``; the open candle every 2 simulated seconds (``x`` false, its values at ``E``
  equal REST's at that instant) and exactly one ``x`` true message when it closes (``E`` = the close
  instant), equal to what ``/api/v3/klines`` returns for it afterwards.
- ``<sym>@trade`` (what ccxt.pro ``watch_trades`` subscribes to) and ``<sym>@aggTrade``: one message per
  trade of the tape, ``E == T`` (the trade's time); ids as REST's ``/trades`` and ``/aggTrades``.
- ``<sym>@depth``, ``<sym>@depth@100ms``, ``<sym>@depth@1000ms``: ``{"e": "depthUpdate", "E", "s",
  "U", "u", "b", "a"}`` once per simulated second (the book changes once a second), absolute
  quantities, ``"0.00000000"`` removes a level; ``U = (s - 1) * 1000 + 1`` and ``u = s * 1000``
  for second ``s``, so Binance's snapshot + diff recipe works against ``/api/v3/depth``.

After a clock jump the streams replay at most :data:`CATCHUP_MS` of simulated time (closed candles,
trades, one depth event per second) and skip the rest; a depth event then spans the jump
(``U`` = the last ``u`` + 1) with the net change. A clock set back restarts every stream at the new
now (depth ids then go back: a client must resync). Faults: :mod:`quantdag.sim.stream_faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from quantdag.errors import ConfigurationError
from quantdag.sim.markets import SimMarket
from quantdag.sim.model import TIMEFRAMES, MarketModel
from quantdag.sim.paths import MS_PER_MINUTE
from quantdag.sim.public_api import TradeTape, book_levels, fmt_units, kline_rows
from quantdag.sim.stream_faults import MESSAGE_FAULTS, StreamFault, StreamFaultLog, StreamFaultPlan
from quantdag.timeframes import timeframe_ms

log = logging.getLogger(__name__)

#: Simulated ms between updates of an open candle (Binance: 2000 ms).
KLINE_UPDATE_MS = 2000
#: After a clock jump, the streams replay at most this much simulated time.
CATCHUP_MS = 10 * MS_PER_MINUTE
#: Messages queued for a client that does not read before it is disconnected.
MAX_QUEUE = 200_000
_DEPTH_SUFFIXES = ("depth", "depth@100ms", "depth@1000ms")


@dataclass(frozen=True)
class StreamKey:
    """What a stream name means: ``kind`` is ``kline``, ``trade``, ``aggTrade`` or ``depth``."""

    kind: str
    symbol: str
    interval: str = ""


def parse_stream(name: str, market_ids: Iterable[str]) -> StreamKey | None:
    """The stream a Binance stream name asks for, or None if the simulator has no such stream."""
    sym, sep, rest = name.partition("@")
    symbol = sym.upper()
    if not sep or sym != sym.lower() or symbol not in set(market_ids):
        return None
    if rest in ("trade", "aggTrade"):
        return StreamKey(rest, symbol)
    if rest in _DEPTH_SUFFIXES:
        return StreamKey("depth", symbol)
    if rest.startswith("kline_") and rest[6:] in TIMEFRAMES:
        return StreamKey("kline", symbol, rest[6:])
    return None


@dataclass(frozen=True)
class Event:
    """One stream message: its JSON text, kind, event time and identifying fields (for the fault log)."""

    text: str
    kind: str
    time_ms: int
    ref: dict[str, Any]


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


# ---- producers: events of one stream between two instants ----------------------------------


class _Kline:
    def __init__(self, model: MarketModel, spec: SimMarket, interval: str, now: int) -> None:
        self.model, self.spec, self.interval = model, spec, interval
        self.tf = timeframe_ms(interval)
        self.open = now // self.tf * self.tf
        self.tick = now // KLINE_UPDATE_MS * KLINE_UPDATE_MS - KLINE_UPDATE_MS  # first update at once

    def produce(self, now: int) -> list[Event]:
        out = []
        current = now // self.tf * self.tf
        if current > self.open:
            first = max(self.open, current - max(1, CATCHUP_MS // self.tf) * self.tf)
            out += [self._event(t, t + self.tf, closed=True) for t in range(first, current, self.tf)]
            self.open = current
        tick = now // KLINE_UPDATE_MS * KLINE_UPDATE_MS
        if tick > self.tick:
            self.tick = tick
            out.append(self._event(current, tick, closed=False))
        return out

    def _event(self, open_ms: int, at_ms: int, *, closed: bool) -> Event:
        units = self.model.kline_units(self.spec.symbol, self.interval, open_ms, open_ms + 1, now_ms=at_ms)
        _, o, h, low, c, v, close_time, q, n, tb, tq, _ = kline_rows(units)[0]
        first = self.model._trade_id_before(self.spec, (open_ms - self.model.genesis_ms) // MS_PER_MINUTE)
        sid = self.spec.id
        k = {"t": open_ms, "T": close_time, "s": sid, "i": self.interval, "f": first if n else -1,
             "L": first + n - 1 if n else -1, "o": o, "c": c, "h": h, "l": low, "v": v, "n": n, "x": closed,
             "q": q, "V": tb, "Q": tq, "B": "0"}
        return Event(_dumps({"e": "kline", "E": at_ms, "s": sid, "k": k}), "kline", at_ms, {"t": open_ms, "x": closed})


class _Trades:
    def __init__(self, tape: TradeTape, spec: SimMarket, kind: str, now: int) -> None:
        self.tape, self.spec, self.kind = tape, spec, kind
        self.cursor = now

    def produce(self, now: int) -> list[Event]:
        if now <= self.cursor:
            return []
        block = self.tape.between(self.spec, max(self.cursor, now - CATCHUP_MS), now, now)
        self.cursor = now
        pd, qd, sid = self.spec.price_decimals, self.spec.qty_decimals, self.spec.id
        out = []
        for i, t, p, q, m in zip(block.ids.tolist(), block.time.tolist(), block.price.tolist(), block.qty.tolist(),
                                 block.buyer_maker.tolist(), strict=True):
            if self.kind == "trade":
                payload = {"e": "trade", "E": t, "s": sid, "t": i, "p": fmt_units(p, pd), "q": fmt_units(q, qd),
                           "T": t, "m": m, "M": True}
            else:
                payload = {"e": "aggTrade", "E": t, "s": sid, "a": i, "p": fmt_units(p, pd), "q": fmt_units(q, qd),
                           "f": i, "l": i, "T": t, "m": m, "M": True}
            out.append(Event(_dumps(payload), "trade", t, {"id": i}))
        return out


Levels = tuple[dict[int, int], dict[int, int]]


class _Depth:
    def __init__(self, model: MarketModel, spec: SimMarket, now: int) -> None:
        self.model, self.spec = model, spec
        self.second = now // 1000
        self.levels = self._levels(self.second)

    def _levels(self, second: int) -> Levels:
        book = book_levels(self.model, self.spec, second * 1000)
        p, q = 10.0**self.spec.price_decimals, 10.0**self.spec.qty_decimals
        sides = []
        for side in (book.bids, book.asks):
            prices = np.rint(side[:, 0] * p).astype(np.int64).tolist()
            sides.append(dict(zip(prices, np.rint(side[:, 1] * q).astype(np.int64).tolist(), strict=True)))
        return sides[0], sides[1]

    def produce(self, now: int) -> list[Event]:
        last = now // 1000
        if last <= self.second:
            return []
        seconds = [last] if last - self.second > CATCHUP_MS // 1000 else range(self.second + 1, last + 1)
        out = []
        for second in seconds:
            levels = self._levels(second)
            out.append(self._event(self.second, second, self.levels, levels))
            self.second, self.levels = second, levels
        return out

    def _event(self, before: int, second: int, old: Levels, new: Levels) -> Event:
        pd, qd = self.spec.price_decimals, self.spec.qty_decimals
        sides = []
        for was, now_, descending in ((old[0], new[0], True), (old[1], new[1], False)):
            changed = {p: q for p, q in now_.items() if was.get(p) != q}
            changed.update({p: 0 for p in was if p not in now_})
            sides.append([[fmt_units(p, pd), fmt_units(changed[p], qd)] for p in sorted(changed, reverse=descending)])
        first, last = before * 1000 + 1, second * 1000
        payload = {"e": "depthUpdate", "E": last, "s": self.spec.id, "U": first, "u": last, "b": sides[0],
                   "a": sides[1]}
        return Event(_dumps(payload), "depth", last, {"U": first, "u": last})


Producer = _Kline | _Trades | _Depth


# ---- connections ----------------------------------------------------------------------------


@dataclass(eq=False)
class _Conn:
    """One client connection: its streams, outbound queue and active faults."""

    id: int
    ws: ServerConnection
    path: str
    combined: bool
    streams: dict[str, StreamKey] = field(default_factory=dict)
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    opened_wall_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    silent_until: float | None = None
    withheld: int = 0
    effects: list[list[Any]] = field(default_factory=list)  # [fault, remaining]
    held: tuple[str, Event, str] | None = None
    sent: int = 0

    def info(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "combined": self.combined, "streams": sorted(self.streams),
                "opened_wall_ms": self.opened_wall_ms, "sent": self.sent, "queued": self.queue.qsize(),
                "silent": self.silent_until is not None}

    def wrap(self, name: str, event: Event) -> str:
        return f'{{"stream":{json.dumps(name)},"data":{event.text}}}' if self.combined else event.text


class StreamServer:
    """Websocket server of Binance-shaped market streams in a daemon thread (an asyncio loop).

    Parameters
    ----------
    model:
        The markets and the clock.
    tape:
        Trades (share the REST API's so both serve one cache).
    host, port:
        Where to listen; port 0 picks a free port (kept across ``restart`` faults).
    poll_s:
        Wall seconds between two passes over the streams (the simulated clock is read each pass).
    """

    def __init__(self, model: MarketModel, tape: TradeTape | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, poll_s: float = 0.02) -> None:
        if not poll_s > 0:
            raise ConfigurationError(f"poll_s must be > 0, got {poll_s!r}")
        self.model = model
        self.tape = tape if tape is not None else TradeTape(model)
        self.host = host
        self._port = port
        self.poll_s = poll_s
        self.faults = StreamFaultPlan()
        self.log = StreamFaultLog()
        self._ids = {m.id for m in model.markets}
        self._specs = {m.id: m for m in model.markets}
        self._conns: dict[int, _Conn] = {}
        self._subs: dict[StreamKey, set[tuple[int, str]]] = {}
        self._producers: dict[StreamKey, Producer] = {}
        self._next_conn = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._restarting = False
        self._restart_task: asyncio.Task[None] | None = None
        self._last_now = 0

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> StreamServer:
        """Bind and serve in a daemon thread; returns self once listening."""
        if self._thread is not None:
            return self
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="quantdag-sim-stream", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            self._thread.join(5)
            self._thread = None
            raise self._error
        log.info("simulated exchange streams on %s", self.url)
        return self

    def stop(self) -> None:
        """Close every connection and the loop's thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(self._stop.set)  # type: ignore[union-attr]
        thread.join(10)
        self._thread = None

    @property
    def running(self) -> bool:
        """Listening (False while a restart fault holds the server down, or when stopped)."""
        return self._thread is not None and self._server is not None and not self._restarting

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Raw endpoint, e.g. ``ws://127.0.0.1:8766/ws`` (what ccxt.pro's ``urls['api']['ws']['spot']`` takes)."""
        return f"ws://{self.host}:{self._port}/ws"

    def connections(self) -> list[dict[str, Any]]:
        """Open connections: id, path, streams, messages sent and queued (read in the server's loop)."""
        loop = self._loop
        if loop is None:
            return []

        async def infos() -> list[dict[str, Any]]:
            return [c.info() for c in self._conns.values()]

        try:
            return asyncio.run_coroutine_threadsafe(infos(), loop).result(5)
        except RuntimeError:  # the loop is closing
            return []

    def inject(self, kind: str, **params: Any) -> StreamFault:
        """Schedule a stream fault (see :class:`~quantdag.sim.stream_faults.StreamFault`)."""
        return self.faults.add(StreamFault(kind, **params))

    def clear_faults(self) -> None:
        """Drop scheduled faults and end the active ones (silences end, armed message faults disarm)."""
        self.faults.clear()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._disarm)

    def _disarm(self) -> None:
        for conn in self._conns.values():
            conn.effects.clear()
            conn.silent_until = None
            if conn.held is not None:
                self._put(conn, conn.held[2])
                conn.held = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - surfaced by start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()
            self._loop = None

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        await self._open()
        self._ready.set()
        ticker = asyncio.create_task(self._tick_loop())
        await self._stop.wait()
        ticker.cancel()
        if self._restart_task is not None:
            self._restart_task.cancel()
        await self._close_server()

    async def _open(self) -> None:
        self._server = await serve(self._handler, self.host, self._port, process_request=self._check_path,
                                   compression=None, max_queue=64, ping_interval=20, ping_timeout=20)
        self._port = self._server.sockets[0].getsockname()[1]

    async def _close_server(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close(close_connections=False)
        for conn in list(self._conns.values()):
            conn.ws.transport.abort()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5)

    async def _restart(self, delay_s: float) -> None:
        self._restarting = True
        try:
            await self._close_server()
            await asyncio.sleep(delay_s)
            if not self._stop.is_set():  # type: ignore[union-attr]
                await self._open()
                self.log.add("restart_end", self.model.now_ms(), port=self._port)
        except OSError:  # e.g. another process took the port meanwhile
            log.exception("simulated stream server could not come back on port %s", self._port)
            self.log.add("restart_failed", self.model.now_ms(), port=self._port)
        finally:
            self._restarting = False

    # ---- connections and messages ------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/ws" or path.startswith("/ws/") or path == "/stream":
            return None
        return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")

    async def _handler(self, ws: ServerConnection) -> None:
        url = urlsplit(ws.request.path if ws.request is not None else "/ws")
        combined = url.path == "/stream"
        if combined:
            names = dict(parse_qsl(url.query)).get("streams", "").split("/")
        else:
            names = url.path[len("/ws/"):].split("/") if url.path.startswith("/ws/") else []
        self._next_conn += 1
        conn = _Conn(self._next_conn, ws, ws.request.path if ws.request is not None else "", combined)
        self._conns[conn.id] = conn
        for name in names:
            key = parse_stream(name, self._ids)
            if key is not None:
                self._subscribe(conn, name, key)
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for raw in ws:
                self._on_message(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            self._drop(conn)

    async def _writer(self, conn: _Conn) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                text = await conn.queue.get()
                await conn.ws.send(text)
                conn.sent += 1

    def _put(self, conn: _Conn, text: str) -> None:
        if conn.queue.qsize() >= MAX_QUEUE:
            log.warning("stream client %s reads too slowly (%d queued): disconnected", conn.id, MAX_QUEUE)
            conn.ws.transport.abort()
            return
        conn.queue.put_nowait(text)

    def _reply(self, conn: _Conn, payload: dict[str, Any]) -> None:
        self._put(conn, _dumps(payload))

    def _on_message(self, conn: _Conn, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError as exc:
            self._reply(conn, {"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}, "id": None})
            return
        if not isinstance(msg, dict):
            self._reply(conn, {"error": {"code": 3, "msg": "Invalid JSON: expected an object"}, "id": None})
            return
        rid, method, params = msg.get("id"), msg.get("method"), msg.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                self._reply(conn, {"error": {"code": 1, "msg": "Invalid value type: expected an array of strings"},
                                   "id": rid})
                return
            keys = [parse_stream(p, self._ids) for p in params]
            bad = [p for p, k in zip(params, keys, strict=True) if k is None]
            if method == "SUBSCRIBE" and bad:
                self._reply(conn, {"error": {"code": 2, "msg": f"Invalid request: unknown stream(s) {bad}"},
                                   "id": rid})
                return
            self._reply(conn, {"result": None, "id": rid})  # before the first event of a new stream
            for name, key in zip(params, keys, strict=True):
                if key is None:
                    continue
                if method == "SUBSCRIBE":
                    self._subscribe(conn, name, key)
                else:
                    self._unsubscribe(conn, name)
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply(conn, {"result": sorted(conn.streams), "id": rid})
        elif method == "SET_PROPERTY":
            self._reply(conn, {"result": None, "id": rid})
        elif method == "GET_PROPERTY":
            self._reply(conn, {"result": conn.combined, "id": rid})
        else:
            self._reply(conn, {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": rid})

    def _subscribe(self, conn: _Conn, name: str, key: StreamKey) -> None:
        conn.streams[name] = key
        self._subs.setdefault(key, set()).add((conn.id, name))

    def _unsubscribe(self, conn: _Conn, name: str) -> None:
        key = conn.streams.pop(name, None)
        if key is not None:
            self._subs.get(key, set()).discard((conn.id, name))

    def _drop(self, conn: _Conn) -> None:
        for name in list(conn.streams):
            self._unsubscribe(conn, name)
        self._conns.pop(conn.id, None)

    # ---- the clock-driven pass -----------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            try:
                self._tick(self.model.now_ms())
            except Exception:  # a bug must not stop every stream
                log.exception("simulated stream pass failed")
            await asyncio.sleep(self.poll_s)

    def _tick(self, now: int) -> None:
        if now < self._last_now:  # the clock was set back: every stream starts over from the new now
            self._producers.clear()
        self._last_now = now
        for fault in self.faults.due(now, self._has_target):
            self._fire(fault, now)
        for conn in self._conns.values():
            if conn.silent_until is not None and now >= conn.silent_until:
                conn.silent_until = None
                self.log.add("silence_end", now, conn=conn.id, withheld=conn.withheld)
        for key in list(self._subs):
            subs = self._subs[key]
            if not subs:
                del self._subs[key]
                self._producers.pop(key, None)
                continue
            producer = self._producers.get(key)
            if producer is None:
                producer = self._producers[key] = self._producer(key, now)
            events = producer.produce(now)
            for event in events:
                for conn_id, name in list(subs):
                    conn = self._conns.get(conn_id)
                    if conn is not None:
                        self._deliver(conn, name, event, now)

    def _producer(self, key: StreamKey, now: int) -> Producer:
        spec = self._specs[key.symbol]
        if key.kind == "kline":
            return _Kline(self.model, spec, key.interval, now)
        if key.kind == "depth":
            return _Depth(self.model, spec, now)
        return _Trades(self.tape, spec, key.kind, now)

    def _deliver(self, conn: _Conn, name: str, event: Event, now: int) -> None:
        if conn.silent_until is not None:
            conn.withheld += 1
            return
        text = conn.wrap(name, event)
        for effect in conn.effects:
            fault = effect[0]
            if not fault.matches(name) or (fault.kind == "depth_gap" and event.kind != "depth"):
                continue
            if fault.kind == "depth_gap":
                self.log.add("depth_gap", now, conn=conn.id, stream=name, E=event.time_ms, **event.ref)
            elif fault.kind == "duplicate":
                self._put(conn, text)
                self._put(conn, text)
                self.log.add("duplicate", now, conn=conn.id, stream=name, E=event.time_ms, **event.ref)
            elif conn.held is None:  # out_of_order: hold this one, send it after the next
                conn.held = (name, event, text)
                return
            else:
                held_name, held, held_text = conn.held
                conn.held = None
                self._put(conn, text)
                self._put(conn, held_text)
                self.log.add("out_of_order", now, conn=conn.id, stream=name, held_stream=held_name,
                             held={"E": held.time_ms, **held.ref}, sent_first={"E": event.time_ms, **event.ref})
            effect[1] -= 1
            if effect[1] <= 0:
                conn.effects.remove(effect)
            return
        self._put(conn, text)

    # ---- faults --------------------------------------------------------------------------------

    def _targets(self, fault: StreamFault) -> list[_Conn]:
        def hit(conn: _Conn) -> bool:
            names = [n for n, k in conn.streams.items() if fault.kind != "depth_gap" or k.kind == "depth"]
            return any(fault.matches(n) for n in names)

        return [c for c in self._conns.values() if hit(c)]

    def _has_target(self, fault: StreamFault) -> bool:
        return fault.kind == "restart" or bool(self._targets(fault))

    def _fire(self, fault: StreamFault, now: int) -> None:
        if fault.kind == "restart":
            if not self._restarting:
                self.log.add("restart", now, delay_s=fault.delay_s, conns=sorted(self._conns))
                self._restart_task = asyncio.get_running_loop().create_task(self._restart(fault.delay_s))
            return
        for conn in self._targets(fault):
            if fault.kind == "disconnect":
                self.log.add("disconnect", now, conn=conn.id, streams=sorted(conn.streams), close_code=1006)
                conn.ws.transport.abort()
            elif fault.kind == "silence":
                until = now + fault.duration_s * 1000 if fault.resume else math.inf
                conn.silent_until, conn.withheld = until, 0
                self.log.add("silence", now, conn=conn.id, streams=sorted(conn.streams),
                             until_ms=None if until == math.inf else int(until))
            elif fault.kind in MESSAGE_FAULTS:
                conn.effects.append([fault, fault.count])


__all__ = ["CATCHUP_MS", "KLINE_UPDATE_MS", "Event", "StreamKey", "StreamServer", "parse_stream"]
