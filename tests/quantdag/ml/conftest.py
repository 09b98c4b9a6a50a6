"""Shared fixtures of the ML tests."""

from __future__ import annotations

import polars as pl
import pytest

from .simdata import sim_candles


@pytest.fixture(scope="session")
def candles() -> pl.DataFrame:
    """Two markets, 90 days of 1h candles."""
    return sim_candles()
