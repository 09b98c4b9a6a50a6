"""`quantdag sweep`: the project's sweep with DSR, PBO, the heatmap and an MLflow run."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATA, require_shared

from quantdag.cli.common import InputError
from quantdag.cli.sweep import parse_grid

KRAKEN_1H = SHARED_DATA / "kraken" / "BTC_USDT-1h.parquet"


def test_grid_ranges_are_inclusive_and_exact():
    assert parse_grid(("fast=5:20:5", "slow=0.1:0.3:0.1", "ma_type=sma,ema", "x=3")) == {
        "fast": [5, 10, 15, 20], "slow": [0.1, 0.2, 0.3], "ma_type": ["sma", "ema"], "x": 3,
    }
    for bad in ("fast", "fast=5:1:1", "fast=a:b:c", "fast=1:5:0"):
        with pytest.raises(InputError):
            parse_grid((bad,))


@pytest.mark.slow
def test_sweep_on_real_candles_prints_best_dsr_pbo_and_draws_the_heatmap(cli, tmp_path):
    heat = tmp_path / "heat.png"
    proc = cli("sweep", "sma_cross", "--candles", str(require_shared(KRAKEN_1H)), "--grid", "fast=5:20:5",
               "--grid", "slow=40:100:20", "--heatmap", str(heat))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "evaluated 16 combinations" in proc.stdout
    assert "deflated Sharpe ratio 0." in proc.stdout and "probability of backtest overfitting" in proc.stdout
    assert heat.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mlflow run: " in proc.stdout and (cli.data_dir / "mlflow.db").exists()


@pytest.mark.slow
def test_sweep_on_stored_simulator_candles(cli):
    proc = cli("sweep", "rsi", "--market", "BTC/USDT:1h", "--from", "2026-03-01", "--to", "2026-05-31",
               "--grid", "period=10:20:5", "--grid", "oversold=20,30", "--no-mlflow")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "downloading 92 day(s) of BTC/USDT:1h from sim" in proc.stderr
    assert "sweeping rsi on BTC/USDT:1h: 2208 candles" in proc.stdout and "evaluated 6 combinations" in proc.stdout
    assert "heatmap: " in proc.stdout and "mlflow run" not in proc.stdout
