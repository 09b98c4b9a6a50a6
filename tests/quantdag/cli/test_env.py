"""`quantdag download` and `quantdag doctor` on a fresh data dir (the simulator offline)."""

from __future__ import annotations

import duckdb
import pytest


@pytest.mark.slow
def test_download_stores_missing_days_once(cli):
    first = cli("download", "--market", "SOL/USDT:1h", "--market", "BTC/USDT:1d", "--from", "2026-08-01", "--to", "2026-08-05")
    assert first.returncode == 0, first.stderr
    assert "SOL/USDT:1h: 5 of 5 day(s) downloaded" in first.stdout and "BTC/USDT:1d: 5 of 5 day(s) downloaded" in first.stdout
    con = duckdb.connect(str(cli.data_dir / "quantdag.duckdb"), read_only=True)
    try:
        counts = dict(con.execute("SELECT symbol || ':' || timeframe, count(*) FROM market.candles GROUP BY 1").fetchall())
    finally:
        con.close()
    assert counts["SOL/USDT:1h"] == 120 and counts["BTC/USDT:1d"] == 5 and counts["BTC/USDT:1h"] == 120  # 1d built from 1h
    again = cli("download", "--market", "SOL/USDT:1h", "--from", "2026-08-01", "--to", "2026-08-05")
    assert "SOL/USDT:1h: 0 of 5 day(s) downloaded" in again.stdout


@pytest.mark.slow
def test_doctor_says_what_is_wrong_and_exits_one(cli):
    fresh = cli("doctor")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "ok    installed packages match requirements.lock" in fresh.stdout
    assert "no DuckDB file" in fresh.stdout and "everything needed is in place" in fresh.stdout

    cli.data_dir.mkdir(parents=True)
    holder = duckdb.connect(str(cli.data_dir / "quantdag.duckdb"))  # a writer holding the file, as a stuck code server would
    try:
        locked = cli("doctor")
    finally:
        holder.close()
    assert locked.returncode == 1
    assert "is locked by another process" in locked.stdout and "FAIL" in locked.stdout

    cli.config.write_text(cli.config.read_text().replace("mode: simulated", "mode: simulatd"))
    broken = cli("doctor")
    assert broken.returncode == 1
    assert "FAIL  configuration:" in broken.stdout and "exchange.mode" in broken.stdout
