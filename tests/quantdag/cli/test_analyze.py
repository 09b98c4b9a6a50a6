"""`quantdag analyze`: the market data report on real candles with gaps and on the simulator."""

from __future__ import annotations

import re

import pytest
from conftest import SHARED_DATA, require_shared

KRAKEN_15M = SHARED_DATA / "kraken" / "BTC_USDT-15m.parquet"  # 8632 candles, 8 missing (README)


def test_analyze_real_candles_reports_gaps_fat_tails_correlations_and_events(cli, tmp_path):
    out = tmp_path / "report.html"
    proc = cli("analyze", "BTC/USDT:15m", "--candles", str(require_shared(KRAKEN_15M)), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "8632 candles 2023-01-01 00:00:00+00:00 .. 2023-03-31 23:45:00+00:00, 8 missing" in proc.stdout
    kurtosis = float(re.search(r"excess kurtosis (-?[0-9.]+)", proc.stdout).group(1))
    assert kurtosis > 3  # BTC's 15-minute returns are fat-tailed
    assert "BTC/USD:15m 0.9" in proc.stdout  # the same coin against USD, from the file beside it
    html = out.read_text()
    for section in ("Coverage", "Gaps and filled candles", "Zero-volume runs", "Price jumps", "fat tails",
                    "Volatility regimes", "Correlation with other markets", "Market events"):  # fmt: skip
        assert section in html, section
    assert html.count("<svg") == 3 and "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


@pytest.mark.slow
def test_analyze_stored_simulator_candles_downloads_the_market_and_its_peers(cli):
    proc = cli("analyze", "ETH/USDT:1h", "--from", "2026-07-01", "--to", "2026-07-20")
    assert proc.returncode == 0, proc.stderr
    assert "480 candles" in proc.stdout and "coverage 100.00%" in proc.stdout
    assert "BTC/USDT:1h" in proc.stdout.split("correlations:")[1]
    assert (cli.data_dir / "reports" / "analyze-ETH_USDT-1h.html").exists()
    bad = cli("analyze", "ETHUSDT")
    assert bad.returncode == 2 and "expected SYMBOL:TF" in bad.stderr
