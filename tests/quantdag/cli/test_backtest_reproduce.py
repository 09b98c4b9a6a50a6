"""`quantdag backtest` and `quantdag reproduce` in a subprocess: on real candles (a parquet file)
and on the simulator (stored candles, missing days downloaded)."""

from __future__ import annotations

import re
import shutil

import polars as pl
import pytest
from conftest import SHARED_DATA, require_shared

KRAKEN_1H = SHARED_DATA / "kraken" / "BTC_USDT-1h.parquet"


def _run_id(stdout: str) -> str:
    m = re.search(r"mlflow run: ([0-9a-f]{32})", stdout)
    assert m, stdout
    return m.group(1)


@pytest.mark.slow
def test_backtest_of_a_parquet_file_prints_metrics_writes_tear_sheet_and_reproduces_bit_identical(cli, tmp_path):
    report = tmp_path / "out" / "tear.html"
    proc = cli("backtest", "sma_cross", "--candles", str(require_shared(KRAKEN_1H)), "--param", "fast=10",
               "--param", "slow=50", "--from", "2023-02-01", "--report", str(report))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "SmaCross(fast=10, slow=50" in proc.stdout and "1416 candles" in proc.stdout  # Feb 1 .. Mar 31, hourly
    assert re.search(r"sharpe\s+-?[0-9.]+", proc.stdout) and re.search(r"n_trades\s+[0-9]+", proc.stdout)
    html = report.read_text()
    assert "<svg" in html and "<script" not in html
    run_id = _run_id(proc.stdout)
    assert (cli.data_dir / "mlflow.db").exists()

    again = cli("reproduce", run_id)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "bit-identical: equity curve (1416 rows)" in again.stdout and "note:" not in again.stdout

    # the same backtest on a copy of the file whose one candle then changes: reproduce shows where (exit 1)
    copy = tmp_path / "BTC_USDT-1h.parquet"
    shutil.copy(KRAKEN_1H, copy)
    run2 = _run_id(cli("backtest", "sma_cross", "--candles", str(copy), "--from", "2023-02-01").stdout)
    frame = pl.read_parquet(copy)
    frame.with_columns(pl.when(pl.int_range(pl.len()) == 2000).then(pl.col(c) * 1.05).otherwise(pl.col(c)).alias(c)
                       for c in ("open", "high", "low", "close")).write_parquet(copy)  # fmt: skip
    changed = cli("reproduce", run2)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "note: the candles differ from the run's" in changed.stdout
    assert "DIFFERENT equity.parquet: column" in changed.stdout and "did not reproduce" in changed.stderr


@pytest.mark.slow
def test_backtest_on_the_simulator_downloads_missing_days_once_and_reproduces(cli):
    args = ("backtest", "rsi", "--market", "ETH/USDT:1h", "--from", "2026-06-01", "--to", "2026-06-10")
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "downloading 10 day(s) of ETH/USDT:1h from sim" in first.stderr
    assert "240 candles 2026-06-01 00:00:00+00:00 .. 2026-06-10 23:00:00+00:00" in first.stdout
    second = cli(*args, "--no-mlflow")
    assert second.returncode == 0 and "downloading" not in second.stderr
    assert second.stdout.split("tear sheet")[0] == first.stdout.split("tear sheet")[0]  # same candles, same metrics
    again = cli("reproduce", _run_id(first.stdout))
    assert again.returncode == 0 and "bit-identical: equity curve (240 rows)" in again.stdout, again.stdout + again.stderr
    # the stored frame is the pipeline's: a strategy reading sent_* columns backtests too
    news = cli("backtest", "sentiment", *args[2:], "--no-mlflow")
    assert news.returncode == 0 and "240 candles" in news.stdout, news.stderr


def test_backtest_refuses_a_peeking_strategy_and_names_bad_input(cli):
    from pathlib import Path

    peek = Path(__file__).resolve().parents[1] / "strategies" / "fixture_strategies.py"
    proc = cli("backtest", f"{peek}:PeekNextClose", "--candles", str(require_shared(KRAKEN_1H)), "--no-mlflow")
    assert proc.returncode == 1, proc.stderr
    assert "LOOK-AHEAD" in proc.stdout and "peek_next_close looks ahead: not backtested" in proc.stderr
    bad = cli("backtest", "sma_cross", "--market", "BTC/USDT:1h", "--param", "fast=0")
    assert bad.returncode == 2 and "parameter 'fast'" in bad.stderr and "Traceback" not in bad.stderr
