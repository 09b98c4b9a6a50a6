"""Streaming under faults: completeness, duplicates, backfills, latency and memory. One JSON line.

    .venv/bin/python benchmarks/stream.py                 # 65 simulated minutes at 60x + 2 x 5 wall minutes at 1x
    .venv/bin/python benchmarks/stream.py --minutes 20 --latency-minutes 1   # quicker

What runs is what ``python -m quantdag.stream`` runs: the :class:`~quantdag.stream.streamer.Streamer`
over real ccxt.pro websockets against the project's simulator on 127.0.0.1, closed candles into
the landing area, ingested into a real DuckDB file by the same ``ingest`` loop.

1. Faults, at 60x: disconnects (close 1006), silences without close (only a reconnect helps),
   duplicates, out-of-order messages, server restarts and depth-stream gaps every few simulated minutes,
   over at least one simulated hour; candles of three markets, the trades of one, the book of another.
   Reported: streamed + backfilled candles equal to REST's for the same minutes (target 100 %), minutes
   twice (target 0), minutes missing inside the run, reconnects vs backfills (every reconnect followed
   by one), trades stored vs REST's (ids contiguous, each equal), book resnapshots, the process's RSS
   at 0/25/50/75/100 % of the run (flat).
2. Latency, at 1x (the simulator's clock is the wall's): candle close -> landed, and candle close ->
   stored in ``market.candles`` (the ingest loop's commit), p50 and p99 (target p99 < 2 s).
3. Candle close -> paper order, at 1x: the intraday loop on a 1m research market with a strategy
   that decides every minute (long after a rising minute, flat after a falling one), its paper
   account and a portfolio account holding it, the loop warmed up as the streamer does; p50, p99 and
   max over the cycles that sent an order (one sample per account and minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ccxt  # noqa: E402
import polars as pl  # noqa: E402
import psutil  # noqa: E402

from quantdag.sim import MarketModel, SimExchange  # noqa: E402
from quantdag.sim.clock import SimClock  # noqa: E402
from quantdag.store import Warehouse  # noqa: E402
from quantdag.stream.__main__ import _ingest_loop  # noqa: E402
from quantdag.stream.streamer import Streamer, make_client  # noqa: E402
from quantdag.stream.intraday import IntradayLoop  # noqa: E402

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
FAULTS = [("disconnect", {"every_min": 7}), ("silence", {"every_min": 11, "resume": False}),
          ("duplicate", {"every_min": 3, "count": 2}), ("out_of_order", {"every_min": 5}),
          ("restart", {"every_min": 13, "delay_s": 0.5}), ("depth_gap", {"every_min": 4, "offset_s": 30})]  # fmt: skip
TRADES, BOOKS = ["USDC/USDT"], ["ETH/USDT"]  # at 60x a busier market's tape outruns one core's JSON parsing


async def _stream(sim: SimExchange, tmp: Path, seconds: float, *, wall_clock: bool, watchdog_s: float,
                  symbols: list[str] = SYMBOLS, intraday: IntradayLoop | None = None, last: dict | None = None, trades: list[str] = (), books: list[str] = ()) -> dict:  # fmt: skip
    root, db = tmp / "landing", tmp / "quantdag.duckdb"
    Warehouse(db).ensure_schema()
    st = Streamer(lambda: make_client(f"{sim.url}/api/v3", sim.ws_url), symbols, root, watchdog_s=watchdog_s,
                  wall_clock=wall_clock, last_closed=last, trades=trades, books=books)  # fmt: skip
    loops: list = []
    proc, rss = psutil.Process(), []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            rss.append(proc.memory_info().rss / 2**20)
            await asyncio.sleep(5)

    stored_at: dict[tuple[str, int], float] = {}

    tasks = [asyncio.create_task(sample()),
             asyncio.create_task(_ingest_loop(db, root, stop, every_s=0.2, intraday=intraday, trades=loops,
                                              stored=stored_at))]  # fmt: skip
    stats = await st.run(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    store_lat = sorted(at - (t + 60_000) for (_, t), at in stored_at.items()) if wall_clock else []
    q = lambda xs, p: round(xs[min(len(xs) - 1, int(p * len(xs)))], 1) if xs else None  # noqa: E731
    orders = sorted(x for r in loops for x in r.close_to_order_ms)
    done = sorted(x for r in loops for x in r.close_to_done_ms)
    return {"stats": stats, "rss_mb": rss, "ingested": tasks[1].result(), "store_p50": q(store_lat, 0.5), "store_p99": q(store_lat, 0.99),
            "order_p50": q(orders, 0.5), "order_p99": q(orders, 0.99), "order_max": q(orders, 1.0), "orders": len(orders),
            "done_p50": q(done, 0.5), "done_max": q(done, 1.0),
            "db": db}  # fmt: skip


def _order_latency(tmp: Path, minutes: float) -> dict:
    """Phase 3: the intraday loop on BTC/USDT:1m, one account, a decision every minute, at 1x."""
    from quantdag.execution import ticker_source
    from quantdag.markets import Market
    from quantdag.backtest import BacktestSettings
    from quantdag.execution import PaperBroker
    from quantdag.stages.paper import PaperAccount
    from quantdag.stages.portfolio import PortfolioSpec
    from quantdag.strategies import Strategy, create_strategy, register
    from quantdag.stream.intraday import PortfolioTrading

    class EveryMinute(Strategy):
        """Long half the book after a rising minute, flat after a falling one."""

        name = "bench_every_minute"
        required_columns = ("close",)

        def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
            up = pl.col("close") > pl.col("close").shift(1)
            return frame.with_columns(entry=up.fill_null(False), exit=(~up).fill_null(False),
                                      target=pl.when(up).then(0.5).otherwise(0.0))  # fmt: skip

    register(EveryMinute)  # this process only (a benchmark run)
    with SimExchange(MarketModel(seed=11, history_days=2)) as sim:
        rest = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}})
        rest.urls["api"]["public"] = f"{sim.url}/api/v3"
        db = tmp / "quantdag.duckdb"
        Warehouse(db).ensure_schema()
        now = rest.fetch_time()
        rows = rest.fetch_ohlcv("BTC/USDT", "1m", since=now - now % 60_000 - 120 * 60_000, limit=120)
        frame = pl.DataFrame(rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row").with_columns(
            pl.col("ts").cast(pl.Datetime("ms", "UTC")), exchange=pl.lit("sim"), symbol=pl.lit("BTC/USDT"),
            timeframe=pl.lit("1m"), filled=pl.lit(False))  # fmt: skip
        with Warehouse(db).transaction() as con:
            Warehouse.insert(con, "market.candles", frame)
        spec = PortfolioSpec(name="bench", members=("bench_every_minute",), min_notional=1.0)
        broker = PaperBroker(ticker_source(rest), balances={"USDT": 10_000.0}, name=spec.paper_account,
                             settings=BacktestSettings(fee=spec.fee, slippage=spec.slippage))  # fmt: skip
        loop = IntradayLoop([Market("sim", "BTC/USDT", "1m")], [create_strategy("bench_every_minute").key],
                            ticker_source(rest), account=PaperAccount(cash_buffer=0.0), webhook_env="QUANTDAG_BENCH_NO_WEBHOOK",
                            portfolio=PortfolioTrading(spec, broker))  # fmt: skip
        r = asyncio.run(_stream(sim, tmp, minutes * 60 + 5, wall_clock=True, watchdog_s=10, symbols=["BTC/USDT"],
                                intraday=loop, last={"BTC/USDT": int(rows[-1][0])}))  # fmt: skip
    return {"wall_minutes": minutes, "accounts": ["parameter set", "portfolio"], "cycles_that_ordered": r["orders"],
            "warm_up_s": r["ingested"].get("warm_up_s"), "close_to_paper_order_ms_p50": r["order_p50"],
            "close_to_paper_order_ms_p99": r["order_p99"], "close_to_paper_order_ms_max": r["order_max"],
            "close_to_last_child_done_ms_p50": r["done_p50"], "close_to_last_child_done_ms_max": r["done_max"],
            "execution": "parents above 2,500 USDT sliced by TWAP into 3 children over 3 s"}  # fmt: skip


def _compare(sim: SimExchange, db: Path) -> dict:
    rest = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}})
    rest.urls["api"]["public"] = f"{sim.url}/api/v3"
    got = Warehouse(db, read_only=True).query("SELECT symbol, epoch_ms(ts) AS t, open, high, low, close, volume "
                                              "FROM market.candles WHERE timeframe = '1m' ORDER BY symbol, ts")  # fmt: skip
    equal = total = missing = 0
    for sym in SYMBOLS:
        mine = got.filter(pl.col("symbol") == sym)
        ts = mine["t"].to_list()
        ref: dict[int, list] = {}
        since = ts[0]
        while since <= ts[-1]:
            page = rest.fetch_ohlcv(sym, "1m", since=since, limit=1000)
            ref.update({r[0]: r[1:] for r in page})
            if len(page) < 1000:
                break
            since = page[-1][0] + 60_000
        total += len(ts)
        missing += (ts[-1] - ts[0]) // 60_000 + 1 - len(ts)
        equal += sum(ref.get(r[1]) == list(r[2:]) for r in mine.iter_rows())
    return {"candles": total, "equal_to_rest": equal, "equal_pct": round(100 * equal / total, 3) if total else None,
            "missing_minutes": int(missing)}  # fmt: skip


def _compare_trades(sim: SimExchange, db: Path) -> dict:
    """Stored trades per market: ids contiguous from first to last, each equal to REST's (by ``fromId``)."""
    rest = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}})
    rest.urls["api"]["public"] = f"{sim.url}/api/v3"
    wh = Warehouse(db, read_only=True)
    stored = equal = missing = 0
    for sym in TRADES:
        mine = wh.query("SELECT id, price, amount, side FROM market.trades WHERE symbol = ? ORDER BY id", [sym])
        if not mine.height:
            continue
        lo, hi = mine["id"][0], mine["id"][-1]
        ref: dict[int, tuple] = {}
        fid = lo
        while fid <= hi:
            page = rest.fetch_trades(sym, limit=1000, params={"fromId": fid})
            ref.update({int(t["id"]): (t["price"], t["amount"], t["side"]) for t in page})
            fid = int(page[-1]["id"]) + 1
        stored += mine.height
        missing += hi - lo + 1 - mine.height
        equal += sum(ref.get(i) == (p, q, sd) for i, p, q, sd in mine.iter_rows())
    return {"stored": stored, "equal_to_rest": equal, "missing_ids": int(missing)}


