"""``/sim/...`` control endpoints, so a pipeline test in another process can steer the exchange.

========================  ==================================================================
``GET /sim/health``       ``{"ok": true}``
``GET /sim/info``         url, seed, genesis, now, symbols, weight limit
``GET /sim/faults``       the current plan (``null`` if none)
``POST /sim/faults``      replace the plan: ``{"seed", "scripted": [...], "random": [...]}``
                          or ``{"rates": {kind: p}, "path": ...}`` (see ``FaultPlan.from_dict``)
``POST /sim/faults/inject``  queue one fault: ``{"kind": "timeout", "count": 2, "delay_s": 1}``
``DELETE /sim/faults``    drop the plan and lift any ban
``GET /sim/requests``     the request log; ``?since=SEQ`` for records after ``SEQ``
``DELETE /sim/requests``  clear the log
``GET /sim/clock``        ``{"now_ms", "frozen", "offset_ms", "speed"}``
``POST /sim/clock``       one of ``{"now_ms": t}`` (freeze), ``{"advance_ms": d}``, ``{"offset_ms": d}``,
                          ``{"speed": k}`` or ``{"speed": k, "now_ms": t}`` (run k x wall time from t)
``POST /sim/ban``         ban for ``{"seconds": s}``; ``DELETE /sim/ban`` lifts it
``GET /sim/stream``       websocket streams: ``{"url", "running", "connections", "faults", "last_seq"}``
``POST /sim/stream/faults``  schedule stream faults: one ``{"kind": "disconnect", "every_min": 5}`` or
                          ``{"faults": [...]}`` (see ``StreamFault``); answers the schedule
``GET /sim/stream/faults``   the schedule; ``DELETE`` drops it and ends active faults
``GET /sim/stream/log``   what the streams injected; ``?since=SEQ``; ``DELETE`` clears it
========================  ==================================================================

Control requests are not logged, rate limited or faulted. Bad input answers 400 ``{"error": ...}``.

Who may steer the exchange (:func:`check_control_request`, before any handler runs, so a refused
request changes nothing; the answer is ``{"error": why, "reason": "host"|"origin"|"token"|"content_type"}``):

* ``Host`` must name a loopback address (``127.0.0.1``, ``localhost``, ``[::1]``) or the bound
  address, with the server's port; a DNS-rebound name (``evil.example:8765``) is refused with 403.
  A server bound beyond loopback also accepts any IP-literal ``Host`` (an address cannot be rebound).
* ``Origin`` must be absent (ccxt, curl, urllib) or an ``http(s)`` loopback origin; else 403.
* A server bound beyond loopback (or given a ``token``) requires ``Authorization: Bearer <token>``,
  compared in constant time; else 403.
* Writes (POST, PUT, DELETE with a body) must be ``Content-Type: application/json``; else 415.
  A web page can send ``text/plain`` or form bodies cross-site without a preflight, never JSON.

The public ``/api/v3/*`` endpoints are not affected by any of this.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from quantdag.errors import ConfigurationError, QuantdagError
from quantdag.sim.clock import SimClock
from quantdag.sim.faults import Fault, FaultPlan
from quantdag.sim.routing import SimResponse
from quantdag.sim.stream_faults import StreamFault

if TYPE_CHECKING:  # pragma: no cover - import cycle only for the type checker
    from quantdag.sim.server import SimExchange

ControlHandler = Callable[[dict[str, str], Any], SimResponse]

#: Environment variable a server bound beyond loopback takes its control token from.
TOKEN_ENV = "QUANTDAG_SIM_TOKEN"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_READS = frozenset({"GET", "HEAD"})
_HOST_PORT = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::(?P<port>[0-9]{1,5}))?")
_ORIGIN = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>.*)")


class ControlRefused(QuantdagError):
    """A control request refused before it could change anything: HTTP ``status``, short ``reason``."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    def response(self) -> SimResponse:
        return SimResponse(self.status, {"error": self.message, "reason": self.reason})


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (``localhost`` or a loopback address)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _split_host(text: str) -> tuple[str, int | None] | None:
    """``host[:port]`` (IPv6 in brackets) as (lower-case name without brackets, port); None if malformed."""
    m = _HOST_PORT.fullmatch(text)
    if m is None:
        return None
    port = m["port"]
    return (m["v6"] or m["name"]).lower(), None if port is None else int(port)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def check_control_request(method: str, headers: Mapping[str, str], body: bytes, *, port: int, bind_host: str,
                          token: str | None) -> None:
    """Raise :class:`ControlRefused` unless this ``/sim/*`` request may reach its handler (see module doc).

    ``headers`` may be a plain mapping or an ``http.client.HTTPMessage`` (names are matched
    case-insensitively); a repeated Host, Origin, Authorization or Content-Type header is refused.
    """
    values: dict[str, list[str]] = {}
    for name, value in headers.items():
        values.setdefault(name.lower(), []).append(value)

    def one(name: str, status: int, reason: str) -> str | None:
        found = values.get(name, [])
        if len(found) > 1:
            raise ControlRefused(status, reason, f"control API: {len(found)} {name} headers")
        return found[0] if found else None

    host_header = one("host", 403, "host")
    host = _split_host(host_header.strip()) if host_header is not None else None
    beyond = not is_loopback(bind_host)
    bound = bind_host.strip("[]").lower()
    if host is None:
        raise ControlRefused(403, "host", f"control API: Host header {host_header!r} is not host:port")
    name, host_port = host
    allowed = name in LOOPBACK_NAMES or name == bound or (beyond and _is_ip(name))
    if not allowed or (host_port if host_port is not None else 80) != port:
        raise ControlRefused(403, "host", f"control API: Host {host_header!r} is not this machine's loopback "
                                          f"address with port {port} (a rebound DNS name?)")

    origin = one("origin", 403, "origin")
    if origin is not None:
        m = _ORIGIN.fullmatch(origin.strip())
        origin_host = _split_host(m["host"]) if m is not None else None
        if m is None or m["scheme"].lower() not in ("http", "https") or origin_host is None \
                or origin_host[0] not in LOOPBACK_NAMES:
            raise ControlRefused(403, "origin", f"control API: cross-site Origin {origin!r} refused; "
                                                "only http(s) loopback origins may send control requests")

    if token is not None:
        scheme, _, given = (one("authorization", 403, "token") or "").strip().partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given \
                or not hmac.compare_digest(given.encode(), token.encode()):
            raise ControlRefused(403, "token", "control API: this server requires 'Authorization: Bearer <token>' "
                                               f"(the token printed at start or ${TOKEN_ENV})")

    if method.upper() not in _READS and (body or method.upper() != "DELETE"):
        content_type = one("content-type", 415, "content_type") or ""
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise ControlRefused(415, "content_type", "control API: writes need Content-Type: application/json, "
                                                      f"got {content_type or 'none'!r}")


