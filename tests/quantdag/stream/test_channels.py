"""Trades and order books over the simulator's websockets (real ccxt.pro, real sockets), and a venue
without a closed-kline flag: what is stored equals what REST and the model say, whatever the faults."""

from __future__ import annotations

import asyncio

import ccxt
import numpy as np
import pytest

from quantdag.sim import MarketModel, SimExchange
from quantdag.sim.clock import SimClock
from quantdag.sim.public_api import book_levels
from quantdag.store import Warehouse
from quantdag.stream.landing import ingest
from quantdag.stream.streamer import Streamer, make_client

pytestmark = pytest.mark.slow  # each streams simulated minutes over real websockets (~12 s)


def _rest(sim):
    rest = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}})
    rest.urls["api"]["public"] = f"{sim.url}/api/v3"
    return rest


def _stream(sim, root, seconds, symbols, **kw):
    closed_flag = kw.pop("closed_flag", True)
    st = Streamer(lambda: make_client(f"{sim.url}/api/v3", sim.ws_url, closed_flag=closed_flag), symbols, root,
                  watchdog_s=1.5, wall_clock=False, **kw)  # fmt: skip
    stats = asyncio.run(st.run(seconds))
    wh = Warehouse(root / "q.duckdb")
    ingest(wh, root)
    return st, stats, wh


def _assert_trades_equal_rest(sim, wh):
    """Per market: every trade id between the first and last stored once, each equal to REST's."""
    rest = _rest(sim)
    spans = wh.query("SELECT symbol, min(id) AS lo, max(id) AS hi, count(*) AS n FROM market.trades GROUP BY symbol")
    assert spans.height >= 1
    for r in spans.iter_rows(named=True):
        assert r["n"] == r["hi"] - r["lo"] + 1, f"{r['symbol']}: a trade id is missing or stored twice"
        mine = wh.query("SELECT id, price, amount, side FROM market.trades WHERE symbol = ? ORDER BY id", [r["symbol"]])
        ref, fid = [], r["lo"]
        while fid <= r["hi"]:
            page = rest.fetch_trades(r["symbol"], limit=1000, params={"fromId": fid})
            ref += [(int(t["id"]), t["price"], t["amount"], t["side"]) for t in page if int(t["id"]) <= r["hi"]]
            fid = int(page[-1]["id"]) + 1
        assert ref == [tuple(x) for x in mine.iter_rows()], f"{r['symbol']}: a stored trade differs from REST"
    return dict(zip(spans["symbol"], spans["n"]))


def test_trades_and_books_survive_disconnects_duplicates_and_depth_gaps(tmp_path):
    model = MarketModel(seed=11, history_days=2, clock=SimClock(speed=10))
    with SimExchange(model) as sim:
        sim.inject_stream_fault("disconnect", every_min=1)
        sim.inject_stream_fault("depth_gap", every_min=1, offset_s=30)
        sim.inject_stream_fault("duplicate", every_min=1, count=2)
        _, stats, wh = _stream(sim, tmp_path, 12, ["BTC/USDT"], trades=["USDC/USDT", "BTC/USDT"], books=["ETH/USDT"])
        counts = _assert_trades_equal_rest(sim, wh)
    assert min(counts.values()) >= 200 and stats.trades["backfilled"] >= 1  # trades missed while down came over REST
    assert stats.book["resnapshots"] >= 1 and stats.reconnects["disconnect"] >= 1
    # every stored book sample is the model's book at its time: snapshot + diffs stayed in sync, resnapshots included
    book = wh.query("SELECT ts, nonce, bid, ask, bid_qty, ask_qty FROM market.book WHERE symbol = 'ETH/USDT' ORDER BY ts")
    assert book.height >= 30 and (book["bid"] < book["ask"]).all()
    spec = next(s for s in model.markets if s.symbol == "ETH/USDT")
    for r in book.iter_rows(named=True):
        ref = book_levels(model, spec, int(r["ts"].timestamp() * 1000))
        assert np.isclose(r["bid"], ref.bids[0][0]) and np.isclose(r["ask"], ref.asks[0][0]), r
        assert np.isclose(r["bid_qty"], ref.bids[0][1]) and np.isclose(r["ask_qty"], ref.asks[0][1]), r
    events = wh.query("SELECT channel, kind, count(*) AS n FROM market.stream_events GROUP BY ALL")
    kinds = {(c, k) for c, k, _ in events.iter_rows()}
    assert {("book", "resnapshot"), ("ohlcv", "reconnect")} <= kinds


def test_a_venue_without_a_closed_flag_stores_rest_confirmed_candles_and_every_trade(tmp_path):
    with SimExchange(MarketModel(seed=11, history_days=2, clock=SimClock(speed=60))) as sim:
        sim.inject_stream_fault("disconnect", every_min=3)
        _, stats, wh = _stream(sim, tmp_path, 10, ["BTC/USDT"], trades=["USDC/USDT"], closed_flag=False)
        _assert_trades_equal_rest(sim, wh)
        rows = wh.query("SELECT c.ts, c.open, c.high, c.low, c.close, c.volume, s.source FROM market.candles c JOIN "
                        "market.stream_candles s USING (exchange, symbol, timeframe, ts) ORDER BY ts")  # fmt: skip
        ts = [int(t.timestamp() * 1000) for t in rows["ts"]]
        ref = {r[0]: r[1:] for r in _rest(sim).fetch_ohlcv("BTC/USDT", "1m", since=ts[0], limit=100)}
    assert len(ts) >= 5 and all(b - a == 60_000 for a, b in zip(ts, ts[1:])), "a minute missing or twice"
    assert [list(r) for r in rows.select("open", "high", "low", "close", "volume").iter_rows()] == [ref[t] for t in ts]
    assert "confirm" in set(rows["source"]) and set(rows["source"]) <= {"confirm", "backfill"}  # never a forming candle
    assert stats.gaps == []
