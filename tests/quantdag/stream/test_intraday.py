"""The intraday loop: a streamed minute that closes a research candle reaches a paper order, the backtest's."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import ccxt
import polars as pl
import pytest

from quantdag.backtest import BacktestSettings
from quantdag.execution import PaperBroker, ticker_source
from quantdag.markets import Market
from quantdag.sim import MarketModel, SimExchange
from quantdag.sim.clock import SimClock
from quantdag.stages.paper import PaperAccount
from quantdag.stages.portfolio import PortfolioSpec
from quantdag.store import Warehouse
from quantdag.strategies import Strategy, create_strategy, register, unregister
from quantdag.stream.__main__ import _ingest_loop
from quantdag.stream.intraday import IntradayLoop, PortfolioTrading, completed_candles
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


def _run_loop(tmp_path, keys, portfolio=None, seconds=8):
    """Stream BTC/USDT minutes at 30x for ``seconds`` through the intraday loop; its reports and warehouse."""
    db, root = tmp_path / "quantdag.duckdb", tmp_path / "landing"
    wh = Warehouse(db)
    wh.ensure_schema()
    market = Market("sim", "BTC/USDT", "1m")
    with SimExchange(MarketModel(seed=11, history_days=2, clock=SimClock(speed=30))) as sim:
        last, rest = _history(sim, wh, "BTC/USDT")
        broker = None
        if portfolio is not None:
            broker = PaperBroker(ticker_source(rest), balances={"USDT": 10_000.0}, name=portfolio.paper_account,
                                 settings=BacktestSettings(fee=portfolio.fee, slippage=portfolio.slippage))  # fmt: skip
        loop = IntradayLoop([market], keys, ticker_source(rest), account=PaperAccount(capital=10_000.0, cash_buffer=0.0),
                            webhook_env="QUANTDAG_TEST_NO_WEBHOOK",
                            portfolio=PortfolioTrading(portfolio, broker) if portfolio else None)  # fmt: skip
        reports: list = []
        st = Streamer(lambda: make_client(f"{sim.url}/api/v3", sim.ws_url), ["BTC/USDT"], root, watchdog_s=3.0,
                      wall_clock=False, last_closed=last, trades=(), books=())  # fmt: skip

        async def go():
            stop = asyncio.Event()
            ingesting = asyncio.create_task(_ingest_loop(db, root, stop, every_s=0.2, intraday=loop, trades=reports))
            await st.run(seconds)
            stop.set()
            return await ingesting

        asyncio.run(go())
    return wh, reports, market


def _orders_follow_signals(wh, broker, trims=False):
    """Every order of ``broker`` trades in the direction of the signal of the candle it decided on.

    ``trims``: an account that rebalances on every candle may also sell a little while the target
    stays long (the position grew past its weight with the price); it never buys into a flat target.
    """
    signals = wh.query("SELECT ts, target FROM signals.signals WHERE strategy = 'test_momentum_minute' ORDER BY ts")
    orders = wh.query("SELECT side, qty, avg_price, intent FROM paper.orders WHERE broker = ? ORDER BY ts_created", [broker])
    assert orders.height >= 1
    for o in orders.iter_rows(named=True):
        decision = int(o["intent"].split(":")[1])
        target = signals.filter(pl.col("ts") == datetime.fromtimestamp(decision / 1000, tz=timezone.utc))["target"][0]
        if trims and o["side"] == "sell":
            continue  # a flat target's exit or a trim back to the weight
        assert (o["side"] == "buy") == (target > 0)  # bought on a rising minute, sold on a falling one
    return orders


def test_a_closed_minute_reaches_the_paper_order_the_backtest_would_place(tmp_path, momentum_minute):
    key = create_strategy(momentum_minute).key
    wh, reports, market = _run_loop(tmp_path, [key])
    cycles = [c for r in reports for c in r.cycles]
    assert sum(len(r.completed) for r in reports) >= 3 and cycles and not any("error" in c for c in cycles)
    # every decision the loop acted on is the signal of its candle, and the account holds what that signal sizes
    orders = _orders_follow_signals(wh, f"paper:{key}")
    # the size: the last cycle that traded holds its target weight of the equity it marked (at the fill's price)
    traded = [c for c in cycles if c["orders_sent"]][-1]
    fill = orders.row(-1, named=True)
    held = traded["positions"].get("BTC/USDT", 0.0)
    assert held * fill["avg_price"] / traded["equity_before"] == pytest.approx(traded["targets"]["BTC/USDT"] * 1.0, abs=2e-3)
    assert completed_candles(wh, [market], []) == {}


def test_the_portfolio_account_rebalances_on_each_closed_candle_as_its_backtest_would(tmp_path, momentum_minute):
    spec = PortfolioSpec(name="intraday", members=(momentum_minute,), init_cash=10_000.0, min_notional=1.0)
    wh, reports, market = _run_loop(tmp_path, [], portfolio=spec)
    cycles = [c for r in reports for c in r.cycles]
    assert cycles and not any("error" in c for c in cycles) and all(c["portfolio"] == "intraday" for c in cycles)
    orders = _orders_follow_signals(wh, spec.paper_account, trims=True)  # members' signals rebuilt on the streamed candles, then traded
    assert (orders["side"] == "buy").any()
    last = wh.query("SELECT max(ts) AS ts FROM market.candles WHERE timeframe = '1m'")["ts"][0]
    assert cycles[-1]["decision_ts_ms"] == int(last.timestamp() * 1000)  # it decided on the newest streamed candle
    assert wh.query("SELECT count(*) AS n FROM portfolio.weights WHERE portfolio = 'intraday'")["n"][0] >= 2
    # the account holds its target weight of the equity it marked, as the backtest sizes it
    traded = [c for c in cycles if c["orders_sent"]][-1]
    fill = wh.query("SELECT avg_price FROM paper.orders WHERE broker = ? ORDER BY ts_created", [spec.paper_account]).row(-1)[0]
    held = traded["positions"].get("BTC/USDT", 0.0)
    assert held * fill / traded["equity_before"] == pytest.approx(traded["targets"]["BTC/USDT"], abs=2e-3)
