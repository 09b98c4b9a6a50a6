"""The simulator's websocket streams over real websockets on 127.0.0.1, against its REST API.

One exchange for the module, its clock running 60x wall time (a simulated minute a second), so a
test lives through a few candle closes in a few seconds. Raw clients use the ``websockets`` package;
the ccxt tests use the real ``ccxt.pro.binance``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from quantdag.errors import ConfigurationError
from quantdag.sim import MarketModel, SimClock, SimExchange
from quantdag.sim.__main__ import build_parser
from quantdag.sim.paths import MS_PER_DAY, MS_PER_MINUTE
from quantdag.sim.public_api import BOOK_LEVELS, book_levels
from quantdag.sim.stream import StreamKey, parse_stream

from .ws_support import connect, recv, run
from .support import GENESIS, NOW, http, http_json

SPEED = 60.0
KLINE_KEYS = {"t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"}


@pytest.fixture(scope="module")
def fast() -> Iterator[SimExchange]:
    """Seed 7 from NOW, history generated before the clock starts running at 60x."""
    clock = SimClock(NOW)
    model = MarketModel(7, genesis_ms=GENESIS, clock=clock)
    with SimExchange(model) as sim:
        clock.set_speed(SPEED)
        yield sim


# ---- helpers --------------------------------------------------------------------------------








async def subscribe(ws: ClientConnection, streams: list[str], rid: int = 1) -> None:
    await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": rid}))
    while True:  # events of earlier subscriptions may come first
        msg = await recv(ws)
        if "id" in msg:
            assert msg == {"result": None, "id": rid}
            return


async def until(ws: ClientConnection, done: Any, timeout: float = 10.0) -> list[Any]:
    """Messages until ``done(messages)`` is true."""
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while not done(out):
        out.append(await recv(ws, max(0.1, deadline - time.monotonic())))
    return out


def rest_klines(sim: SimExchange, symbol: str, start: int, limit: int = 1) -> list[list[Any]]:
    return http_json("GET", f"{sim.api_url}/klines?symbol={symbol}&interval=1m&startTime={start}&limit={limit}")


def closed(messages: list[Any]) -> list[dict[str, Any]]:
    return [m["k"] for m in messages if m.get("e") == "kline" and m["k"]["x"]]


# ---- shapes and endpoints -------------------------------------------------------------------


def test_raw_subscribe_gets_kline_trade_and_depth_events_in_binance_shape(fast: SimExchange) -> None:
    async def main() -> list[Any]:
        async with connect(fast.ws_url) as ws:
            await subscribe(ws, ["btcusdt@kline_1m", "btcusdt@trade", "btcusdt@aggTrade", "btcusdt@depth@100ms"])
            seen = await until(ws, lambda ms: {m.get("e") for m in ms} >= {"kline", "trade", "aggTrade",
                                                                            "depthUpdate"})
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 3}))
            answers = [m for m in await until(ws, lambda ms: sum("id" in m for m in ms) == 2) if "id" in m]
            assert answers[0] == {"result": sorted(["btcusdt@kline_1m", "btcusdt@trade", "btcusdt@aggTrade",
                                                    "btcusdt@depth@100ms"]), "id": 2}
            assert answers[1] == {"result": None, "id": 3}
            later = await until(ws, lambda ms: len(ms) >= 50)
            assert all(m.get("e") != "trade" for m in later)  # nothing after the answer to UNSUBSCRIBE
            return seen

    seen = run(main())
    by_kind = {m["e"]: m for m in seen}
    kline = by_kind["kline"]
    assert set(kline) == {"e", "E", "s", "k"} and kline["s"] == "BTCUSDT" and set(kline["k"]) == KLINE_KEYS
    assert kline["k"]["i"] == "1m" and kline["k"]["T"] == kline["k"]["t"] + MS_PER_MINUTE - 1
    trade = by_kind["trade"]
    assert set(trade) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"} and trade["E"] == trade["T"]
    agg = by_kind["aggTrade"]
    assert set(agg) == {"e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"} and agg["a"] == agg["f"] == agg["l"]
    depth = by_kind["depthUpdate"]
    assert set(depth) == {"e", "E", "s", "U", "u", "b", "a"} and depth["u"] == depth["E"] == depth["U"] + 999
    assert depth["b"] and depth["a"] and all(len(level) == 2 for level in depth["b"] + depth["a"])
    assert float(depth["b"][0][0]) > float(depth["b"][-1][0])  # bids best first, asks best first
    assert float(depth["a"][0][0]) < float(depth["a"][-1][0])


def test_stream_in_path_and_combined_streams_wrapped(fast: SimExchange) -> None:
    base = fast.ws_url.removesuffix("/ws")

    async def main() -> tuple[Any, list[Any]]:
        async with connect(f"{base}/ws/ethusdt@aggTrade") as ws:
            raw = await recv(ws)
        async with connect(f"{base}/stream?streams=ethusdt@kline_1m/ethusdt@depth") as ws:
            wrapped = await until(ws, lambda ms: {m["stream"] for m in ms} == {"ethusdt@kline_1m", "ethusdt@depth"})
        return raw, wrapped

    raw, wrapped = run(main())
    assert raw["e"] == "aggTrade" and raw["s"] == "ETHUSDT"
    for msg in wrapped:
        assert set(msg) == {"stream", "data"}
        assert msg["data"]["e"] == ("kline" if msg["stream"] == "ethusdt@kline_1m" else "depthUpdate")


def test_unknown_streams_methods_json_and_paths_are_errors(fast: SimExchange) -> None:
    async def main() -> list[Any]:
        async with connect(f"{fast.ws_url}/0") as ws:  # ccxt's url: a non-stream path segment is ignored
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["foousdt@trade", "btcusdt@trade"], "id": 7}))
            await ws.send(json.dumps({"method": "HELLO", "id": 8}))
            await ws.send("{not json")
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 9}))
            return [await recv(ws) for _ in range(4)]

    bad_stream, bad_method, bad_json, listed = run(main())
    assert bad_stream["id"] == 7 and bad_stream["error"]["code"] == 2 and "foousdt@trade" in bad_stream["error"]["msg"]
    assert bad_method["id"] == 8 and bad_method["error"]["code"] == 2
    assert bad_json["id"] is None and bad_json["error"]["code"] == 3
    assert listed == {"result": [], "id": 9}  # the rejected SUBSCRIBE subscribed nothing

    async def wrong_path() -> None:
        async with connect(fast.ws_url.replace("/ws", "/nope")):
            pass

    with pytest.raises(InvalidStatus) as err:
        run(wrong_path())
    assert err.value.response.status_code == 404


def test_parse_stream_names() -> None:
    ids = {"BTCUSDT"}
    assert parse_stream("btcusdt@kline_1h", ids) == StreamKey("kline", "BTCUSDT", "1h")
    assert parse_stream("btcusdt@depth@1000ms", ids) == StreamKey("depth", "BTCUSDT")
    assert parse_stream("btcusdt@aggTrade", ids) == StreamKey("aggTrade", "BTCUSDT")
    for name in ("BTCUSDT@trade", "btcusdt@kline_7m", "btcusdt@aggtrade", "ethusdt@trade", "btcusdt", "0"):
        assert parse_stream(name, ids) is None, name


# ---- the same market as REST ------------------------------------------------------------------


def test_closed_streamed_candles_equal_rest_klines_and_updates_equal_rest_at_their_instant(fast: SimExchange) -> None:
    async def main() -> list[Any]:
        async with connect(f"{fast.ws_url}/solusdt@kline_1m") as ws:
            return await until(ws, lambda ms: len(closed(ms)) >= 3, timeout=12)

    messages = run(main())
    finals = closed(messages)
    opens = [k["t"] for k in finals]
    assert opens == [opens[0] + i * MS_PER_MINUTE for i in range(len(opens))]  # one x=true per minute, in order
    for k in finals:
        (row,) = rest_klines(fast, "SOLUSDT", k["t"])
        assert [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"]] == row[:11]
        assert k["L"] - k["f"] + 1 == k["n"]
    spec = fast.model.spec("SOL/USDT")
    updates = [m for m in messages if not m["k"]["x"]]
    assert len(updates) >= 60  # every 2 simulated seconds
    for m in updates[:: max(1, len(updates) // 10)]:
        units = fast.model.kline_units(spec.symbol, "1m", m["k"]["t"], m["k"]["t"] + 1, now_ms=m["E"])
        assert m["k"]["c"] == f"{int(units.close[0]) / 100:.8f}" and m["k"]["n"] == int(units.trades[0])


def test_speed_60_closes_a_simulated_minute_in_about_a_second(fast: SimExchange) -> None:
    assert fast.model.clock.speed == SPEED

    async def main() -> list[float]:
        async with connect(f"{fast.ws_url}/bnbusdt@kline_1m") as ws:
            stamps: list[float] = []
            while len(stamps) < 3:
                if (await recv(ws))["k"]["x"]:
                    stamps.append(time.monotonic())
            return stamps

    stamps = run(main())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(0.7 < g < 1.4 for g in gaps), gaps


def test_streamed_trades_equal_rest_trades_and_sum_to_the_candle(fast: SimExchange) -> None:
    async def main() -> list[Any]:
        async with connect(f"{fast.ws_url}/btcusdt@trade") as ws:
            first = await recv(ws)
            minute = first["T"] // MS_PER_MINUTE * MS_PER_MINUTE
            # until two minutes after the first one's have started: the next minute is complete
            return [first, *await until(ws, lambda ms: bool(ms) and ms[-1]["T"] >= minute + 2 * MS_PER_MINUTE)]

    trades = run(main())
    ids = [t["t"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # no gap, no duplicate
    assert [t["T"] for t in trades] == sorted(t["T"] for t in trades)
    rest: list[dict[str, Any]] = []
    while len(rest) < len(trades):
        rest += http_json("GET", f"{fast.api_url}/aggTrades?symbol=BTCUSDT&fromId={ids[0] + len(rest)}&limit=1000")
    rest = rest[: len(trades)]
    assert [(r["a"], r["p"], r["q"], r["T"], r["m"]) for r in rest] == \
        [(t["t"], t["p"], t["q"], t["T"], t["m"]) for t in trades]
    minute = trades[0]["T"] // MS_PER_MINUTE * MS_PER_MINUTE + MS_PER_MINUTE
    inside = [t for t in trades if minute <= t["T"] < minute + MS_PER_MINUTE]
    (row,) = rest_klines(fast, "BTCUSDT", minute)
    spec = fast.model.spec("BTC/USDT")
    assert len(inside) == row[8] and inside[0]["t"] == fast.model._trade_id_before(spec, (minute - GENESIS) // 60_000)
    units = 10**5
    assert sum(round(float(t["q"]) * units) for t in inside) == round(float(row[5]) * units)
    assert sum(round(float(t["q"]) * units) for t in inside if not t["m"]) == round(float(row[9]) * units)
    prices = [float(t["p"]) for t in inside]
    assert (prices[0], max(prices), min(prices), prices[-1]) == tuple(float(x) for x in row[1:5])
    by_time = http_json("GET", f"{fast.api_url}/aggTrades?symbol=BTCUSDT&startTime={minute}"
                               f"&endTime={minute + MS_PER_MINUTE - 1}&limit=1000")
    assert [r["a"] for r in by_time] == [t["t"] for t in inside][:1000]
    recent = http_json("GET", f"{fast.api_url}/historicalTrades?symbol=BTCUSDT&fromId={inside[0]['t']}&limit=3")
    assert [(r["id"], r["price"], r["qty"], r["time"], r["isBuyerMaker"]) for r in recent] == \
        [(t["t"], t["p"], t["q"], t["T"], t["m"]) for t in inside[:3]]


def test_rest_trade_endpoints_limits_and_errors(fast: SimExchange) -> None:
    now = http_json("GET", f"{fast.api_url}/time")["serverTime"]
    latest = http_json("GET", f"{fast.api_url}/trades?symbol=ETHUSDT&limit=5")
    assert len(latest) == 5 and [r["id"] for r in latest] == list(range(latest[0]["id"], latest[0]["id"] + 5))
    assert latest[-1]["time"] <= http_json("GET", f"{fast.api_url}/time")["serverTime"]
    assert len(http_json("GET", f"{fast.api_url}/aggTrades?symbol=ETHUSDT")) == 500
    assert len(http_json("GET", f"{fast.api_url}/aggTrades?symbol=ETHUSDT&limit=5000")) == 1000
    status, _, raw = http("GET", f"{fast.api_url}/aggTrades?symbol=ETHUSDT&startTime={now - 7_200_000}&endTime={now}")
    assert status == 400 and json.loads(raw)["code"] == -1127
    status, _, raw = http("GET", f"{fast.api_url}/aggTrades?symbol=NOPE")
    assert status == 400 and json.loads(raw)["code"] == -1121
    future = http_json("GET", f"{fast.api_url}/aggTrades?symbol=ETHUSDT&startTime={now + MS_PER_DAY}")
    assert future == []


def test_depth_snapshot_plus_diffs_rebuild_the_later_rest_snapshot(fast: SimExchange) -> None:
    """Binance's documented recipe: buffer diffs, snapshot, drop u <= lastUpdateId, first U <= id+1 <= u."""

    def book_of(snapshot: dict[str, Any]) -> dict[str, dict[str, str]]:
        return {side: dict(snapshot[side]) for side in ("bids", "asks")}

    def apply(book: dict[str, dict[str, str]], event: dict[str, Any]) -> None:
        for side, key in (("bids", "b"), ("asks", "a")):
            for price, qty in event[key]:
                if float(qty) == 0:
                    book[side].pop(price, None)
                else:
                    book[side][price] = qty

    async def main() -> tuple[dict[str, Any], dict[str, dict[str, str]], int]:
        async with connect(f"{fast.ws_url}/ethusdt@depth@100ms") as ws:
            buffered = [await recv(ws)]
            snapshot = http_json("GET", f"{fast.api_url}/depth?symbol=ETHUSDT&limit=1000")
            book, last = book_of(snapshot), snapshot["lastUpdateId"]
            assert len(snapshot["bids"]) == len(snapshot["asks"]) == BOOK_LEVELS
            applied = 0
            while applied < 90:
                event = buffered.pop(0) if buffered else await recv(ws)
                if event["u"] <= last:
                    continue
                if applied == 0:
                    assert event["U"] <= last + 1 <= event["u"]
                else:
                    assert event["U"] == last + 1
                apply(book, event)
                last, applied = event["u"], applied + 1
            later = http_json("GET", f"{fast.api_url}/depth?symbol=ETHUSDT&limit=5000")
            while last < later["lastUpdateId"] - 999:  # events up to the snapshot's second
                event = await recv(ws)
                assert event["U"] == last + 1
                apply(book, event)
                last = event["u"]
            return later, book, last

    later, book, last = run(main())
    assert last <= later["lastUpdateId"] < last + 1000
    assert book == book_of(later)


