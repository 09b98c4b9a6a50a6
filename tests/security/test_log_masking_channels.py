"""Canary keys from the environment stay out of every log channel during real signed requests.

Each test makes real signed requests (``/api/v3/account``, ``/api/v3/order``) with the real ccxt
client to a simulated exchange on 127.0.0.1, with ccxt logging at DEBUG (it logs the request
headers, ``X-MBX-APIKEY`` included, and the signed URL), and looks at one channel: a handler added
to the root logger *after* the client was created, a handler on ``ccxt.base.exchange`` itself,
stdout with ccxt ``verbose``, and the traceback of a failing signed request.

The simulator is this module's own (a small model, signed account routes installed): the shared
``sim`` fixture is left without order routes for the tests that rely on that.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import ccxt
import pytest

from quantdag.errors import ExchangeError
from quantdag.exchange import ExchangeClient, ExchangeConfig, RetryPolicy
from quantdag.sim import MarketModel, SimExchange
from quantdag.sim.orders import install_orders

KEY = "canaryKEY-3e5d7c9b1a2f4e6d8c0b"
SECRET = "canarySECRET-f1e2d3c4b5a69788a7b6"
SIGNATURE = re.compile(r"signature=[0-9a-fA-F]{16,}")


@pytest.fixture(scope="module")
def signed_sim() -> Iterator[SimExchange]:
    with SimExchange(MarketModel(seed=13, history_days=2)) as s:
        install_orders(s, api_key=KEY, secret=SECRET, balances={"USDT": 100_000.0, "BTC": 1.0})
        yield s


@pytest.fixture
def ccxt_debug() -> Iterator[None]:
    """ccxt's loggers at DEBUG (they log headers and signed URLs), restored afterwards."""
    loggers = [logging.getLogger(n) for n in ("", "ccxt", "ccxt.base.exchange")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    yield
    for lg, level in zip(loggers, levels):
        lg.setLevel(level)


@pytest.fixture
def client(signed_sim, monkeypatch, ccxt_debug) -> ExchangeClient:
    """A client whose keys come from the environment, as in production."""
    signed_sim.faults = None
    monkeypatch.setenv("QUANTDAG_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("QUANTDAG_BINANCE_SECRET", SECRET)
    c = ExchangeClient(ExchangeConfig(api_url=signed_sim.api_url, venue="sim", timeout_ms=2000,
                                      retry=RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02)))
    c.ccxt.enableRateLimit = False
    assert c.ccxt.apiKey == KEY and c.ccxt.secret == SECRET
    yield c
    signed_sim.faults = None


def _signed_requests(client: ExchangeClient) -> None:
    client.markets()
    balance = client.ccxt.fetch_balance()
    assert balance["USDT"]["free"] > 0  # the keys were accepted: the requests were really signed
    order = client.ccxt.create_order("BTC/USDT", "market", "buy", 0.001)
    assert order["status"] == "closed"


def _assert_clean(text: str) -> None:
    assert "/api/v3/account" in text  # the channel did see the signed requests
    assert KEY not in text, [line for line in text.splitlines() if KEY in line][:3]
    assert SECRET not in text
    assert not SIGNATURE.search(text), SIGNATURE.findall(text)[:3]
    assert "***" in text


def _handler(logger: logging.Logger) -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    # first in line: a handler that runs before any other sees the record as it was made (under
    # pytest, its own capture handlers come first and a filter on them would hide a leak)
    logger.handlers.insert(0, handler)
    return handler, stream


def test_log_masking_root_handler_added_after_client_masks_key_and_signature(client):
    handler, stream = _handler(logging.getLogger())
    try:
        _signed_requests(client)
    finally:
        logging.getLogger().removeHandler(handler)
    _assert_clean(stream.getvalue())


def test_log_masking_handler_on_ccxt_base_exchange_masks_key_and_signature(client):
    ccxt_logger = logging.getLogger("ccxt.base.exchange")
    handler, stream = _handler(ccxt_logger)
    try:
        _signed_requests(client)
    finally:
        ccxt_logger.removeHandler(handler)
    _assert_clean(stream.getvalue())


def test_log_masking_ccxt_verbose_stdout_masks_key_and_signature(client, capsys):
    client.ccxt.verbose = True  # set after the client was built, as one does when debugging
    try:
        _signed_requests(client)
    finally:
        client.ccxt.verbose = False
    out = capsys.readouterr().out
    assert "fetch Request" in out
    _assert_clean(out)


def test_log_masking_failing_signed_request_traceback_masks_key_and_secret(client, signed_sim):
    handler, stream = _handler(logging.getLogger())
    handler.setLevel(logging.ERROR)  # only the failures and their tracebacks, not ccxt's DEBUG lines
    log = logging.getLogger("quantdag.test.masking")
    try:
        client.markets()
        signed_sim.inject("server_error", count=100, path="/api/v3/account")
        with pytest.raises(ExchangeError):
            client._call(client.ccxt.fetch_balance, "fetch_balance")
        try:
            client.ccxt.fetch_balance()
        except ccxt.BaseError:
            # what a caller debugging an auth failure logs: the error, the request it sent, the keys in use
            log.exception("signed request failed: headers %s", client.ccxt.last_request_headers)
        try:
            raise RuntimeError(f"signed with key {client.ccxt.apiKey} and secret {client.ccxt.secret}")
        except RuntimeError:
            log.exception("signing failed")
    finally:
        signed_sim.faults = None
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback" in text and "RuntimeError" in text and "ExchangeNotAvailable" in text
    _assert_clean(text)