def _quartiles(rss: list[float]) -> list[float] | None:
    return [round(rss[min(len(rss) - 1, int(f * len(rss)))], 1) for f in (0, 0.25, 0.5, 0.75, 1.0)] if rss else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=65, help="simulated minutes of the fault run (at 60x)")
    p.add_argument("--latency-minutes", type=float, default=5, help="wall minutes of each latency run (at 1x)")
    p.add_argument("--only", choices=["faults", "latency", "intraday"], default=None, help="run one phase")
    a = p.parse_args()
    out: dict = {"benchmark": "quantdag.stream under faults", "markets": SYMBOLS, "loadavg_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if a.only in (None, "faults"):
            out["faults"] = _faults(tmp / "faults", a.minutes)
        if a.only in (None, "latency") and a.latency_minutes > 0:
            with SimExchange(MarketModel(seed=11, history_days=2)) as sim:
                r = asyncio.run(_stream(sim, tmp / "latency", a.latency_minutes * 60 + 5, wall_clock=True, watchdog_s=10))
                d = r["stats"].as_dict()
                out["latency"] = {"wall_minutes": a.latency_minutes, "speed": 1, "closed_candles": d["streamed"],
                                  "close_to_landed_ms_p50": d["latency_ms_p50"], "close_to_landed_ms_p99": d["latency_ms_p99"],
                                  "close_to_stored_ms_p50": r["store_p50"], "close_to_stored_ms_p99": r["store_p99"]}  # fmt: skip
        if a.only in (None, "intraday") and a.latency_minutes > 0:
            out["intraday"] = _order_latency(tmp / "intraday", a.latency_minutes)
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps(out, default=str))


