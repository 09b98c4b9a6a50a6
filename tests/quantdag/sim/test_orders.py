"""Signed order endpoints of the simulated exchange, through the real ccxt binance client."""

from __future__ import annotations

import time
from collections.abc import Iterator

import ccxt
import pytest

from quantdag.sim import MarketModel, SimClock, SimExchange
from quantdag.sim.orders import ORDER_PATH, SimOrders, install_orders

KEY, SECRET = "simkey-0123456789abcdef", "simsecret-fedcba9876543210"
OPTS = {"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}}


@pytest.fixture(scope="module")
def osim() -> Iterator[SimExchange]:
    # frozen model clock: the book does not change under a test (order timestamps still use wall time)
    with SimExchange(MarketModel(seed=5, history_days=2, clock=SimClock(int(time.time() * 1000)))) as s:
        yield s


@pytest.fixture
def acct(osim) -> SimOrders:
    osim.faults = None
    return install_orders(osim, api_key=KEY, secret=SECRET, balances={"USDT": 100_000.0, "BTC": 1.0})


@pytest.fixture
def ex(osim, acct):
    client = osim.ccxt_client(apiKey=KEY, secret=SECRET, timeout=800, **OPTS)
    client.load_markets()
    return client


def test_market_order_fills_and_moves_balances(ex, acct):
    o = ex.create_order("BTC/USDT", "market", "buy", 0.01, params={"newClientOrderId": "m-1"})
    assert o["status"] == "closed" and o["filled"] == pytest.approx(0.01) and o["clientOrderId"] == "m-1"
    assert o["trades"] and o["fee"]["currency"] == "USDT"
    cost = o["cost"] + o["fee"]["cost"]
    free_usdt, _ = acct.balances()["USDT"]
    assert free_usdt == pytest.approx(100_000 - cost)
    assert acct.balances()["BTC"][0] == pytest.approx(1.01)
    assert ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "m-1"})["status"] == "closed"
    trades = ex.fetch_my_trades("BTC/USDT")
    assert sum(t["amount"] for t in trades) == pytest.approx(0.01)
    bal = ex.fetch_balance()
    assert bal["BTC"]["total"] == pytest.approx(1.01)


def test_limit_rests_locks_funds_and_cancels(ex, acct):
    last = ex.fetch_ticker("BTC/USDT")["last"]
    o = ex.create_order("BTC/USDT", "limit", "sell", 0.5, round(last * 1.2, 2), params={"newClientOrderId": "l-1"})
    assert o["status"] == "open"
    assert acct.balances()["BTC"] == pytest.approx((0.5, 0.5))
    assert [x["clientOrderId"] for x in ex.fetch_open_orders("BTC/USDT")] == ["l-1"]
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        ex.create_order("BTC/USDT", "limit", "sell", 0.1, round(last * 1.2, 2), params={"newClientOrderId": "l-1"})
    assert ex.cancel_order(o["id"], "BTC/USDT")["status"] == "canceled"
    assert acct.balances()["BTC"] == pytest.approx((1.0, 0.0))
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "nope"})


def test_marketable_limit_fills_partially_against_the_book(ex, acct):
    book = ex.fetch_order_book("BTC/USDT", 100)  # the matcher walks the 100-level book
    best_ask, top_qty = book["asks"][0]
    qty = round(top_qty + 0.5, 5)
    o = ex.create_order("BTC/USDT", "limit", "buy", qty, best_ask, params={"newClientOrderId": "p-1"})
    assert o["filled"] == pytest.approx(top_qty) and o["status"] == "open"  # took the one crossing level
    got = ex.fetch_order(o["id"], "BTC/USDT")
    assert got["filled"] == pytest.approx(top_qty) and got["status"] == "open"  # same book: no refill
    assert ex.cancel_order(o["id"], "BTC/USDT")["status"] == "canceled"
    assert acct.balances()["USDT"][1] == pytest.approx(0.0, abs=1e-6)  # the rest's lock was released


def test_refusals_map_to_ccxt_errors(osim, ex, acct):
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "market", "buy", 50.0, params={"newClientOrderId": "i-1"})
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "market", "sell", 2.0, params={"newClientOrderId": "i-2"})
    bad = osim.ccxt_client(apiKey=KEY, secret="wrong-secret-xyz", timeout=800, **OPTS)
    bad.markets, bad.markets_by_id, bad.symbols = ex.markets, ex.markets_by_id, ex.symbols
    with pytest.raises(ccxt.AuthenticationError):
        bad.fetch_balance()
    other = osim.ccxt_client(apiKey="another-key-123", secret=SECRET, timeout=800, **OPTS)
    other.markets, other.markets_by_id, other.symbols = ex.markets, ex.markets_by_id, ex.symbols
    with pytest.raises(ccxt.AuthenticationError):
        other.fetch_balance()
    stale = osim.ccxt_client(apiKey=KEY, secret=SECRET, timeout=800, **OPTS)
    stale.markets, stale.markets_by_id, stale.symbols = ex.markets, ex.markets_by_id, ex.symbols
    stale.nonce = lambda: int(time.time() * 1000) - 120_000
    with pytest.raises(ccxt.BaseError, match="recvWindow"):
        stale.fetch_balance()
    assert acct.accepted == 0


def test_timeout_after_accept_books_the_order(osim, ex, acct):
    acct.lose_responses(1, mode="timeout", delay_s=1.2)
    with pytest.raises(ccxt.RequestTimeout):
        ex.create_order("BTC/USDT", "market", "buy", 0.01, params={"newClientOrderId": "t-1"})
    assert acct.count_by_client_id() == {"t-1": 1} and acct.lost_responses == 1
    assert ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "t-1"})["status"] == "closed"


def test_server_fault_plan_applies_to_order_paths(osim, ex, acct):
    osim.inject("server_error", path=ORDER_PATH, status=502)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.create_order("BTC/USDT", "market", "buy", 0.01, params={"newClientOrderId": "f-1"})
    assert acct.count_by_client_id() == {}
    osim.inject("rate_limit", path=ORDER_PATH, retry_after_s=0.1)
    with pytest.raises(ccxt.DDoSProtection):
        ex.create_order("BTC/USDT", "market", "buy", 0.01, params={"newClientOrderId": "f-2"})
    assert acct.accepted == 0
