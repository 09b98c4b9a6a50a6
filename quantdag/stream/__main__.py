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
from pathlib import Path
from typing import Any

from quantdag.store import Warehouse, WarehouseError
from quantdag.stream.landing import ingest
from quantdag.stream.streamer import Streamer, make_client

log = logging.getLogger("quantdag.stream")


def last_stored(db: Path, exchange: str, symbols: list[str]) -> dict[str, int]:
    """Open time (ms) of each market's last stored 1m candle: a restart backfills from there."""
    if not db.exists():
        return {}
    try:
        rows = Warehouse(db, read_only=True, lock_timeout=2.0).query(
            "SELECT symbol, max(ts) AS ts FROM market.candles WHERE exchange = ? AND timeframe = '1m' GROUP BY symbol",
            [exchange],
        )  # fmt: skip
    except WarehouseError:
        return {}
    return {r["symbol"]: int(r["ts"].timestamp() * 1000) for r in rows.iter_rows(named=True) if r["symbol"] in symbols}


async def _ingest_loop(db: Path, root: Path, stop: asyncio.Event, every_s: float = 1.0) -> dict[str, int]:
    """Drain the landing area into the warehouse whenever the file is free (never blocking the streams)."""
    done = {"files": 0, "candles": 0, "busy": 0}

    def once(timeout: float) -> None:
        try:
            rep = ingest(Warehouse(db, lock_timeout=timeout), root)
            done["files"] += rep.files
            done["candles"] += rep.candles
        except WarehouseError:
            done["busy"] += 1  # a job holds the file: the candles wait in the landing area

    while not stop.is_set():
        await asyncio.to_thread(once, 0.2)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
    await asyncio.to_thread(once, 30.0)
    return done


async def stream(seconds: float | None, speed: float, config: Any) -> dict[str, Any]:
    data = Path(config.data_path)
    data.mkdir(parents=True, exist_ok=True)
    symbols = sorted({m.symbol for m in config.markets})
    sim = None
    if config.exchange.mode == "simulated":
        from quantdag.sim import MarketModel, SimExchange
        from quantdag.sim.clock import SimClock
        from resources.exchange import SIM_GENESIS_MS

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
    streamer = Streamer(factory, symbols, root, exchange=exchange, last_closed=last_stored(db, exchange, symbols),
                        watchdog_s=max(2.0, 10.0 / max(speed, 1.0)), wall_clock=speed == 1.0)  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, streamer.stop)
    ingesting = asyncio.create_task(_ingest_loop(db, root, stop))
    try:
        stats = await streamer.run(seconds)
    finally:
        stop.set()
        ingested = await ingesting
        if sim is not None:
            sim.stop()
    return {"session": streamer.session, "markets": symbols, **stats.as_dict(), "ingested": ingested}


def _ws_of(base: str) -> str:
    """The websocket url an external simulator announces (``/sim/info``), else ``ws://host:port+1/ws``."""
    import urllib.request

    with contextlib.suppress(Exception), urllib.request.urlopen(f"{base}/sim/info", timeout=2) as r:
        return json.loads(r.read())["ws_url"]
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    return f"ws://{host}:{int(port) + 1}/ws"


def _live_client(config: Any) -> Any:
    """The live venue's streams: Binance (spot), whose klines say when they close; its testnet with ``sandbox``."""
    from quantdag.errors import ConfigurationError

    if config.exchange.id != "binance":
        raise ConfigurationError(f"exchange.id {config.exchange.id!r}: live streaming reads Binance's closed-kline "
                                 "flag; other venues are not supported yet (the daily REST jobs are)")  # fmt: skip
    ex = make_client(None, None)
    if config.exchange.sandbox:
        ex.set_sandbox_mode(True)
    return ex


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m quantdag.stream", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=None, help="stop after N seconds (default: until Ctrl-C)")
    p.add_argument("--speed", type=float, default=1.0, help="the in-process simulator's clock speed (default 1)")
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
    print(json.dumps(asyncio.run(stream(args.seconds, args.speed, config)), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
