"""The simulated exchange: a small Binance-compatible HTTP server on 127.0.0.1.

The real ccxt ``binance`` client talks to it over real HTTP::

    with SimExchange(MarketModel(seed=7)) as sim:
        ex = sim.ccxt_client()        # or configure ccxt.binance yourself, see ccxt_client()
        ex.fetch_ohlcv("BTC/USDT", "1h", since=..., limit=1000)

Requests pass, in order: the ban check (418 while banned), fault injection (see
:mod:`quantdag.sim.faults`), routing (404/405), the per-window request-weight limit (429 with
``Retry-After``; repeated violations can escalate to a ban), then the endpoint. Every API request is
recorded in :attr:`SimExchange.requests` (monotonic arrival time, method, path, params, status,
fault, weight) so tests can measure request rates and back-off. ``/sim/...`` control endpoints
(faults, request log, clock, ban) are neither recorded, rate limited nor faulted; they answer only
loopback ``Host``s, no foreign ``Origin``, JSON writes, and a bearer token when the server is bound
beyond loopback (see :mod:`quantdag.sim.control`).

Routing is a table of :class:`~quantdag.sim.routing.Route` entries keyed by (method, path); the signed
order endpoints of :mod:`quantdag.sim.orders` (balances, orders, fills) are added with :meth:`SimExchange.add_route`.

Next to it, on its own port, the websocket market streams of :mod:`quantdag.sim.stream` (started and
stopped with the HTTP server; :attr:`SimExchange.ws_url`), fed by the same model, clock and trade
tape; their faults are injected with :meth:`SimExchange.inject_stream_fault` or
``POST /sim/stream/faults`` and recorded in :attr:`SimExchange.stream_faults_log`.
:meth:`SimExchange.ccxt_pro_client` is a ``ccxt.pro.binance`` on both.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from quantdag.errors import ConfigurationError
from quantdag.sim.control import TOKEN_ENV, ControlRefused, check_control_request, control_routes, is_loopback
from quantdag.sim.faults import PAGE_FAULTS, Draw, Fault, FaultPlan
from quantdag.sim.model import MarketModel
from quantdag.sim.news_api import NewsApi
from quantdag.sim.public_api import PublicApi, TradeTape
from quantdag.sim.routing import JSON_TYPE, BinanceError, Handler, Route, SimRequest, SimResponse, Weight
from quantdag.sim.stream import StreamServer
from quantdag.sim.stream_faults import StreamFault

log = logging.getLogger(__name__)

_HTML = "text/html; charset=utf-8"
_GATEWAY_PAGES = {
    status: f"<html><head><title>{status} {text}</title></head><body><center><h1>{status} {text}</h1></center>"
    f"<hr><center>nginx</center></body></html>".encode()
    for status, text in ((500, "Internal Server Error"), (502, "Bad Gateway"), (503, "Service Temporarily Unavailable"))
}
_MAINTENANCE_PAGE = (
    b"<!DOCTYPE html><html><head><title>System Maintenance</title></head><body>"
    b"<h1>System maintenance</h1><p>The exchange is upgrading its systems. Please try again later.</p>"
    b"</body></html>"
)
_NOT_FOUND_PAGE = b"<html><body><h1>404 Not Found</h1></body></html>"


def ccxt_client(base_url: str, **config: Any) -> Any:
    """A real ``ccxt.binance`` talking to a simulated exchange at ``base_url`` (``http://host:port``).

    Spot markets only and no currency endpoint (neither exists in the simulator); ``config``
    entries override the defaults, e.g. ``timeout=500``.
    """
    import ccxt  # only the helper needs ccxt; the server does not

    options: dict[str, Any] = {
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
        "enableRateLimit": True,
    }
    options.update(config)
    ex = ccxt.binance(options)
    ex.urls["api"]["public"] = ex.urls["api"]["private"] = f"{base_url.rstrip('/')}/api/v3"
    return ex


def ccxt_pro_client(base_url: str, ws_url: str, **config: Any) -> Any:
    """A real ``ccxt.pro.binance`` on a simulated exchange: REST at ``base_url``, streams at ``ws_url``.

    ``ws_url`` is the raw endpoint (``ws://host:port/ws``); ccxt.pro appends ``/<n>`` to it for each of
    its connections and subscribes by message. Its spot and margin stream urls are replaced, as the REST
    ones are (spot markets only, no currency endpoint). Use it in a running event loop and
    ``await ex.close()`` at the end.
    """
    import ccxt.pro  # only the helper needs ccxt.pro; the server does not

    options: dict[str, Any] = {
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
        "enableRateLimit": True,
    }
    options.update(config)
    ex = ccxt.pro.binance(options)
    ex.urls["api"]["public"] = ex.urls["api"]["private"] = f"{base_url.rstrip('/')}/api/v3"
    ws = dict(ex.urls["api"]["ws"])
    ws["spot"] = ws["margin"] = ws_url.rstrip("/")
    ex.urls["api"]["ws"] = ws
    return ex


@dataclass(frozen=True)
class RateLimits:
    """Request-weight limit per fixed window, like Binance's ``X-MBX-USED-WEIGHT-1M``.

    Parameters
    ----------
    weight_limit:
        Weight allowed per window (Binance: 6000 per minute).
    window_s:
        Window length; shorten it in tests.
    ban_after_violations:
        Rejected (429) requests within one window after which the client is banned (418); None never bans.
    ban_s:
        How long such a ban lasts.
    """

    weight_limit: int = 6000
    window_s: float = 60.0
    ban_after_violations: int | None = None
    ban_s: float = 120.0

    def __post_init__(self) -> None:
        if self.weight_limit < 1 or not self.window_s > 0 or not self.ban_s > 0:
            raise ConfigurationError(f"rate limits need weight_limit >= 1, window_s > 0, ban_s > 0: {self}")
        if self.ban_after_violations is not None and self.ban_after_violations < 1:
            raise ConfigurationError(f"ban_after_violations must be >= 1 or None, got {self.ban_after_violations!r}")


@dataclass
class RequestRecord:
    """One API request as the exchange saw it; ``status`` is None when no response was sent."""

    seq: int
    t: float
    wall_ms: int
    method: str
    path: str
    params: dict[str, str]
    status: int | None = None
    fault: str | None = None
    weight: int = 0
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _WeightMeter:
    """Fixed windows counted from the meter's creation (so a test's window cannot roll over early)."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self.origin = time.monotonic()
        self.window = -1
        self.used = 0
        self.violations = 0

    def add(self, weight: int, now: float) -> tuple[int, float | None]:
        """Count ``weight``; returns (used in window, seconds until the window resets if over the limit)."""
        window = int((now - self.origin) // self.limits.window_s)
        if window != self.window:
            self.window, self.used, self.violations = window, 0, 0
        self.used += weight
        if self.used > self.limits.weight_limit:
            self.violations += 1
            return self.used, self.origin + (window + 1) * self.limits.window_s - now
        return self.used, None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "quantdag-sim"
    sys_version = ""
    timeout = 60  # idle keep-alive connections close after this long
    disable_nagle_algorithm = True  # small JSON answers on kept-alive connections: no 40 ms delayed-ACK stall

    def do_GET(self) -> None:
        self.server.sim._handle(self)  # type: ignore[attr-defined]

    do_POST = do_PUT = do_DELETE = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def finish(self) -> None:
        with contextlib.suppress(OSError):  # the connection was reset on purpose or by the client
            super().finish()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: SimExchange) -> None:
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class SimExchange:
    """Binance-compatible HTTP server over a :class:`MarketModel`; a context manager.

    Parameters
    ----------
    model:
        The markets, or a seed for a default :class:`MarketModel`, or None for seed 7.
    faults:
        Faults to inject (can be replaced later via :attr:`faults` or ``POST /sim/faults``).
    host, port:
        Where to listen; port 0 picks a free port.
    limits:
        Request-weight limit (default: Binance's 6000 per minute, no automatic bans).
    warm:
        Generate the model's history in :meth:`start`, so the first request is fast.
    log_limit:
        Most recent requests kept in :attr:`requests` (older ones are dropped).
    token:
        Bearer token the ``/sim/*`` control API requires. None: no token on a loopback ``host``; bound
        beyond loopback, ``$QUANTDAG_SIM_TOKEN`` or else a random one (:attr:`token_generated`).
    streams:
        Serve the websocket market streams too (:attr:`ws_url`).
    ws_port:
        The streams' port; 0 picks a free one.
    """

    def __init__(
        self,
        model: MarketModel | int | None = None,
        *,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: RateLimits | None = None,
        warm: bool = True,
        log_limit: int = 100_000,
        token: str | None = None,
        streams: bool = True,
        ws_port: int = 0,
    ) -> None:
        if model is None or isinstance(model, int):
            model = MarketModel(seed=7 if model is None else model)
        if not isinstance(model, MarketModel):
            raise ConfigurationError(f"model must be a MarketModel or a seed, got {model!r}")
        self.model = model
        self.host = host
        if token is not None and (not isinstance(token, str) or not token.strip()):
            raise ConfigurationError(f"token must be a non-empty string, got {token!r}")
        self.token_generated = False
        if token is None and not is_loopback(host):
            token = os.environ.get(TOKEN_ENV, "").strip() or None
            if token is None:
                token, self.token_generated = secrets.token_urlsafe(32), True
        self._token = token
        self._port = port
        self.limits = limits or RateLimits()
        self._warm = warm
        self._lock = threading.Lock()
        self._faults = faults
        self._records: deque[RequestRecord] = deque(maxlen=log_limit)
        self._seq = 0
        self._banned_until = 0.0
        self._meter = _WeightMeter(self.limits)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._routes: dict[tuple[str, str], Route] = {}
        self.tape = TradeTape(model)
        for route in PublicApi(model, self.tape).routes():
            self.add_route(route)
        self.news = NewsApi(model)  # the seeded news feed (quantdag.sim.news), on the same model and clock
        for route in self.news.routes():
            self.add_route(route)
        self.stream: StreamServer | None = StreamServer(model, self.tape, host=host, port=ws_port) if streams else None
        self._control = control_routes(self)

    def __repr__(self) -> str:
        return f"SimExchange({self.url if self.running else 'stopped'}, seed={self.model.seed})"

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SimExchange:
        """Bind, warm the model and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        if self._warm:
            t0 = time.perf_counter()
            self.model.warm()
            log.info("simulated history generated in %.2f s", time.perf_counter() - t0)
        self._stopping.clear()
        self._server = _Server((self.host, self._port), self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"quantdag-sim:{self._port}", daemon=True)
        self._thread.start()
        if self.stream is not None:
            try:
                self.stream.start()
            except BaseException:
                self.stop()
                raise
        log.info("simulated exchange listening on %s", self.url)
        if self._token is not None and not is_loopback(self.host):
            log.warning("simulated exchange bound beyond loopback (%s): its control API needs the bearer token",
                        self.host)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release held (timeout-fault) requests."""
        server, self._server = self._server, None
        if server is None:
            return
        if self.stream is not None:
            self.stream.stop()
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("simulated exchange on port %s stopped", self._port)

    def __enter__(self) -> SimExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def token(self) -> str | None:
        """Bearer token the control API requires (None: none needed, the server is on loopback)."""
        return self._token

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765``."""
        return f"http://{self.host}:{self._port}"

    @property
    def api_url(self) -> str:
        """What ccxt's ``urls["api"]["public"]`` must be set to."""
        return f"{self.url}/api/v3"

    def ccxt_client(self, **config: Any) -> Any:
        """A real ``ccxt.binance`` pointed at this server; see :func:`ccxt_client`."""
        return ccxt_client(self.url, **config)

    # ---- websocket streams -------------------------------------------------------------------

    def _streams(self) -> StreamServer:
        if self.stream is None:
            raise ConfigurationError("this simulated exchange serves no streams (streams=False)")
        return self.stream

    @property
    def ws_port(self) -> int:
        return self._streams().port

    @property
    def ws_url(self) -> str:
        """The raw stream endpoint, e.g. ``ws://127.0.0.1:8766/ws`` (``/ws/<stream>`` and ``/stream?streams=``
        are served too)."""
        return self._streams().url

    def ccxt_pro_client(self, **config: Any) -> Any:
        """A real ``ccxt.pro.binance`` on this server's REST API and streams; see :func:`ccxt_pro_client`."""
        return ccxt_pro_client(self.url, self.ws_url, **config)

    def inject_stream_fault(self, kind: str, **params: Any) -> StreamFault:
        """Schedule a stream fault, e.g. ``inject_stream_fault("disconnect", every_min=5)``
        (see :class:`~quantdag.sim.stream_faults.StreamFault`)."""
        return self._streams().inject(kind, **params)

    def clear_stream_faults(self) -> None:
        """Drop scheduled stream faults and end active ones; the log stays."""
        self._streams().clear_faults()

    @property
    def stream_faults_log(self) -> list[dict[str, Any]]:
        """What the streams injected, oldest first: ``{"seq", "kind", "sim_ms", "wall_ms", "conn", ...}``."""
        return self._streams().log.since(0)

    # ---- routes, faults, log, ban ------------------------------------------------------------

    def add_route(self, route: Route | str, path: str | None = None, handler: Handler | None = None,
                  weight: Weight = 1) -> Route:
        """Register an endpoint: ``add_route(Route(...))`` or ``add_route("POST", "/api/v3/order", fn, weight=1)``."""
        if not isinstance(route, Route):
            if path is None or handler is None:
                raise ConfigurationError("add_route needs a Route, or method, path and handler")
            route = Route(route.upper(), path, handler, weight)
        self._routes[(route.method, route.path)] = route
        return route

    @property
    def routes(self) -> dict[tuple[str, str], Route]:
        return dict(self._routes)

    @property
    def faults(self) -> FaultPlan | None:
        return self._faults

    @faults.setter
    def faults(self, plan: FaultPlan | None) -> None:
        if plan is not None and not isinstance(plan, FaultPlan):
            raise ConfigurationError(f"faults must be a FaultPlan or None, got {plan!r}")
        with self._lock:
            self._faults = plan

    def inject(self, kind: str, count: int = 1, path: str | None = None, **params: Any) -> Fault:
        """Queue ``count`` faults of ``kind`` for the next matching requests (see :class:`Fault`)."""
        with self._lock:
            if self._faults is None:
                self._faults = FaultPlan()
            plan = self._faults
        return plan.inject(kind, count=count, path=path, **params)

    @property
    def requests(self) -> list[RequestRecord]:
        """Copies of the request log, oldest first."""
        return self.requests_since(0)

    def requests_since(self, seq: int) -> list[RequestRecord]:
        """Copies of the records with ``seq`` greater than the given one."""
        with self._lock:
            return [RequestRecord(**r.to_dict()) for r in self._records if r.seq > seq]

    @property
    def last_seq(self) -> int:
        """Sequence number of the latest request (0 before the first)."""
        with self._lock:
            return self._seq

    def clear_requests(self) -> None:
        with self._lock:
            self._records.clear()

    def ban(self, seconds: float) -> None:
        """Answer every API request with 418 for ``seconds``."""
        with self._lock:
            self._banned_until = time.monotonic() + seconds
        log.warning("simulated exchange: client banned for %.1f s", seconds)

    def unban(self) -> None:
        with self._lock:
            self._banned_until = 0.0

    @property
    def banned_for(self) -> float:
        """Seconds the current ban still lasts (0 when not banned)."""
        with self._lock:
            return max(0.0, self._banned_until - time.monotonic())

    # ---- request handling --------------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        t0 = time.monotonic()
        method = h.command
        url = urlsplit(h.path)
        path = url.path
        params = dict(reversed(parse_qsl(url.query, keep_blank_values=True)))  # first value wins
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length > 0 else b""
        if body and h.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            params.update({k: v for k, v in reversed(parse_qsl(body.decode(errors="replace"))) if k not in params})
        if path.startswith("/sim/"):
            try:
                check_control_request(method, h.headers, body, port=self._port, bind_host=self.host, token=self._token)
            except ControlRefused as exc:
                log.warning("simulated exchange: control request %s %s refused: %s", method, path, exc)
                self._send(h, exc.response())
                return
            self._send(h, self._control_response(method, path, params, body))
            return
        with self._lock:
            self._seq += 1
            record = RequestRecord(self._seq, t0, time.time_ns() // 1_000_000, method, path, dict(params))
            self._records.append(record)
        try:
            request = SimRequest(method, path, params, dict(h.headers.items()), body, query=url.query)
            response = self._respond(h, record, request)
            if response is not None:
                record.status = response.status
                # recorded before the answer leaves: a client that reads the log right after it sees it
                record.duration_s = time.monotonic() - t0
                self._send(h, response)
        finally:
            if record.duration_s is None:  # no answer sent (dropped connection, held timeout)
                record.duration_s = time.monotonic() - t0

    def _respond(self, h: _Handler, record: RequestRecord, req: SimRequest) -> SimResponse | None:
        now = time.monotonic()
        with self._lock:
            banned_for = self._banned_until - now
            plan = self._faults
        if banned_for > 0:
            record.fault = "banned"
            return self._ban_response(banned_for)
        draw = plan.draw(req.path) if plan is not None else None
        if draw is not None:
            record.fault = draw.fault.kind
            early = self._early_fault(h, draw)
            if early is not None or draw.fault.kind in ("timeout", "reset"):
                return early
        route = self._routes.get((req.method, req.path))
        if route is None:
            known_path = any(p == req.path for _, p in self._routes)
            return SimResponse(405 if known_path else 404, body=_NOT_FOUND_PAGE, content_type=_HTML)
        weight = route.cost(req.params)
        record.weight = weight
        with self._lock:
            used, retry_after = self._meter.add(weight, now)
            violations = self._meter.violations
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if retry_after is not None:
            ban_after = self.limits.ban_after_violations
            if ban_after is not None and violations >= ban_after:
                self.ban(self.limits.ban_s)
                record.fault = "banned"
                return self._ban_response(self.limits.ban_s)
            record.fault = "weight_limit"
            return self._rate_limit_response(retry_after, headers)
        try:
            response = route.handler(replace(req, draw=draw))
        except BinanceError as exc:
            response = exc.response()
        except Exception:  # a bug in a handler must still produce an answer, like a real venue
            log.exception("simulated exchange: handler for %s %s failed", req.method, req.path)
            response = BinanceError(-1000, "An unknown error occurred while processing the request.", 500).response()
        response.headers.update(headers)
        if draw is not None and draw.fault.kind == "malformed_json" and response.status == 200:
            full = response.encoded()
            response.body = full[: max(1, len(full) * 2 // 3)]
        return response

    def _early_fault(self, h: _Handler, draw: Draw) -> SimResponse | None:
        """Faults that replace the response entirely; None for ones applied later (or that send nothing)."""
        fault = draw.fault
        kind = fault.kind
        if kind == "rate_limit":
            return self._rate_limit_response(fault.retry_after_s, {})
        if kind == "ban":
            self.ban(fault.retry_after_s)
            return self._ban_response(fault.retry_after_s)
        if kind == "server_error":
            status = fault.status or int(draw.rng().choice([500, 502, 503]))
            return SimResponse(status, body=_GATEWAY_PAGES[status], content_type=_HTML)
        if kind == "maintenance_html":
            return SimResponse(fault.status or 503, body=_MAINTENANCE_PAGE, content_type=_HTML)
        if kind == "empty_page":
            return SimResponse(200, payload=[])
        if kind == "timeout":
            self._stopping.wait(fault.delay_s)
            h.close_connection = True  # then close without a response
            return None
        if kind == "reset":
            h.close_connection = True
            try:
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                h.connection.close()  # abortive close: the client sees a TCP reset
            except OSError:
                pass
            return None
        if kind in PAGE_FAULTS or kind in ("malformed_json", "malformed_item"):
            return None
        raise AssertionError(f"unhandled fault kind {kind}")  # pragma: no cover - FAULT_KINDS is closed

    @staticmethod
    def _rate_limit_response(retry_after_s: float, headers: dict[str, str]) -> SimResponse:
        msg = ("Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
               "Please use WebSocket Streams for live updates to avoid polling the API.")
        return SimResponse(429, {"code": -1003, "msg": msg},
                           headers={**headers, "Retry-After": str(max(1, math.ceil(retry_after_s)))})

    @staticmethod
    def _ban_response(seconds: float) -> SimResponse:
        until = time.time_ns() // 1_000_000 + int(seconds * 1000)
        msg = (f"Way too much request weight used; IP banned until {until}. "
               "Please use WebSocket Streams for live updates to avoid bans.")
        return SimResponse(418, {"code": -1003, "msg": msg}, headers={"Retry-After": str(max(1, math.ceil(seconds)))})

    @staticmethod
    def _send(h: _Handler, response: SimResponse) -> None:
        body = response.encoded()
        try:
            h.send_response(response.status)
            h.send_header("Content-Type", response.content_type)
            h.send_header("Content-Length", str(len(body)))
            for name, value in response.headers.items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            h.close_connection = True

    def _control_response(self, method: str, path: str, params: dict[str, str], body: bytes) -> SimResponse:
        handler = self._control.get((method, path))
        if handler is None:
            return SimResponse(404, {"error": f"no control endpoint {method} {path}"})
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return SimResponse(400, {"error": "body is not JSON"})
        try:
            return handler(params, data)
        except (ConfigurationError, TypeError, ValueError) as exc:
            return SimResponse(400, {"error": str(exc)})


__all__ = ["JSON_TYPE", "RateLimits", "RequestRecord", "SimExchange", "ccxt_client", "ccxt_pro_client"]