def _faults(tmp: Path, minutes: float) -> dict:
    """Phase 1: every fault kind over ``minutes`` simulated minutes at 60x."""
    with SimExchange(MarketModel(seed=11, history_days=2, clock=SimClock(speed=60))) as sim:
        for kind, params in FAULTS:
            sim.inject_stream_fault(kind, **params)
        r = asyncio.run(_stream(sim, tmp, minutes, wall_clock=False, watchdog_s=1.5, trades=TRADES, books=BOOKS))
        s = r["stats"]
        dupes = Warehouse(r["db"], read_only=True).query(
            "SELECT count(*) - count(DISTINCT (symbol, ts)) AS d FROM market.stream_candles")["d"][0]  # fmt: skip
        return {
            "simulated_minutes": minutes, "speed": 60, **_compare(sim, r["db"]), "streamed": s.streamed,
            "backfilled": s.backfilled, "duplicates_landed": int(dupes), "dropped": dict(s.dropped),
            "reconnects": dict(s.reconnects), "backfills": s.backfills, "gaps": len(s.gaps),
            "every_reconnect_backfilled": s.backfills >= sum(s.reconnects.values()),
            "faults_injected": len(sim.stream_faults_log), "trades": {**_compare_trades(sim, r["db"]), **dict(s.trades)},
            "book": dict(s.book), "rss_mb_at_0_25_50_75_100pct": _quartiles(r["rss_mb"]),
        }  # fmt: skip


if __name__ == "__main__":
    main()
