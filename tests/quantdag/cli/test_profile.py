"""`quantdag profile`: time per stage, numba compilation apart, peak memory, a call-stack profile."""

from __future__ import annotations

import re

import pytest
from conftest import SHARED_DATA, require_shared

KRAKEN_1H = SHARED_DATA / "kraken" / "BTC_USDT-1h.parquet"


@pytest.mark.slow
def test_profile_times_each_stage_and_writes_the_call_stack_profile(cli, tmp_path):
    out = tmp_path / "profile.html"
    proc = cli("profile", "sma_cross", "--candles", str(require_shared(KRAKEN_1H)), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "2160 candles" in proc.stdout
    stages = dict(re.findall(r"^  (.+?)\s{2,}([0-9.]+) (?:ms|MiB)$", proc.stdout, flags=re.M))
    for stage in ("load candles", "indicators (compute_indicators)", "signals (compute_signals)", "kernel run",
                  "numba compilation (first - run)", "metrics", "peak resident memory of the process"):  # fmt: skip
        assert stage in stages, (stage, proc.stdout)
    assert float(stages["peak resident memory of the process"]) > 50
    html = out.read_text()
    assert "pyinstrument" in html and "backtest_signals" in html  # the call stacks name our functions


@pytest.mark.slow
def test_profile_on_stored_simulator_candles(cli):
    proc = cli("profile", "macd", "--market", "ETH/USDT:1h", "--from", "2026-02-01", "--to", "2026-02-28")
    assert proc.returncode == 0, proc.stderr
    assert "on ETH/USDT:1h: 672 candles" in proc.stdout and "load candles" in proc.stdout
    assert (cli.data_dir / "reports" / "profile-macd-ETH_USDT-1h.html").exists()
