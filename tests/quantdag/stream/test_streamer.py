"""The streamer against the simulator's websockets (real ccxt.pro, real sockets): no silent gaps, nothing twice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import ccxt
import polars as pl
import pytest

from quantdag.sim import MarketModel, SimExchange
from quantdag.sim.clock import SimClock
from quantdag.store import Warehouse
from quantdag.stream.landing import ingest
from quantdag.stream.streamer import Streamer, make_client

pytestmark = pytest.mark.slow  # each runs simulated minutes over real websockets (~10 s)

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
ROOT = Path(__file__).resolve().parents[3]


def _run(sim, root, seconds, **kw):
    st = Streamer(lambda: make_client(f"{sim.url}/api/v3", sim.ws_url), SYMBOLS, root, watchdog_s=1.5, wall_clock=False, **kw)
    return st, asyncio.run(st.run(seconds))


def _landed(root):
    files = list((root / "candles").glob("*.parquet")) + list((root / "candles" / "done").glob("*.parquet"))
    return pl.read_parquet(files).sort("symbol", "ts") if files else pl.DataFrame()


def _check_against_rest(sim, landed):
    """Every landed candle equals REST's for its minute; per market no minute twice and none skipped."""
    rest = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}})
    rest.urls["api"]["public"] = f"{sim.url}/api/v3"
    counts = {}
    for sym in SYMBOLS:
        mine = landed.filter(pl.col("symbol") == sym)
        ts = [int(t.timestamp() * 1000) for t in mine["ts"]]
        assert len(ts) == len(set(ts)), f"{sym}: a minute landed twice"
        assert all(b - a == 60_000 for a, b in zip(ts, ts[1:])), f"{sym}: a minute is missing"
        ref = {r[0]: r[1:] for r in rest.fetch_ohlcv(sym, "1m", since=ts[0], limit=1000)}
        rows = [[r["open"], r["high"], r["low"], r["close"], r["volume"]] for r in mine.iter_rows(named=True)]
        assert rows == [ref[t] for t in ts], f"{sym}: a landed candle differs from REST"
        counts[sym] = len(ts)
    return counts


def _sim(**faults):
    return SimExchange(MarketModel(seed=11, history_days=2, clock=SimClock(speed=60)))


@pytest.mark.parametrize("kind, params", [
    ("disconnect", {"every_min": 2}),
    ("silence", {"every_min": 3, "resume": False}),
    ("duplicate", {"every_min": 1, "count": 2}),
    ("out_of_order", {"every_min": 1}),
    ("restart", {"every_min": 3, "delay_s": 0.5}),
])  # fmt: skip
def test_each_stream_fault_ends_with_every_minute_once_and_equal_to_rest(tmp_path, kind, params):
    with _sim() as sim:
        sim.inject_stream_fault(kind, **params)
        _, stats = _run(sim, tmp_path, 9)
        counts = _check_against_rest(sim, _landed(tmp_path))
    assert min(counts.values()) >= 3  # ~9 simulated minutes at 60x, less the reconnects
    if kind in ("disconnect", "silence", "restart"):
        assert sum(stats.reconnects.values()) >= 1 and stats.backfills >= 1  # every reconnect followed by a backfill
    if kind in ("duplicate", "out_of_order"):
        assert sum(stats.dropped.values()) >= 1 or stats.streamed >= 5


def test_a_restart_backfills_from_the_last_stored_candle(tmp_path):
    with _sim() as sim:
        first, _ = _run(sim, tmp_path, 4)
        asyncio.run(asyncio.sleep(4))  # the streamer is down for ~4 simulated minutes
        second, stats = _run(sim, tmp_path, 4, last_closed=dict(first.last))
        assert stats.backfilled >= 2 * 3  # the minutes it was down, per market
        _check_against_rest(sim, _landed(tmp_path))


def test_connections_are_recycled_on_schedule_and_no_minute_is_lost_across_them(tmp_path):
    with _sim() as sim:
        _, stats = _run(sim, tmp_path, 9, recycle_s=2.5)
        counts = _check_against_rest(sim, _landed(tmp_path))
    assert stats.reconnects["recycle"] >= 2 and min(counts.values()) >= 5 and stats.gaps == []


def test_candles_wait_in_the_landing_area_while_a_job_holds_the_warehouse_and_none_is_lost(tmp_path):
    db = tmp_path / "quantdag.duckdb"
    Warehouse(db).ensure_schema()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, time, sys; c = duckdb.connect(sys.argv[1]); c.execute('BEGIN'); "
        "c.execute(\"INSERT INTO market.gaps VALUES ('x','y','1m',now(),now(),1,false)\"); print('held', flush=True); time.sleep(6)"
    ), str(db)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    with _sim() as sim:
        _run(sim, tmp_path / "landing", 4)
        with pytest.raises(Exception):
            ingest(Warehouse(db, lock_timeout=0.2), tmp_path / "landing")  # the job's lock: the streamer did not wait
        holder.wait(timeout=30)
        report = ingest(Warehouse(db), tmp_path / "landing")
        stored = Warehouse(db).query("SELECT symbol, count(*) AS n FROM market.candles WHERE timeframe = '1m' GROUP BY symbol")
        assert report.candles == int(stored["n"].sum()) >= 6
        lineage = Warehouse(db).query("SELECT count(*) AS n FROM market.stream_candles")["n"][0]
        assert lineage == report.candles


@pytest.mark.slow
def test_command_streams_for_n_seconds_and_stores_closed_candles_with_their_session(tmp_path):
    cfg = tmp_path / "quantdag.yaml"
    import yaml

    data = yaml.safe_load((ROOT / "quantdag.yaml").read_text())
    data["data_dir"] = str(tmp_path / "data")
    data["universe"]["markets"] = [{"symbol": "BTC/USDT", "timeframes": ["1h"]}]
    data["universe"]["research_markets"] = ["BTC/USDT:1h"]
    cfg.write_text(yaml.safe_dump(data))
    out = subprocess.run([sys.executable, "-m", "quantdag.stream", "--seconds", "6", "--speed", "60"], cwd=ROOT,
                         env={**__import__("os").environ, "QUANTDAG_CONFIG": str(cfg)}, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["streamed"] >= 3 and summary["gaps"] == 0
    wh = Warehouse(tmp_path / "data" / "quantdag.duckdb", read_only=True)
    rows = wh.query("SELECT c.ts, s.session, s.source FROM market.candles c JOIN market.stream_candles s USING "
                    "(exchange, symbol, timeframe, ts) WHERE c.timeframe = '1m'")  # fmt: skip
    assert rows.height == summary["ingested"]["candles"] >= 3 and set(rows["session"]) == {summary["session"]}
    trades = wh.query("SELECT count(*) AS n, max(id) - min(id) + 1 AS span, count(DISTINCT session) AS s FROM market.trades")
    assert trades["n"][0] == trades["span"][0] == summary["ingested"]["trades"] > 0 and trades["s"][0] == 1
    assert wh.query("SELECT count(*) AS n FROM market.book")["n"][0] == summary["ingested"]["book"] > 0
    data["exchange"]["enable_ws"] = False  # streaming off for the venue: a clear refusal, nothing started
    cfg.write_text(yaml.safe_dump(data))
    off = subprocess.run([sys.executable, "-m", "quantdag.stream", "--seconds", "1"], cwd=ROOT, capture_output=True,
                         env={**__import__("os").environ, "QUANTDAG_CONFIG": str(cfg)}, text=True, timeout=120)  # fmt: skip
    assert off.returncode != 0 and "exchange.enable_ws is false" in off.stderr
