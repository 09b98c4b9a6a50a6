"""Fixtures for the simulated exchange: a frozen-clock model and a server shared by the session."""

from __future__ import annotations

from collections.abc import Iterator

import ccxt
import pytest

from quantdag.sim import MarketModel, SimClock, SimExchange

from .support import GENESIS, NOW


@pytest.fixture(scope="session")
def model() -> MarketModel:
    """Seed 7, 30 days of history, clock frozen at NOW. Never move its clock."""
    m = MarketModel(7, genesis_ms=GENESIS, clock=SimClock(NOW))
    m.warm()
    return m


@pytest.fixture(scope="session")
def shared_sim(model: MarketModel) -> Iterator[SimExchange]:
    with SimExchange(model) as sim:
        yield sim


@pytest.fixture
def sim(shared_sim: SimExchange) -> Iterator[SimExchange]:
    """The shared server, with faults, ban and request log reset around each test."""
    shared_sim.faults = None
    shared_sim.unban()
    shared_sim.clear_requests()
    yield shared_sim
    shared_sim.faults = None
    shared_sim.unban()


@pytest.fixture
def ex(sim: SimExchange) -> ccxt.binance:
    """A real ccxt binance client on the shared server, markets loaded."""
    client = sim.ccxt_client(timeout=3000)
    client.load_markets()
    sim.clear_requests()
    return client