def test_rest_depth_limit_is_a_prefix_of_one_book(fast: SimExchange) -> None:
    fast.model.clock.set(NOW)  # frozen for a moment: two snapshots of one second
    try:
        small = http_json("GET", f"{fast.api_url}/depth?symbol=BTCUSDT&limit=5")
        big = http_json("GET", f"{fast.api_url}/depth?symbol=BTCUSDT&limit=500")
    finally:
        fast.model.clock.set_speed(SPEED, now_ms=NOW)
    assert small["lastUpdateId"] == big["lastUpdateId"] == NOW
    assert small["bids"] == big["bids"][:5] and small["asks"] == big["asks"][:5] and len(big["bids"]) == BOOK_LEVELS
    spec = fast.model.spec("BTC/USDT")
    assert [float(p) for p, _ in big["bids"]] == book_levels(fast.model, spec, NOW).bids[:, 0].tolist()


# ---- ccxt.pro ---------------------------------------------------------------------------------


def test_ccxt_pro_watch_ohlcv_trades_and_order_book_against_the_simulator(fast: SimExchange) -> None:
    async def main() -> tuple[list[list[float]], list[dict[str, Any]], list[dict[str, Any]], Any]:
        ex = fast.ccxt_pro_client()
        try:
            assert ex.urls["api"]["ws"]["spot"] == fast.ws_url
            seen: dict[int, list[float]] = {}  # ccxt.pro returns only what is new since the last call
            while not seen or max(seen) < min(seen) + 2 * MS_PER_MINUTE:  # two closes seen
                seen.update((c[0], list(c)) for c in await ex.watch_ohlcv("SOL/USDT", "1m"))
            trades: list[dict[str, Any]] = []
            while len(trades) < 200:
                trades += await ex.watch_trades("BNB/USDT")
            book = await ex.watch_order_book("ETH/USDT")
            for _ in range(5):
                book = await ex.watch_order_book("ETH/USDT")
            levels = [list(level) for level in book["bids"]], [list(level) for level in book["asks"]], book["nonce"]
            rest = await ex.fetch_trades("BNB/USDT", since=trades[0]["timestamp"], limit=300)
            return [seen[t] for t in sorted(seen)], trades, rest, levels  # the book copied at once: it goes on changing
        finally:
            await ex.close()

    candles, trades, rest, (bids, asks, nonce) = run(main(), timeout=25)
    by_open = {c[0]: c for c in candles}
    closed_open = candles[-1][0] - MS_PER_MINUTE
    (row,) = rest_klines(fast, "SOLUSDT", closed_open)
    assert by_open[closed_open] == [row[0], *(float(x) for x in row[1:6])]
    ids = [int(t["id"]) for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert [(t["id"], t["price"], t["amount"], t["timestamp"], t["side"]) for t in trades] == \
        [(r["id"], r["price"], r["amount"], r["timestamp"], r["side"]) for r in rest[: len(trades)]]
    assert nonce % 1000 == 0  # after diffs the nonce is the last event's u, a second's first ms
    expected = book_levels(fast.model, fast.model.spec("ETH/USDT"), nonce)
    assert bids == expected.bids.tolist() and asks == expected.asks.tolist()


# ---- the clock's speed ------------------------------------------------------------------------


def test_sim_clock_speed_runs_scaled_from_its_start_and_moves() -> None:
    clock = SimClock(1_000_000, speed=1000)
    time.sleep(0.05)
    assert 1_040_000 <= clock() <= 1_300_000 and clock.speed == 1000 and not clock.frozen
    clock.advance(10_000_000)
    assert clock() >= 11_040_000
    clock.set(5)
    assert clock.speed == 0.0 and clock() == 5
    clock.set_speed(2.0, now_ms=0)
    assert clock.state()["speed"] == 2.0 and clock.state()["offset_ms"] is None
    clock.set_speed(1.0)
    assert clock.state()["offset_ms"] is not None
    assert "speed" in repr(SimClock(7, speed=3))
    for bad in (0, -1, float("inf"), True, "2"):
        with pytest.raises(ConfigurationError):
            SimClock(speed=bad)  # type: ignore[arg-type]


def test_speed_over_the_control_api_and_cli_flag() -> None:
    model = MarketModel(3, genesis_ms=GENESIS, clock=SimClock(GENESIS + 2 * MS_PER_DAY), history_days=3)
    with SimExchange(model) as sim:
        state = http_json("POST", f"{sim.url}/sim/clock", {"speed": 600, "now_ms": GENESIS + MS_PER_DAY})
        assert state["speed"] == 600 and not state["frozen"]
        time.sleep(0.1)
        assert http_json("GET", f"{sim.url}/sim/clock")["now_ms"] >= GENESIS + MS_PER_DAY + 50_000
        status, _, _ = http("POST", f"{sim.url}/sim/clock", {"speed": -1})
        assert status == 400
        status, _, _ = http("POST", f"{sim.url}/sim/clock", {"speed": 2, "advance_ms": 1})
        assert status == 400
        assert http_json("GET", f"{sim.url}/sim/info")["ws_url"] == sim.ws_url
    args = build_parser().parse_args(["--speed", "60", "--ws-port", "0"])
    assert args.speed == 60.0 and args.ws_port == 0


def test_a_stepped_clock_streams_exactly_what_passed_and_a_long_jump_is_capped() -> None:
    clock = SimClock(NOW)  # frozen: only the test moves it
    model = MarketModel(7, genesis_ms=GENESIS, clock=clock, history_days=31)

    async def quiet(ws: ClientConnection) -> list[Any]:
        """Everything sent until nothing comes for 0.3 s."""
        out = []
        while True:
            try:
                out.append(json.loads(await asyncio.wait_for(ws.recv(), 0.3)))
            except TimeoutError:
                return out

    async def main(sim: SimExchange) -> tuple[list[Any], list[Any], list[Any]]:
        async with connect(f"{sim.ws_url.removesuffix('/ws')}/stream?streams=bnbusdt@kline_1m/bnbusdt@depth/"
                           f"bnbusdt@trade") as ws:
            await quiet(ws)  # the first kline update
            clock.advance(3 * MS_PER_MINUTE)
            stepped = await quiet(ws)
            clock.advance(60 * MS_PER_MINUTE)
            jumped = await quiet(ws)
            clock.set(NOW)
            await quiet(ws)  # the streams start over at NOW
            clock.advance(2000)
            back = await quiet(ws)
            return stepped, jumped, back

    with SimExchange(model) as sim:
        stepped, jumped, back = run(main(sim))
    by = {name: [m["data"] for m in stepped if m["stream"] == name]
          for name in ("bnbusdt@kline_1m", "bnbusdt@depth", "bnbusdt@trade")}
    first_close = NOW // MS_PER_MINUTE * MS_PER_MINUTE
    assert [k["k"]["t"] for k in by["bnbusdt@kline_1m"] if k["k"]["x"]] == [first_close + i * MS_PER_MINUTE
                                                                             for i in range(3)]
    depth = by["bnbusdt@depth"]
    assert len(depth) == 180 and all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(depth))
    trades = by["bnbusdt@trade"]
    assert [t["t"] for t in trades] == list(range(trades[0]["t"], trades[0]["t"] + len(trades)))
    assert trades[0]["T"] > NOW and trades[-1]["T"] <= NOW + 3 * MS_PER_MINUTE
    jumped_closes = [m["data"]["k"]["t"] for m in jumped if m["stream"] == "bnbusdt@kline_1m" and m["data"]["k"]["x"]]
    assert len(jumped_closes) == 10  # CATCHUP_MS: ten minutes replayed, fifty skipped
    jumped_depth = [m["data"] for m in jumped if m["stream"] == "bnbusdt@depth"]
    assert jumped_depth[0]["U"] == depth[-1]["u"] + 1
    assert jumped_depth[0]["u"] == (NOW + 63 * MS_PER_MINUTE) // 1000 * 1000  # one event spans the jump
    back_depth = [m["data"] for m in back if m["stream"] == "bnbusdt@depth"]
    assert back_depth and back_depth[0]["U"] < jumped_depth[-1]["u"]  # set back: the ids go back, clients resync
