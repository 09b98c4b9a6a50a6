"""Request/response types and the route table entry of the simulated exchange.

Endpoints are plain functions ``handler(SimRequest) -> SimResponse`` registered as :class:`Route`
entries, so a later module (signed order endpoints, balances, a matching engine) adds its own
routes with :meth:`quantdag.sim.server.SimExchange.add_route` without touching the server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from quantdag.sim.faults import Draw

JSON_TYPE = "application/json;charset=UTF-8"


@dataclass(frozen=True)
class SimRequest:
    """One parsed request: query and form parameters merged into ``params`` (first value wins).

    ``query`` is the raw query string exactly as sent: a Binance-style signed endpoint verifies its
    HMAC-SHA256 ``signature`` over it (and over ``body`` for form-encoded POSTs).
    """

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    draw: Draw | None = None
    query: str = ""

    @property
    def fault_kind(self) -> str | None:
        return self.draw.fault.kind if self.draw is not None else None


@dataclass
class SimResponse:
    """What to send: a JSON ``payload`` or a raw ``body``, plus extra headers."""

    status: int = 200
    payload: Any = None
    body: bytes | None = None
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps(self.payload, separators=(",", ":")).encode()


class BinanceError(Exception):
    """A Binance-style error: HTTP ``status`` with body ``{"code": code, "msg": msg}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def response(self) -> SimResponse:
        return SimResponse(self.status, {"code": self.code, "msg": self.msg})


Handler = Callable[[SimRequest], SimResponse]
Weight = int | Callable[[Mapping[str, str]], int]


@dataclass(frozen=True)
class Route:
    """A route table entry: method, exact path, handler and request weight (fixed or from params)."""

    method: str
    path: str
    handler: Handler
    weight: Weight = 1

    def cost(self, params: Mapping[str, str]) -> int:
        return self.weight(params) if callable(self.weight) else int(self.weight)
