"""The intraday loop: a streamed minute that closes a research candle reaches a paper order, the backtest's."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import ccxt
import polars as pl
import pytest

from quantdag.execution import ticker_source
from quantdag.markets import Market
from quantdag.sim import MarketModel, SimExchange
from quantdag.sim.clock import SimClock
from quantdag.stages.paper import PaperAccount
from quantdag.store import Warehouse
from quantdag.strategies import Strategy, create_strategy, register, unregister
from quantdag.stream.__main__ import _ingest_loop
from quantdag.stream.intraday import IntradayLoop, completed_candles
from quantdag.stream.streamer import Streamer, make_client

pytestmark = pytest.mark.slow  # real websockets, simulated minutes (~15 s)


class MomentumMinute(Strategy):
    """Long half the book after a rising minute, flat after a falling one: a decision every candle."""

    name = "test_momentum_minute"
    required_columns = ("close",)

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        up = pl.col("close") > pl.col("close").shift(1)
        return frame.with_columns(entry=up.fill_null(False), exit=(~up).fill_null(False),
                                  target=pl.when(up).then(0.5).otherwise(0.0))  # fmt: skip


@pytest.fixture
def momentum_minute():
    """Registered for this test only: the registry is global, other tests list every strategy."""
    register(MomentumMinute)
    yield MomentumMinute.name
    unregister(MomentumMinute.name)


def _history(sim, wh, symbol, minutes=120):
    rest = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}})
    rest.urls["api"]["public"] = f"{sim.url}/api/v3"
    now = rest.fetch_time()
    rows = rest.fetch_ohlcv(symbol, "1m", since=now - now % 60_000 - minutes * 60_000, limit=minutes)
    frame = pl.DataFrame(rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row").with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")), exchange=pl.lit("sim"), symbol=pl.lit(symbol), timeframe=pl.lit("1m"),
        filled=pl.lit(False))  # fmt: skip
    with wh.transaction() as con:
        Warehouse.insert(con, "market.candles", frame)
    return {symbol: int(rows[-1][0])}, rest


def test_a_closed_minute_reaches_the_paper_order_the_backtest_would_place(tmp_path, momentum_minute):
    db, root = tmp_path / "quantdag.duckdb", tmp_path / "landing"
    wh = Warehouse(db)
    wh.ensure_schema()
    market = Market("sim", "BTC/USDT", "1m")
    key = create_strategy(momentum_minute).key
    with SimExchange(MarketModel(seed=11, history_days=2, clock=SimClock(speed=30))) as sim:
        last, rest = _history(sim, wh, "BTC/USDT")
        loop = IntradayLoop([market], [key], ticker_source(rest), account=PaperAccount(capital=10_000.0, cash_buffer=0.0),
                            webhook_env="QUANTDAG_TEST_NO_WEBHOOK")  # fmt: skip
        reports: list = []
        st = Streamer(lambda: make_client(f"{sim.url}/api/v3", sim.ws_url), ["BTC/USDT"], root, watchdog_s=3.0,
                      wall_clock=False, last_closed=last)  # fmt: skip

        async def go():
            stop = asyncio.Event()
            ingesting = asyncio.create_task(_ingest_loop(db, root, stop, every_s=0.2, intraday=loop, trades=reports))
            await st.run(8)
            stop.set()
            return await ingesting

        asyncio.run(go())
    cycles = [c for r in reports for c in r.cycles]
    assert sum(len(r.completed) for r in reports) >= 3 and cycles and not any("error" in c for c in cycles)
    # every decision the loop acted on is the signal of its candle, and the account holds what that signal sizes
    signals = wh.query("SELECT ts, target FROM signals.signals WHERE strategy = 'test_momentum_minute' ORDER BY ts")
    orders = wh.query("SELECT side, qty, avg_price, intent FROM paper.orders WHERE broker = ? ORDER BY ts_created",
                      [f"paper:{key}"])  # fmt: skip
    assert orders.height >= 1
    for o in orders.iter_rows(named=True):
        decision = int(o["intent"].split(":")[1])
        target = signals.filter(pl.col("ts") == datetime.fromtimestamp(decision / 1000, tz=timezone.utc))["target"][0]
        assert (o["side"] == "buy") == (target > 0)  # bought on a rising minute, sold on a falling one
    # the size: the last cycle that traded holds its target weight of the equity it marked (at the fill's price)
    traded = [c for c in cycles if c["orders_sent"]][-1]
    fill = orders.row(-1, named=True)
    held = traded["positions"].get("BTC/USDT", 0.0)
    assert held * fill["avg_price"] / traded["equity_before"] == pytest.approx(traded["targets"]["BTC/USDT"] * 1.0, abs=2e-3)
    assert completed_candles(wh, [market], []) == {}
