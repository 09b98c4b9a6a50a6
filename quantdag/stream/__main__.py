"""``python -m quantdag.stream [--seconds N] [--speed K]``: stream the configured markets' 1m candles.

Offline (the default configuration) it streams from the simulator: the one at
``exchange.simulator.url``, else one started in this process (``--speed K`` runs its clock K times
faster). Closed candles land in ``<data_dir>/landing`` at once and move into ``market.candles``
whenever the DuckDB file is free (a running Dagster job keeps it; nothing is lost meanwhile); at
exit the rest is ingested. Prints one JSON line of what happened. ``make stream`` runs it until
stopped (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from quantdag.store import Warehouse, WarehouseError
from quantdag.stream.landing import CHANNELS, ingest, prune
from quantdag.stream.streamer import Streamer, make_client

log = logging.getLogger("quantdag.stream")


def _last_rows(db: Path, sql: str, exchange: str) -> list[dict]:
    """Rows of ``sql`` (per symbol, over ``exchange``) read from the file if it exists and is free within 2 s."""
    if not db.exists():
        return []
    try:
        return list(Warehouse(db, read_only=True, lock_timeout=2.0).query(sql, [exchange]).iter_rows(named=True))
    except WarehouseError:
        return []


def last_stored(db: Path, exchange: str, symbols: list[str]) -> dict[str, int]:
    """Open time (ms) of each market's last stored 1m candle: a restart backfills from there."""
    rows = _last_rows(db, "SELECT symbol, max(ts) AS ts FROM market.candles WHERE exchange = ? AND timeframe = '1m' "
                          "GROUP BY symbol", exchange)  # fmt: skip
    return {r["symbol"]: int(r["ts"].timestamp() * 1000) for r in rows if r["symbol"] in symbols}


#: seconds between two retention passes of the streamer (ticks older than stream.*_retention_days)
PRUNE_EVERY_S = 3600.0


async def _ingest_loop(db: Path, root: Path, stop: asyncio.Event, every_s: float = 1.0, *,
                       intraday: Any = None, trades: list | None = None,
                       stored: dict | None = None, retention: dict | None = None) -> dict[str, int]:  # fmt: skip
    """Drain the landing area into the warehouse whenever the file is free (never blocking the streams);
    with ``intraday`` (an :class:`~quantdag.stream.intraday.IntradayLoop`), act on what was stored, in a
    task of its own (a sliced order's pauses never hold up the next minute's ingest); ``trades`` gets its
    reports; ``stored`` gets (symbol, open ms) -> wall ms of the commit of each 1m candle; with ``retention``
    (days by tick kind), old ticks are pruned at the start and every :data:`PRUNE_EVERY_S`."""
    done = {"files": 0, "candles": 0, "trades": 0, "book": 0, "events": 0, "busy": 0, "pruned": 0}
    next_prune = [0.0]
    inbox: asyncio.Queue = asyncio.Queue()

    def once(timeout: float) -> None:
        try:
            wh = Warehouse(db, lock_timeout=timeout)
            rep = ingest(wh, root)
            if retention and time.monotonic() >= next_prune[0]:
                done["pruned"] += sum(prune(wh, root, retention).values())
                next_prune[0] = time.monotonic() + PRUNE_EVERY_S
        except WarehouseError:
            done["busy"] += 1  # a job holds the file: the candles wait in the landing area
            return
        done["files"] += rep.files
        done["candles"] += rep.candles
        for kind, n in rep.rows.items():
            done[kind] += n
        now = time.time() * 1000
        if stored is not None:
            for minute in rep.minutes:
                stored.setdefault(minute, now)
        if intraday is not None and rep.minutes:
            loop.call_soon_threadsafe(inbox.put_nowait, rep.minutes)

    loop = asyncio.get_running_loop()
    acting = asyncio.create_task(_act(db, intraday, inbox, trades, done)) if intraday is not None else None
    while not stop.is_set():
        await asyncio.to_thread(once, 0.2)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
    await asyncio.to_thread(once, 30.0)
    if acting is not None:
        inbox.put_nowait(None)  # after the last ingest: act on what it stored, then end
        await acting
    return done


