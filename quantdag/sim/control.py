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
``GET /sim/clock``        ``{"now_ms", "frozen", "offset_ms"}``
``POST /sim/clock``       one of ``{"now_ms": t}`` (freeze), ``{"advance_ms": d}``, ``{"offset_ms": d}``
``POST /sim/ban``         ban for ``{"seconds": s}``; ``DELETE /sim/ban`` lifts it
========================  ==================================================================

Control requests are not logged, rate limited or faulted. Bad input answers 400 ``{"error": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from quantdag.errors import ConfigurationError
from quantdag.sim.clock import SimClock
from quantdag.sim.faults import Fault, FaultPlan
from quantdag.sim.routing import SimResponse

if TYPE_CHECKING:  # pragma: no cover - import cycle only for the type checker
    from quantdag.sim.server import SimExchange

ControlHandler = Callable[[dict[str, str], Any], SimResponse]


def control_routes(sim: SimExchange) -> dict[tuple[str, str], ControlHandler]:
    """The control table of ``sim``: (method, path) -> handler(query params, JSON body)."""

    def ok() -> SimResponse:
        return SimResponse(payload={"ok": True})

    def plan() -> SimResponse:
        return SimResponse(payload=sim.faults.to_dict() if sim.faults is not None else None)

    def info(params: dict[str, str], data: Any) -> SimResponse:
        m = sim.model
        return SimResponse(payload={"url": sim.url, "seed": m.seed, "genesis_ms": m.genesis_ms, "now_ms": m.now_ms(),
                                    "symbols": list(m.symbols), "weight_limit": sim.limits.weight_limit})

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
        if not isinstance(data, dict) or len(data) != 1:
            raise ConfigurationError('send exactly one of {"now_ms": ...}, {"advance_ms": ...}, {"offset_ms": ...}')
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

    return {
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