def control_routes(sim: SimExchange) -> dict[tuple[str, str], ControlHandler]:
    """The control table of ``sim``: (method, path) -> handler(query params, JSON body)."""

    def ok() -> SimResponse:
        return SimResponse(payload={"ok": True})

    def plan() -> SimResponse:
        return SimResponse(payload=sim.faults.to_dict() if sim.faults is not None else None)

    def info(params: dict[str, str], data: Any) -> SimResponse:
        m = sim.model
        return SimResponse(payload={"url": sim.url, "seed": m.seed, "genesis_ms": m.genesis_ms, "now_ms": m.now_ms(),
                                    "symbols": list(m.symbols), "weight_limit": sim.limits.weight_limit,
                                    "ws_url": sim.ws_url if sim.stream is not None else None})

    def set_faults(params: dict[str, str], data: Any) -> SimResponse:
        sim.faults = FaultPlan.from_dict(data)
        return plan()

    def inject(params: dict[str, str], data: Any) -> SimResponse:
        sim.inject(**Fault.from_dict(data).to_dict())
        return plan()

    def clear_faults(params: dict[str, str], data: Any) -> SimResponse:
        sim.faults = None
        sim.unban()
        return ok()

    def requests(params: dict[str, str], data: Any) -> SimResponse:
        last = sim.last_seq
        records = sim.requests_since(int(params.get("since", "0")))
        return SimResponse(payload={"requests": [r.to_dict() for r in records], "last_seq": last})

    def clear_requests(params: dict[str, str], data: Any) -> SimResponse:
        sim.clear_requests()
        return ok()

    def clock(params: dict[str, str], data: Any) -> SimResponse:
        c = sim.model.clock
        return SimResponse(payload=c.state() if isinstance(c, SimClock) else {"now_ms": sim.model.now_ms()})

    def set_clock(params: dict[str, str], data: Any) -> SimResponse:
        c = sim.model.clock
        if not isinstance(c, SimClock):
            raise ConfigurationError("this exchange's clock is not a SimClock and cannot be moved")
        if isinstance(data, dict) and "speed" in data:
            if set(data) - {"speed", "now_ms"}:
                raise ConfigurationError('a speed change takes {"speed": k} and optionally "now_ms" (the start)')
            c.set_speed(data["speed"], now_ms=data.get("now_ms"))
            return SimResponse(payload=c.state())
        if not isinstance(data, dict) or len(data) != 1:
            raise ConfigurationError('send exactly one of {"now_ms": ...}, {"advance_ms": ...}, {"offset_ms": ...}, '
                                     '{"speed": ...}')
        ((key, value),) = data.items()
        if key == "now_ms":
            c.set(value)
        elif key == "advance_ms":
            c.advance(int(value))
        elif key == "offset_ms":
            c.follow_wall(int(value))
        else:
            raise ConfigurationError(f"unknown clock field {key!r}")
        return SimResponse(payload=c.state())

    def ban(params: dict[str, str], data: Any) -> SimResponse:
        sim.ban(float(data.get("seconds", 60.0)) if isinstance(data, dict) else 60.0)
        return SimResponse(payload={"banned_for": sim.banned_for})

    def unban(params: dict[str, str], data: Any) -> SimResponse:
        sim.unban()
        return ok()

    def streams() -> Any:
        if sim.stream is None:
            raise ConfigurationError("this simulated exchange serves no streams")
        return sim.stream

    def stream_state(params: dict[str, str], data: Any) -> SimResponse:
        s = streams()
        return SimResponse(payload={"url": s.url, "running": s.running, "connections": s.connections(),
                                    "faults": s.faults.to_list(), "last_seq": s.log.last_seq})

    def stream_faults(params: dict[str, str], data: Any) -> SimResponse:
        return SimResponse(payload={"faults": streams().faults.to_list()})

    def add_stream_faults(params: dict[str, str], data: Any) -> SimResponse:
        s = streams()
        if isinstance(data, dict) and set(data) == {"faults"} and isinstance(data["faults"], list):
            faults = [StreamFault.from_dict(f) for f in data["faults"]]
        else:
            faults = [StreamFault.from_dict(data)]
        for fault in faults:  # all validated before any is scheduled
            s.faults.add(fault)
        return stream_faults(params, data)

    def clear_stream_faults(params: dict[str, str], data: Any) -> SimResponse:
        streams().clear_faults()
        return ok()

    def stream_log(params: dict[str, str], data: Any) -> SimResponse:
        s = streams()
        last = s.log.last_seq
        return SimResponse(payload={"log": s.log.since(int(params.get("since", "0"))), "last_seq": last})

    def clear_stream_log(params: dict[str, str], data: Any) -> SimResponse:
        streams().log.clear()
        return ok()

    return {
        ("GET", "/sim/stream"): stream_state,
        ("GET", "/sim/stream/faults"): stream_faults,
        ("POST", "/sim/stream/faults"): add_stream_faults,
        ("DELETE", "/sim/stream/faults"): clear_stream_faults,
        ("GET", "/sim/stream/log"): stream_log,
        ("DELETE", "/sim/stream/log"): clear_stream_log,
        ("GET", "/sim/health"): lambda params, data: ok(),
        ("GET", "/sim/info"): info,
        ("GET", "/sim/faults"): lambda params, data: plan(),
        ("POST", "/sim/faults"): set_faults,
        ("POST", "/sim/faults/inject"): inject,
        ("DELETE", "/sim/faults"): clear_faults,
        ("GET", "/sim/requests"): requests,
        ("DELETE", "/sim/requests"): clear_requests,
        ("GET", "/sim/clock"): clock,
        ("POST", "/sim/clock"): set_clock,
        ("POST", "/sim/ban"): ban,
        ("DELETE", "/sim/ban"): unban,
    }