async def _act(db: Path, intraday: Any, inbox: asyncio.Queue, reports: list | None, done: dict) -> None:
    """The intraday loop's task: warm up, then act on each batch of stored minutes (those that arrived
    while it was busy together); while a job holds the file the minutes wait and are tried again."""
    try:
        done["warm_up_s"] = round(await asyncio.to_thread(lambda: intraday.warm_up(Warehouse(db, lock_timeout=30.0))), 2)
    except WarehouseError:
        pass  # the first candle pays the cold start instead
    minutes: list = []
    ending = False
    while not (ending and not minutes):
        if not minutes or inbox.qsize():
            item = await inbox.get()
            ending = ending or item is None
            minutes += item or []
            while not inbox.empty():
                item = inbox.get_nowait()
                ending = ending or item is None
                minutes += item or []
        if not minutes:
            continue
        try:
            rep = await asyncio.to_thread(lambda: intraday.on_stored(Warehouse(db, lock_timeout=5.0), minutes))
        except WarehouseError:
            done["busy"] += 1
            if ending:
                log.warning("intraday: the warehouse stayed busy; %d stored minute(s) not acted on", len(minutes))
                return
            await asyncio.sleep(1.0)
            continue
        minutes = []
        if reports is not None and rep.completed:
            reports.append(rep)


def last_trades(db: Path, exchange: str, symbols: list[str]) -> dict[str, tuple[int, int]]:
    """Per market the (id, ms) of its last stored trade: a restart backfills the trades since."""
    if not symbols:
        return {}
    rows = _last_rows(db, "SELECT symbol, arg_max(id, ts) AS id, max(ts) AS ts FROM market.trades WHERE exchange = ? "
                          "GROUP BY symbol", exchange)  # fmt: skip
    return {r["symbol"]: (int(r["id"]), int(r["ts"].timestamp() * 1000)) for r in rows if r["symbol"] in symbols}


async def stream(seconds: float | None, speed: float, config: Any, *, trade: bool = False,
                 channels: tuple[str, ...] = CHANNELS) -> dict[str, Any]:  # fmt: skip
    from quantdag.errors import ConfigurationError

    if not config.exchange.enable_ws:
        raise ConfigurationError("exchange.enable_ws is false: streaming is off for this venue "
                                 "(set it true in the configuration; the daily REST jobs run either way)")  # fmt: skip
    data = Path(config.data_path)
    data.mkdir(parents=True, exist_ok=True)
    chosen = {ch: (syms if ch in channels else []) for ch, syms in config.stream_symbols.items()}
    symbols = chosen["ohlcv"]
    sim = None
    if config.exchange.mode == "simulated":
        from quantdag.sim import MarketModel, SimExchange
        from quantdag.sim.clock import SimClock
        from quantdag.exchange.simulated import SIM_GENESIS_MS

        if config.exchange.simulator.url:
            base = config.exchange.simulator.url.rstrip("/")
            rest, ws = f"{base}/api/v3", _ws_of(base)
        else:
            clock = SimClock(speed=speed) if speed != 1.0 else None
            model = MarketModel(seed=config.exchange.simulator.seed, genesis_ms=SIM_GENESIS_MS, clock=clock)
            sim = SimExchange(model).start()
            rest, ws = f"{sim.url}/api/v3", sim.ws_url
        exchange = "sim"
    else:
        rest = ws = None
        exchange = config.exchange.venue
    factory = (lambda: make_client(rest, ws)) if config.exchange.mode == "simulated" else (lambda: _live_client(config))
    db, root = data / "quantdag.duckdb", data / "landing"
    sc = config.stream
    streamer = Streamer(factory, symbols, root, exchange=exchange, last_closed=last_stored(db, exchange, symbols),
                        watchdog_s=max(2.0, sc.watchdog_s / max(speed, 1.0)), recycle_s=sc.recycle_s,
                        wall_clock=speed == 1.0, trades=chosen["trades"], books=chosen["book"],
                        last_trade=last_trades(db, exchange, chosen["trades"]), book_levels=sc.book_levels,
                        book_sample_ms=int(sc.book_sample_s * 1000))  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, streamer.stop)
    intraday, loops = (_intraday(config, db, rest, exchange) if trade else None), []
    ingesting = asyncio.create_task(_ingest_loop(db, root, stop, intraday=intraday, trades=loops, retention=sc.retention()))
    try:
        stats = await streamer.run(seconds)
    finally:
        stop.set()
        ingested = await ingesting
        if sim is not None:
            sim.stop()
    out = {"session": streamer.session, "markets": symbols, **stats.as_dict(), "ingested": ingested}
    if trade:
        lat = sorted(x for r in loops for x in r.close_to_order_ms)
        out["intraday"] = {"research_candles": sum(len(r.completed) for r in loops),
                           "paper_cycles": sum(len(r.cycles) for r in loops),
                           "orders_sent": sum(int(c.get("orders_sent", 0)) for r in loops for c in r.cycles),
                           "close_to_order_ms": lat}  # fmt: skip
    return out


