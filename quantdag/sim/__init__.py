"""Simulated exchange: seeded markets served over a Binance-compatible REST API on 127.0.0.1.

The offline default and the test double for every exchange test: the real ccxt ``binance`` client
talks to :class:`SimExchange` over real HTTP, and :class:`FaultPlan` makes it misbehave on demand.
"""

from quantdag.sim.clock import SimClock, wall_clock_ms
from quantdag.sim.faults import FAULT_KINDS, PAGE_FAULTS, Fault, FaultPlan
from quantdag.sim.markets import DEFAULT_MARKETS, SimMarket
from quantdag.sim.model import TIMEFRAMES, KlineUnits, MarketModel, OrderBook, Ticker
from quantdag.sim.paths import DepegEpisode
from quantdag.sim.routing import BinanceError, Route, SimRequest, SimResponse
from quantdag.sim.server import RateLimits, RequestRecord, SimExchange, ccxt_client

__all__ = [
    "DEFAULT_MARKETS",
    "FAULT_KINDS",
    "PAGE_FAULTS",
    "TIMEFRAMES",
    "BinanceError",
    "DepegEpisode",
    "Fault",
    "FaultPlan",
    "KlineUnits",
    "MarketModel",
    "SimMarket",
    "OrderBook",
    "RateLimits",
    "RequestRecord",
    "Route",
    "SimClock",
    "SimExchange",
    "SimRequest",
    "SimResponse",
    "Ticker",
    "ccxt_client",
    "wall_clock_ms",
]
