"""`quantdag check`: the look-ahead and warm-up checks in a subprocess, exit codes scripts rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SHARED_DATA, require_shared

KRAKEN_1H = SHARED_DATA / "kraken" / "BTC_USDT-1h.parquet"
FIXTURES = Path(__file__).resolve().parents[1] / "strategies" / "fixture_strategies.py"


def test_check_passes_a_clean_strategy_and_fails_a_peeking_one_naming_column_and_candle(cli):
    clean = cli("check", "sma_cross", "--candles", str(require_shared(KRAKEN_1H)), "--max-candles", "800")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "OK: no look-ahead detected" in clean.stdout
    assert "OK: signals identical beyond the warm-up" in clean.stdout

    peek = cli("check", f"{FIXTURES}:PeekNextClose", "--candles", str(KRAKEN_1H), "--max-candles", "800")
    assert peek.returncode == 1
    assert "first: prefix of length" in peek.stdout and "column 'entry'" in peek.stdout and "ts=2023-" in peek.stdout
    assert "failed the look-ahead check" in peek.stderr


@pytest.mark.slow
def test_check_on_stored_simulator_candles(cli):
    proc = cli("check", "macd", "--market", "BTC/USDT:1h", "--from", "2026-05-01", "--to", "2026-05-31")
    assert proc.returncode in (0, 1), proc.stderr
    assert "744 candles" in proc.stdout  # 31 days of hourly candles, downloaded from the simulator
    unknown = cli("check", "no_such_strategy", "--market", "BTC/USDT:1h")
    assert unknown.returncode == 2 and "unknown strategy 'no_such_strategy'" in unknown.stderr
