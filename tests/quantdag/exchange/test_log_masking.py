"""Log records are scrubbed when they are made: clean ones untouched, dirty ones masked for good."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from quantdag.exchange.secrets import Credentials, install_log_masking, masked_print, scrub, scrub_record

KEY = "canaryKEY-5a4b3c2d1e0f9a8b"
SECRET = "canarySECRET-1b2c3d4e5f6a7b8c"
SIGNED = "GET /api/v3/account?timestamp=1&recvWindow=10000&signature=" + "ab12" * 16


@pytest.fixture
def first_handler() -> Iterator[io.StringIO]:
    """A root handler added now (after the masking was installed), ahead of pytest's own."""
    Credentials(api_key=KEY, secret=SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.handlers.insert(0, handler)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_scrub_signature_query_param_masked_rest_kept():
    assert scrub(SIGNED) == "GET /api/v3/account?timestamp=1&recvWindow=10000&signature=***"


def test_scrub_record_clean_record_keeps_msg_args_and_exc_info():
    try:
        raise ValueError("nothing secret")
    except ValueError:
        record = logging.getLogger("t").makeRecord("t", logging.ERROR, __file__, 1, "n=%d", (3,), sys.exc_info())
    scrub_record(record)
    assert record.msg == "n=%d" and record.args == (3,) and record.exc_info is not None


def test_log_masking_bad_format_args_with_key_not_printed_raw(first_handler, capsys):
    logging.getLogger("quantdag.test.badformat").error("expected a number: %d", KEY)
    err = capsys.readouterr().err
    assert KEY not in err and KEY not in first_handler.getvalue()
    assert "do not format" in first_handler.getvalue()


def test_install_log_masking_repeated_wraps_factory_once():
    install_log_masking()
    factory = logging.getLogRecordFactory()
    install_log_masking()
    assert logging.getLogRecordFactory() is factory


def test_log_masking_factory_replaced_later_masked_after_reinstall(first_handler):
    masking = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)  # a library that replaces the factory outright
    try:
        install_log_masking()  # what every new ExchangeClient does
        logging.getLogger("quantdag.test.replaced").info("key %s", KEY)
    finally:
        logging.setLogRecordFactory(masking)
    assert KEY not in first_handler.getvalue() and "key ***" in first_handler.getvalue()


def test_masked_print_key_and_signature_masked(capsys):
    Credentials(api_key=KEY, secret=SECRET)
    masked_print("\nfetch Request:", "binance", SIGNED, {"X-MBX-APIKEY": KEY}, None)
    out = capsys.readouterr().out
    assert KEY not in out and "signature=***" in out and out.startswith("\nfetch Request: binance GET")
