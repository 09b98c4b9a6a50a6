"""Stream faults as a client sees them, over real websockets on 127.0.0.1, and the fault log.

One exchange for the module with its clock at 60x wall time; each test starts with no scheduled fault
and an empty log.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import ccxt
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from quantdag.errors import ConfigurationError
from quantdag.sim import MarketModel, SimClock, SimExchange
from quantdag.sim.public_api import book_levels
from quantdag.sim.stream_faults import STREAM_FAULT_KINDS, StreamFault, StreamFaultPlan

from .ws_support import connect, recv, run
from .support import GENESIS, NOW, http, http_json

SPEED = 60.0


@pytest.fixture(scope="module")
def shared_fast() -> Iterator[SimExchange]:
    clock = SimClock(NOW)
    with SimExchange(MarketModel(7, genesis_ms=GENESIS, clock=clock)) as sim:
        clock.set_speed(SPEED)
        yield sim


@pytest.fixture
def fast(shared_fast: SimExchange) -> Iterator[SimExchange]:
    shared_fast.clear_stream_faults()
    assert shared_fast.stream is not None
    shared_fast.stream.log.clear()
    yield shared_fast
    shared_fast.clear_stream_faults()








async def take(ws: ClientConnection, n: int) -> list[Any]:
    return [await recv(ws) for _ in range(n)]


async def through(ws: ClientConnection, sim: SimExchange, kind: str, count: int,
                  past: Callable[[Any, list[dict[str, Any]]], bool]) -> list[Any]:
    """Messages until the log holds ``count`` entries of ``kind`` and a message is ``past`` all of them."""
    out: list[Any] = []
    while len(log := entries(sim, kind)) < count or not out or not past(out[-1], log):
        out.append(await recv(ws))
    return out


def entries(sim: SimExchange, kind: str) -> list[dict[str, Any]]:
    return [e for e in sim.stream_faults_log if e["kind"] == kind]


# ---- connection faults ------------------------------------------------------------------------


def test_disconnect_drops_the_tcp_connection_so_the_client_sees_1006(fast: SimExchange) -> None:
    async def main() -> tuple[int | None, list[Any]]:
        async with connect(f"{fast.ws_url}/btcusdt@kline_1m") as hit, connect(f"{fast.ws_url}/ethusdt@trade") as spared:
            await recv(hit)
            await recv(spared)
            fast.inject_stream_fault("disconnect", stream="btcusdt")
            with pytest.raises(ConnectionClosedError):
                while True:
                    await recv(hit)
            assert hit.close_code == 1006  # no close frame: an abnormal closure
            return hit.close_code, await take(spared, 20)  # the other stream is not touched

    code, spared = run(main())
    assert code == 1006 and all(m["e"] == "trade" for m in spared)
    (entry,) = entries(fast, "disconnect")
    assert entry["streams"] == ["btcusdt@kline_1m"] and entry["close_code"] == 1006
    assert set(entry) >= {"seq", "sim_ms", "wall_ms", "conn"}


def test_silence_withholds_data_but_keeps_the_connection_then_resumes(fast: SimExchange) -> None:
    async def main() -> tuple[float, float, Any, Any]:
        async with connect(f"{fast.ws_url}/bnbusdt@kline_1m") as ws:
            first = before = await recv(ws)
            while before["E"] < first["E"] + 4000:  # a few updates flow
                before = await recv(ws)
            fast.inject_stream_fault("silence", duration_s=90)  # 1.5 s of wall time at 60x
            t0 = time.monotonic()
            while True:  # drain what was sent before the silence started
                try:
                    before = json.loads(await asyncio.wait_for(ws.recv(), 0.3))
                except TimeoutError:
                    break
            pong_wait = await ws.ping()
            await asyncio.wait_for(pong_wait, 1)  # the connection is alive: pings are answered
            after = await recv(ws, timeout=5)
            return t0, time.monotonic() - t0, before, after

    _, quiet_s, before, after = run(main())
    assert quiet_s > 1.2  # about 90 simulated seconds
    assert after["E"] - before["E"] >= 80_000  # what fell in the silence was withheld, not delivered late
    (start,) = entries(fast, "silence")
    (end,) = entries(fast, "silence_end")
    assert start["until_ms"] == start["sim_ms"] + 90_000 and end["withheld"] > 20 and end["conn"] == start["conn"]


def test_silence_without_resume_stays_open_and_mute(fast: SimExchange) -> None:
    async def main() -> None:
        async with connect(f"{fast.ws_url}/ethusdt@trade") as ws:
            await recv(ws)
            fast.inject_stream_fault("silence", resume=False)
            await asyncio.sleep(0.3)
            while True:
                try:
                    await asyncio.wait_for(ws.recv(), 0.3)
                except TimeoutError:
                    break
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 1.5)  # 90 simulated seconds of an active market: nothing
            await asyncio.wait_for(await ws.ping(), 1)

    run(main())
    (entry,) = entries(fast, "silence")
    assert entry["until_ms"] is None and not entries(fast, "silence_end")


def test_restart_drops_everyone_refuses_then_serves_on_the_same_port(fast: SimExchange) -> None:
    port = fast.ws_port

    async def main() -> tuple[float, Any]:
        async with connect(f"{fast.ws_url}/solusdt@kline_1m") as ws:
            await recv(ws)
            fast.inject_stream_fault("restart", delay_s=1.0)
            with pytest.raises(ConnectionClosed):
                while True:
                    await recv(ws)
        t0 = time.monotonic()
        with pytest.raises(OSError):
            async with connect(f"{fast.ws_url}/solusdt@kline_1m"):
                pass
        while True:
            try:
                async with connect(f"{fast.ws_url}/solusdt@kline_1m") as ws:
                    return time.monotonic() - t0, await recv(ws)
            except OSError:
                await asyncio.sleep(0.1)

    down_s, first = run(main())
    assert 0.6 < down_s < 3.0 and first["e"] == "kline" and fast.ws_port == port and fast.stream.running
    (restart,) = entries(fast, "restart")
    (back,) = entries(fast, "restart_end")
    assert restart["delay_s"] == 1.0 and back["port"] == port and back["wall_ms"] - restart["wall_ms"] >= 900


def test_periodic_disconnect_fires_every_simulated_minute_at_its_offset(fast: SimExchange) -> None:
    fast.inject_stream_fault("disconnect", every_min=1, offset_s=30)

    async def main() -> int:
        drops, deadline = 0, time.monotonic() + 3.6
        while time.monotonic() < deadline:
            try:
                async with connect(f"{fast.ws_url}/bnbusdt@trade") as ws:
                    while time.monotonic() < deadline:
                        await recv(ws, timeout=max(0.1, deadline - time.monotonic()))
            except (ConnectionClosed, TimeoutError):
                drops += 1
        return drops

    drops = run(main())
    log = entries(fast, "disconnect")
    assert 2 <= len(log) <= 4 and drops >= len(log)
    assert all(30_000 <= e["sim_ms"] % 60_000 < 40_000 for e in log)  # a pass or a few after the boundary + 30 s
    assert [b["sim_ms"] // 60_000 - a["sim_ms"] // 60_000 for a, b in itertools.pairwise(log)] == \
        [1] * (len(log) - 1)


# ---- message faults ---------------------------------------------------------------------------


def test_duplicate_sends_messages_twice_and_logs_each(fast: SimExchange) -> None:
    async def main() -> list[Any]:
        async with connect(f"{fast.ws_url}/solusdt@trade") as ws:
            await recv(ws)
            fast.inject_stream_fault("duplicate", count=3)
            return await through(ws, fast, "duplicate", 3, lambda m, log: m["t"] > max(e["id"] for e in log))

    trades = run(main())
    ids = [t["t"] for t in trades]
    repeated = [a for a, b in itertools.pairwise(trades) if a == b]
    assert len(repeated) == 3 and len(ids) - len(set(ids)) == 3
    assert sorted(set(ids)) == list(range(min(ids), max(ids) + 1))  # nothing lost
    assert [e["id"] for e in entries(fast, "duplicate")] == [t["t"] for t in repeated]


def test_out_of_order_swaps_pairs_of_messages(fast: SimExchange) -> None:
    async def main() -> list[Any]:
        async with connect(f"{fast.ws_url}/solusdt@aggTrade") as ws:
            await recv(ws)
            fast.inject_stream_fault("out_of_order", count=2)
            return await through(ws, fast, "out_of_order", 2,
                                 lambda m, log: m["a"] > max(e["sent_first"]["id"] for e in log))

    ids = [t["a"] for t in run(main())]
    backwards = [(a, b) for a, b in itertools.pairwise(ids) if b < a]
    assert len(backwards) == 2 and sorted(ids) == list(range(min(ids), max(ids) + 1))
    log = entries(fast, "out_of_order")
    assert [(e["sent_first"]["id"], e["held"]["id"]) for e in log] == backwards


def test_depth_gap_skips_update_ids(fast: SimExchange) -> None:
    async def main() -> list[Any]:
        async with connect(f"{fast.ws_url}/ethusdt@depth@100ms") as ws, \
                connect(f"{fast.ws_url}/ethusdt@trade") as trades:
            first = await recv(ws)  # may be the last event before the one dropped
            await recv(trades)
            fast.inject_stream_fault("depth_gap", count=1)
            return [first, *await through(ws, fast, "depth_gap", 1, lambda m, log: m["U"] > log[0]["u"])]

    events = run(main())
    gaps = [(a["u"], b["U"]) for a, b in itertools.pairwise(events) if b["U"] != a["u"] + 1]
    (entry,) = entries(fast, "depth_gap")  # the trade connection was no target
    assert len(gaps) == 1 and gaps[0] == (entry["U"] - 1, entry["u"] + 1)


def test_message_faults_only_touch_the_named_stream(fast: SimExchange) -> None:
    async def main() -> list[Any]:
        async with connect(f"{fast.ws_url.removesuffix('/ws')}/stream?streams=btcusdt@trade/ethusdt@trade") as ws:
            await recv(ws)
            fast.inject_stream_fault("duplicate", count=5, stream="ethusdt@trade")
            return await through(ws, fast, "duplicate", 5, lambda m, log: m["stream"] == "ethusdt@trade"
                                 and m["data"]["t"] > max(e["id"] for e in log))

    messages = run(main())
    dupes = [a for a, b in itertools.pairwise(messages) if a == b]
    assert len(dupes) == 5 and {d["stream"] for d in dupes} == {"ethusdt@trade"}


# ---- ccxt.pro under faults --------------------------------------------------------------------


def test_ccxt_pro_raises_on_disconnect_and_depth_gap_and_recovers_when_called_again(fast: SimExchange) -> None:
    async def main() -> tuple[type[BaseException], type[BaseException], Any, int]:
        ex = fast.ccxt_pro_client()
        try:
            await ex.watch_trades("BNB/USDT")
            fast.inject_stream_fault("disconnect")
            with pytest.raises(ccxt.NetworkError) as dropped:
                while True:
                    await ex.watch_trades("BNB/USDT")
            trades = await ex.watch_trades("BNB/USDT")  # a new connection and subscription
            assert trades
            for _ in range(3):  # synced and past the snapshot: a gap before it would go unnoticed, rightly
                book = await ex.watch_order_book("ETH/USDT")
            fast.inject_stream_fault("depth_gap", count=1)
            with pytest.raises(ccxt.ChecksumError) as gap:  # ccxt.pro notices U != nonce + 1 ...
                while True:
                    await ex.watch_order_book("ETH/USDT")
            for _ in range(3):  # ... and resubscribes with a new snapshot when called again
                book = await ex.watch_order_book("ETH/USDT")
            # copied at once: the book object goes on changing with every message
            return dropped.type, gap.type, [list(level) for level in book["bids"]], book["nonce"]
        finally:
            await ex.close()

    dropped, gap, bids, nonce = run(main())
    assert issubclass(dropped, ccxt.NetworkError) and gap is ccxt.ChecksumError
    assert bids == book_levels(fast.model, fast.model.spec("ETH/USDT"), nonce).bids.tolist()
    assert len(entries(fast, "disconnect")) == 1 and len(entries(fast, "depth_gap")) == 1


# ---- control API and validation -------------------------------------------------------------


def test_control_api_schedules_lists_logs_and_clears_stream_faults(fast: SimExchange) -> None:
    base = f"{fast.url}/sim/stream"
    one = http_json("POST", f"{base}/faults", {"kind": "duplicate", "count": 2, "stream": "btcusdt@trade"})
    assert [f["kind"] for f in one["faults"]] == ["duplicate"]
    many = http_json("POST", f"{base}/faults", {"faults": [{"kind": "disconnect", "every_min": 5},
                                                           {"kind": "restart", "at_ms": NOW + 10**12}]})
    assert [f["kind"] for f in many["faults"]] == ["duplicate", "disconnect", "restart"]
    status, _, raw = http("POST", f"{base}/faults", {"faults": [{"kind": "silence"}, {"kind": "meteor"}]})
    assert status == 400 and "meteor" in json.loads(raw)["error"]
    assert len(http_json("GET", f"{base}/faults")["faults"]) == 3  # the bad batch scheduled nothing

    async def main() -> dict[str, Any]:
        async with connect(f"{fast.ws_url}/btcusdt@trade") as ws:
            await take(ws, 100)
            return http_json("GET", base)

    state = run(main())
    assert state["url"] == fast.ws_url and state["running"]
    assert any(c["streams"] == ["btcusdt@trade"] for c in state["connections"])
    log = http_json("GET", f"{base}/log")
    assert [e["kind"] for e in log["log"]] == ["duplicate", "duplicate"] and log["last_seq"] == state["last_seq"]
    assert http_json("GET", f"{base}/log?since={log['last_seq']}")["log"] == []
    assert http_json("DELETE", f"{base}/faults") == {"ok": True}
    assert http_json("GET", f"{base}/faults")["faults"] == []
    assert http_json("DELETE", f"{base}/log") == {"ok": True}
    assert fast.stream_faults_log == []


def test_stream_fault_validation_and_schedule() -> None:
    assert set(STREAM_FAULT_KINDS) == {"disconnect", "silence", "duplicate", "out_of_order", "depth_gap", "restart"}
    for bad in ({"kind": "meteor"}, {"kind": "silence", "duration_s": -1}, {"kind": "duplicate", "count": 0},
                {"kind": "disconnect", "every_min": 1, "at_ms": 5}, {"kind": "disconnect", "every_min": 1,
                                                                     "offset_s": 60},
                {"kind": "silence", "resume": "no"}, {"kind": "silence", "when": 1}, {"kind": "silence", "stream": ""}):
        with pytest.raises(ConfigurationError):
            StreamFault.from_dict(bad)
    every = StreamFault("disconnect", every_min=5, offset_s=30)
    assert every.first_fire_ms(0) == 30_000 and every.next_fire_ms(30_000) == 330_000
    assert StreamFault("silence").first_fire_ms(123) == 123 and StreamFault("silence", at_ms=9).first_fire_ms(1) == 9
    plan = StreamFaultPlan()
    plan.add(StreamFault("duplicate"))
    plan.add(every)
    assert plan.due(10, lambda f: False) == []  # a one-shot fault waits for a target
    assert plan.due(20, lambda f: True) == [StreamFault("duplicate")]
    assert plan.due(40_000, lambda f: True) == [every] and plan.to_list()[0]["next_ms"] == 330_000
    assert plan.due(10_000_000, lambda f: True) == [every] and plan.to_list()[0]["next_ms"] == 10_230_000
    assert len(plan) == 1
