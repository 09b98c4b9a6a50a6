"""The ``/sim/*`` control API refuses cross-site and DNS-rebinding writes; the public API is unaffected.

Real HTTP to a real server on 127.0.0.1: each refused request is answered 403/415 with a JSON reason
and leaves the clock or the fault plan exactly as it was.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from quantdag.errors import ConfigurationError
from quantdag.sim import MarketModel, SimClock, SimExchange
from quantdag.sim.control import TOKEN_ENV, ControlRefused, check_control_request
from quantdag.sim.paths import MS_PER_DAY

from .support import GENESIS

START = GENESIS + 2 * MS_PER_DAY + 1000
PLAN = {"seed": 5, "scripted": [{"kind": "server_error", "status": 502, "count": 3}]}


def _model() -> MarketModel:
    return MarketModel(3, genesis_ms=GENESIS, clock=SimClock(START), history_days=3)


@pytest.fixture
def small() -> Iterator[SimExchange]:
    with SimExchange(_model()) as sim:
        yield sim


@pytest.fixture
def guarded() -> Iterator[SimExchange]:
    """A loopback server configured to require a control token (the mode of a non-loopback bind)."""
    with SimExchange(_model(), token="s3cret-token") as sim:
        yield sim


def _call(sim: SimExchange, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request over a fresh connection with exactly these headers (Host defaults to the server's)."""
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    try:
        hdrs = {"Host": f"127.0.0.1:{sim.port}", **(headers or {})}
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()


def _clock(sim: SimExchange) -> int:
    return sim.model.now_ms()


# ---- content type ----------------------------------------------------------------------------


def test_control_text_plain_post_refused_415_clock_unchanged(small: SimExchange) -> None:
    status, data = _call(small, "POST", "/sim/clock", _json({"advance_ms": 90_000}),
                         {"Content-Type": "text/plain;charset=UTF-8"})
    assert status == 415 and data["reason"] == "content_type" and "application/json" in data["error"]
    assert _clock(small) == START


def test_control_form_post_faults_refused_415_plan_unchanged(small: SimExchange) -> None:
    status, data = _call(small, "POST", "/sim/faults", _json(PLAN),
                         {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and data["reason"] == "content_type"
    assert small.faults is None


def test_control_post_without_content_type_refused_415_no_ban(small: SimExchange) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", small.port, timeout=5)
    try:  # http.client adds no Content-Type of its own
        conn.request("POST", "/sim/ban", body=b"", headers={"Host": f"127.0.0.1:{small.port}"})
        resp = conn.getresponse()
        assert resp.status == 415 and json.loads(resp.read())["reason"] == "content_type"
    finally:
        conn.close()
    assert small.banned_for == 0


def test_control_delete_with_text_body_refused_415_plan_kept(small: SimExchange) -> None:
    small.inject("server_error", count=2)
    status, _ = _call(small, "DELETE", "/sim/faults", b"x", {"Content-Type": "text/plain"})
    assert status == 415 and small.faults is not None


# ---- Origin ----------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["https://evil.example", "http://evil.example:8765", "null",
                                    "http://127.0.0.1.evil.example", "file://", "ftp://localhost"])
def test_control_foreign_origin_refused_403_plan_unchanged(small: SimExchange, origin: str) -> None:
    status, data = _call(small, "POST", "/sim/faults", _json(PLAN), {"Origin": origin})
    assert status == 403 and data["reason"] == "origin"
    assert small.faults is None


def test_control_foreign_origin_get_refused_403(small: SimExchange) -> None:
    status, data = _call(small, "GET", "/sim/requests", headers={"Origin": "https://evil.example"})
    assert status == 403 and data["reason"] == "origin"


# ---- Host (DNS rebinding) ----------------------------------------------------------------------


def test_control_rebound_host_from_loopback_refused_403_clock_unchanged(small: SimExchange) -> None:
    status, data = _call(small, "POST", "/sim/clock", _json({"advance_ms": 90_000}),
                         {"Host": f"evil.example:{small.port}"})
    assert status == 403 and data["reason"] == "host" and "evil.example" in data["error"]
    assert _clock(small) == START


@pytest.mark.parametrize("host", ["127.0.0.1:1", "localhost", "127.0.0.1.nip.io:{port}", "", "[::2]:{port}"])
def test_control_wrong_host_or_port_refused_403_plan_unchanged(small: SimExchange, host: str) -> None:
    status, data = _call(small, "POST", "/sim/faults", _json(PLAN), {"Host": host.format(port=small.port)})
    assert status == 403 and data["reason"] == "host"
    assert small.faults is None


def test_control_rebound_host_get_request_log_refused_403(small: SimExchange) -> None:
    status, data = _call(small, "GET", "/sim/requests", headers={"Host": f"evil.example:{small.port}"})
    assert status == 403 and data["reason"] == "host"


# ---- accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host, origin", [
    ("127.0.0.1:{port}", None),
    ("localhost:{port}", "http://localhost:3000"),
    ("[::1]:{port}", "https://[::1]"),
    ("LOCALHOST:{port}", "http://127.0.0.1:{port}"),
])
def test_control_loopback_json_request_accepted_clock_moves(small: SimExchange, host: str, origin: str | None) -> None:
    headers = {"Host": host.format(port=small.port), "Content-Type": "application/json; charset=utf-8"}
    if origin is not None:
        headers["Origin"] = origin.format(port=small.port)
    status, data = _call(small, "POST", "/sim/clock", _json({"advance_ms": 90_000}), headers)
    assert status == 200 and data["now_ms"] == START + 90_000 == _clock(small)