def _intraday(config: Any, db: Path, rest: str | None, exchange: str) -> Any:
    """The intraday loop of the paper-enabled parameter sets, priced at the venue's live ticker."""
    import dataclasses

    import ccxt

    from quantdag.execution import ticker_source
    from quantdag.stages.paper import Execution, PaperAccount
    from quantdag.stream.intraday import IntradayLoop
    from quantdag.strategies.keys import configured_param_sets, strategy_name_of
    from quantdag.strategies.loader import load_user_strategies

    load_user_strategies(config.strategy_paths)
    configured = configured_param_sets([(e.strategy, e.params) for e in config.strategies.param_sets],
                                       defaults=config.strategies.defaults)  # fmt: skip
    keys = [k for k in configured if strategy_name_of(k) in set(config.strategies.paper)]
    client = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}})
    if rest:
        client.urls["api"]["public"] = client.urls["api"]["private"] = rest
    ex = config.portfolio.execution
    account = PaperAccount(capital=config.paper.capital, quote=config.paper.quote, cash_buffer=config.paper.cash_buffer,
                           rules=config.risk.rules(), min_notional=config.portfolio.min_notional,
                           execution=Execution(algo=ex.algo, above_notional=ex.above_notional, slices=ex.slices,
                                               duration_s=ex.duration_s))  # fmt: skip
    markets = [dataclasses.replace(m, exchange=exchange) for m in config.research_markets]
    return IntradayLoop(markets, keys, ticker_source(_SyncTicker(client)), account=account, configured=configured,
                        webhook_env=config.alerts.webhook_env, portfolio=_portfolio(config, rest, exchange))  # fmt: skip


def _portfolio(config: Any, rest: str | None, exchange: str) -> Any:
    """The portfolio account the intraday loop rebalances, with the broker its daily asset uses."""
    from quantdag.exchange.client import ExchangeClient, ExchangeConfig
    from quantdag.stages.portfolio import Execution, make_broker, spec_of
    from quantdag.stream.intraday import PortfolioTrading

    spec = spec_of(config)
    client = ExchangeClient(ExchangeConfig(exchange_id=config.exchange.id, venue=exchange, api_url=rest,
                                           sandbox=config.exchange.sandbox, timeout_ms=config.exchange.timeout_ms))  # fmt: skip
    broker = make_broker(config.portfolio.broker, spec, client, capital=config.paper.capital, quote=config.paper.quote,
                         fee=spec.fee, slippage=spec.slippage)  # fmt: skip
    ex = config.portfolio.execution
    return PortfolioTrading(spec, broker, quote=config.paper.quote, execution=Execution(
        algo=ex.algo, above_notional=ex.above_notional, slices=ex.slices, duration_s=ex.duration_s))  # fmt: skip


class _SyncTicker:
    """``fetch_ticker`` of a plain ccxt client (what :func:`ticker_source` calls)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def fetch_ticker(self, symbol: str) -> dict:
        return self.client.fetch_ticker(symbol)


def _ws_of(base: str) -> str:
    """The websocket url an external simulator announces (``/sim/info``), else ``ws://host:port+1/ws``."""
    import urllib.request

    with contextlib.suppress(Exception), urllib.request.urlopen(f"{base}/sim/info", timeout=2) as r:
        return json.loads(r.read())["ws_url"]
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    return f"ws://{host}:{int(port) + 1}/ws"


def _live_client(config: Any) -> Any:
    """The live venue's streams (any ccxt.pro exchange; Binance's klines say when they close, the others'
    closed candles are read over REST); its testnet with ``sandbox``."""
    ex = make_client(None, None, venue=config.exchange.id)
    if config.exchange.sandbox:
        ex.set_sandbox_mode(True)
    return ex


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m quantdag.stream", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=None, help="stop after N seconds (default: until Ctrl-C)")
    p.add_argument("--speed", type=float, default=1.0, help="the in-process simulator's clock speed (default 1)")
    p.add_argument("--channels", default=",".join(CHANNELS),
                   help="what to stream: a comma list of ohlcv, trades, book (default all; their markets: the `stream` section)")
    p.add_argument("--trade", action=argparse.BooleanOptionalAction, default=None,
                   help="run the intraday loop: a closed research candle -> signals -> paper orders "
                        "(default: automation.paper_trading)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from quantdag.config import load_config
    from quantdag.errors import ConfigurationError

    try:
        config = load_config()
    except ConfigurationError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    if args.speed <= 0:
        raise SystemExit(f"--speed must be > 0, got {args.speed}")
    channels = tuple(c.strip() for c in args.channels.split(",") if c.strip())
    bad = sorted(set(channels) - set(CHANNELS))
    if bad or "ohlcv" not in channels:
        raise SystemExit(f"--channels {args.channels!r}: one or more of {CHANNELS}, ohlcv included")
    trade = config.automation.paper_trading if args.trade is None else args.trade
    try:
        out = asyncio.run(stream(args.seconds, args.speed, config, trade=trade, channels=channels))
    except ConfigurationError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
