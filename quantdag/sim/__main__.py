"""``python -m quantdag.sim``: run the simulated exchange in the foreground until SIGTERM/SIGINT.

Prints its base URL as the first line on stdout (so a parent process started with ``--port 0``
can read where it listens) and logs to stderr. Bound beyond loopback (``--host 0.0.0.0``), the
``/sim/*`` control API needs ``Authorization: Bearer <token>``: the token is ``$QUANTDAG_SIM_TOKEN``
or, when that is unset, a random one printed as the second stdout line ``token <token>``. The last
startup line is ``ws <url>``, the websocket streams (``--ws-port``; public market data, no token).
``--speed K`` runs the clock K times faster than wall time (from ``--now`` if given).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import UTC, datetime

from quantdag.errors import ConfigurationError
from quantdag.sim.clock import SimClock
from quantdag.sim.model import MarketModel
from quantdag.sim.paths import MS_PER_DAY
from quantdag.sim.server import RateLimits, SimExchange

__all__ = ["build_parser", "main", "startup_lines"]

log = logging.getLogger("quantdag.sim")


def _instant_ms(text: str) -> int:
    """Milliseconds since the epoch from an int or an ISO date/time (UTC unless it says otherwise)."""
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date/time or ms timestamp: {text!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m quantdag.sim", description="Run the simulated Binance-like exchange.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1); beyond loopback the control API needs a token")
    p.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one (default 8765)")
    p.add_argument("--seed", type=int, default=7, help="market model seed (default 7)")
    p.add_argument("--genesis", type=_instant_ms, default=None,
                   help="first candle (UTC day), e.g. 2024-01-01; keeps history stable across restarts")
    p.add_argument("--history-days", type=int, default=400, help="history length when --genesis is not given")
    p.add_argument("--now", type=_instant_ms, default=None, help="freeze the clock at this instant")
    p.add_argument("--offset-ms", type=int, default=0, help="shift the wall clock by this much")
    p.add_argument("--speed", type=float, default=None,
                   help="run the clock this many times faster than wall time (from --now if given)")
    p.add_argument("--ws-port", type=int, default=None,
                   help="websocket streams port (default: --port + 1, or a free one with --port 0)")
    p.add_argument("--weight-limit", type=int, default=6000, help="request weight per window (default 6000)")
    p.add_argument("--weight-window", type=float, default=60.0, help="weight window in seconds (default 60)")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return p


def startup_lines(sim: SimExchange) -> list[str]:
    """What goes to stdout at start: the base URL, then ``token <token>`` if the token was generated
    (``main`` prints ``ws <url>`` after them)."""
    lines = [sim.url]
    if sim.token_generated:
        lines.append(f"token {sim.token}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        log.info("received signal %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        clock = SimClock(args.now, offset_ms=args.offset_ms, speed=args.speed)
        genesis = None if args.genesis is None else args.genesis // MS_PER_DAY * MS_PER_DAY
        model = MarketModel(args.seed, genesis_ms=genesis, clock=clock, history_days=args.history_days)
        ws_port = args.ws_port if args.ws_port is not None else (args.port + 1 if args.port else 0)
        sim = SimExchange(model, host=args.host, port=args.port, ws_port=ws_port,
                          limits=RateLimits(weight_limit=args.weight_limit, window_s=args.weight_window))
        sim.start()
    except (ConfigurationError, OSError) as exc:
        log.error("cannot start the simulated exchange: %s", exc)
        return 2
    for line in startup_lines(sim):
        print(line, flush=True)
    print(f"ws {sim.ws_url}", flush=True)
    log.info("serving seed %d, markets %s, genesis %s", model.seed, ", ".join(model.symbols),
             datetime.fromtimestamp(model.genesis_ms / 1000, tz=UTC).date())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