def test_control_bodyless_delete_accepted_plan_dropped(small: SimExchange) -> None:
    small.inject("server_error", count=2)
    status, data = _call(small, "DELETE", "/sim/faults")
    assert status == 200 and data == {"ok": True} and small.faults is None


# ---- token mode ----------------------------------------------------------------------------------


def test_control_token_mode_missing_token_refused_403_plan_unchanged(guarded: SimExchange) -> None:
    status, data = _call(guarded, "POST", "/sim/faults", _json(PLAN))
    assert status == 403 and data["reason"] == "token" and "Bearer" in data["error"]
    assert guarded.faults is None
    status, data = _call(guarded, "GET", "/sim/clock")
    assert status == 403 and data["reason"] == "token"


@pytest.mark.parametrize("auth", ["Bearer s3cret-tokeN", "Bearer s3cret-token2", "Basic s3cret-token",
                                  "s3cret-token", "Bearer", "Bearer  "])
def test_control_token_mode_wrong_token_refused_403_clock_unchanged(guarded: SimExchange, auth: str) -> None:
    status, data = _call(guarded, "POST", "/sim/clock", _json({"advance_ms": 90_000}), {"Authorization": auth})
    assert status == 403 and data["reason"] == "token"
    assert _clock(guarded) == START


def test_control_token_mode_bearer_token_accepted_plan_replaced(guarded: SimExchange) -> None:
    status, data = _call(guarded, "POST", "/sim/faults", _json(PLAN), {"Authorization": "bearer s3cret-token"})
    assert status == 200 and data["scripted"][0]["count"] == 3
    assert guarded.faults is not None


def test_control_token_mode_right_token_foreign_host_still_refused_403(guarded: SimExchange) -> None:
    status, data = _call(guarded, "POST", "/sim/clock", _json({"advance_ms": 1}),
                         {"Authorization": "Bearer s3cret-token", "Host": f"evil.example:{guarded.port}"})
    assert status == 403 and data["reason"] == "host"
    assert _clock(guarded) == START


def test_public_api_token_mode_ccxt_fetches_candles_without_token(guarded: SimExchange) -> None:
    ex = guarded.ccxt_client(timeout=3000)
    rows = ex.fetch_ohlcv("BTC/USDT", "1h", limit=5)
    assert len(rows) == 5 and rows[-1][0] == START // 3_600_000 * 3_600_000


def test_public_api_foreign_origin_and_host_served_as_before(small: SimExchange) -> None:
    status, data = _call(small, "GET", "/api/v3/time",
                         headers={"Origin": "https://evil.example", "Host": "evil.example"})
    assert status == 200 and data == {"serverTime": START}


# ---- which servers need a token --------------------------------------------------------------


def test_sim_bound_beyond_loopback_without_token_generates_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    sim = SimExchange(_model(), host="0.0.0.0", warm=False)  # never started: nothing is bound
    other = SimExchange(_model(), host="0.0.0.0", warm=False)
    assert sim.token and len(sim.token) >= 32 and sim.token_generated and sim.token != other.token


def test_sim_bound_beyond_loopback_env_token_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "from-the-env")
    sim = SimExchange(_model(), host="192.168.1.20", warm=False)
    assert sim.token == "from-the-env" and not sim.token_generated


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_sim_bound_to_loopback_no_token_required(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv(TOKEN_ENV, "from-the-env")
    assert SimExchange(_model(), host=host, warm=False).token is None


def test_sim_empty_token_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="token"):
        SimExchange(_model(), token="", warm=False)


def test_check_control_request_beyond_loopback_ip_host_with_token_accepted() -> None:
    headers = {"Host": "192.168.1.20:8765", "Authorization": "Bearer t0k"}
    check_control_request("GET", headers, b"", port=8765, bind_host="0.0.0.0", token="t0k")
    with pytest.raises(ControlRefused) as refused:  # a name can be rebound; an address cannot
        check_control_request("GET", {**headers, "Host": "evil.example:8765"}, b"", port=8765,
                              bind_host="0.0.0.0", token="t0k")
    assert refused.value.status == 403 and refused.value.reason == "host"
    with pytest.raises(ControlRefused, match="token"):
        check_control_request("GET", {"Host": "192.168.1.20:8765"}, b"", port=8765, bind_host="0.0.0.0", token="t0k")


def test_cli_startup_lines_beyond_loopback_generated_token_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    from quantdag.sim.__main__ import startup_lines

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    sim = SimExchange(_model(), host="0.0.0.0", port=8765, warm=False)  # never started: nothing is bound
    assert startup_lines(sim) == ["http://0.0.0.0:8765", f"token {sim.token}"]
    monkeypatch.setenv(TOKEN_ENV, "from-the-env")  # the operator knows it: not printed
    assert startup_lines(SimExchange(_model(), host="0.0.0.0", port=8765, warm=False)) == ["http://0.0.0.0:8765"]
    assert startup_lines(SimExchange(_model(), port=8765, warm=False)) == ["http://127.0.0.1:8765"]
