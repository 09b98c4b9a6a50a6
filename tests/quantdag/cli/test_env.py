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


@pytest.mark.slow
def test_demo_then_ui_show_the_pipeline_runs_of_a_fresh_data_dir(cli):
    """`quantdag demo` runs the pipeline into a fresh data dir; `quantdag ui --port P` then serves Dagster's UI
    over that data dir's instance, whose GraphQL API lists the demo's runs."""
    import json
    import os
    import signal
    import socket
    import subprocess
    import time
    import sys
    import urllib.request

    command = [str(sys.executable).rsplit("/", 1)[0] + "/quantdag"]  # the console script `make setup` installs
    env = {k: v for k, v in cli.env.items() if k != "DAGSTER_HOME"}  # the data dir's own instance, not the test target's
    demo = subprocess.run([*command, "demo"], env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert f"DuckDB file    {cli.data_dir / 'quantdag.duckdb'}" in demo.stdout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = subprocess.Popen([*command, "ui", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        query = json.dumps({"query": "{ runsOrError { ... on Runs { results { runId status } } } }"}).encode()
        runs, deadline = None, time.monotonic() + 120
        while runs is None and time.monotonic() < deadline and ui.poll() is None:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                             headers={"Content-Type": "application/json"})  # fmt: skip
                with urllib.request.urlopen(req, timeout=5) as r:
                    runs = json.loads(r.read())["data"]["runsOrError"]["results"]
            except OSError:
                time.sleep(1)
        assert runs, "Dagster's UI did not answer with the demo's runs"
        assert {r["status"] for r in runs} == {"SUCCESS"}
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
