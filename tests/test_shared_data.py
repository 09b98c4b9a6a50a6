"""Tests that need the real candles say what is missing, not a bare FileNotFoundError."""

from __future__ import annotations

import pytest

from conftest import SHARED_DATA, require_shared


def test_require_shared_missing_file_fails_naming_it_and_what_exists():
    missing = SHARED_DATA / "kraken" / "DOGE_USDT-1h.parquet"
    with pytest.raises(pytest.fail.Exception, match=r"DOGE_USDT-1h\.parquet is missing.*kraken/BTC_USDT-1h\.parquet"):
        require_shared(missing)


def test_require_shared_present_file_is_returned():
    path = SHARED_DATA / "kraken" / "BTC_USDT-1h.parquet"
    assert require_shared(path) == path
