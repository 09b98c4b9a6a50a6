"""A simulated exchange with a signed order account, and an order manager over it (real ccxt, real HTTP)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from quantdag.exchange.client import ExchangeClient, ExchangeConfig
from quantdag.exchange.retry import RetryPolicy
from quantdag.exchange.secrets import Credentials
from quantdag.execution import CcxtBroker, OrderManager
from quantdag.sim import MarketModel, SimExchange
from quantdag.sim.orders import SimOrders, install_orders
from quantdag.store.warehouse import Warehouse

API_KEY = "CANARYKEY-7f3a9b2c1d4e5f60718293a4b5c6d7e8"
SECRET = "CANARYSECRET-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"
START = {"USDT": 1_000_000.0, "BTC": 5.0, "ETH": 50.0}


@pytest.fixture(scope="session")
def order_sim() -> Iterator[SimExchange]:
    with SimExchange(MarketModel(seed=11, history_days=2)) as sim:
        yield sim


@pytest.fixture
def account(order_sim: SimExchange) -> Iterator[SimOrders]:
    """A fresh account (new routes) per test; faults cleared around it."""
    order_sim.faults = None
    acct = install_orders(order_sim, api_key=API_KEY, secret=SECRET, balances=START)
    yield acct
    order_sim.faults = None
    acct.clear_faults()


def make_client(sim: SimExchange, timeout_ms: int = 1000, retries: int = 5) -> ExchangeClient:
    cfg = ExchangeConfig(api_url=sim.api_url, venue="sim", timeout_ms=timeout_ms,
                         retry=RetryPolicy(max_retries=retries, base_delay=0.01, max_delay=0.05))
    client = ExchangeClient(cfg, credentials=Credentials(API_KEY, SECRET), sleep=lambda s: time.sleep(min(s, 0.02)))
    client.ccxt.enableRateLimit = False  # the simulator's own weight limit still applies
    return client


def make_oms(sim: SimExchange, db_path, **kw) -> OrderManager:
    client = make_client(sim, timeout_ms=kw.pop("timeout_ms", 1000))
    kw.setdefault("lost_after_s", 0.0)
    kw.setdefault("lost_after_answers", 1)  # tests of other things: the first "not found" is final
    kw.setdefault("lost_window_s", 0.0)
    return OrderManager(Warehouse(db_path), CcxtBroker(client, name="sim"), strategy=kw.pop("strategy", "test"), **kw)
