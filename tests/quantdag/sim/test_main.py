"""``python -m quantdag.sim``: starts, prints its URL, serves ccxt, stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from quantdag.sim import ccxt_client
from quantdag.sim.__main__ import build_parser

ROOT = Path(__file__).resolve().parents[3]


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantdag.sim", "--port", "0", "--history-days", "2", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=30)
    if not line or not line[0].startswith("http://127.0.0.1:"):
        proc.kill()
        pytest.fail(f"simulator did not print its URL; stderr: {proc.stderr.read()[-2000:]}")
    return proc, line[0].strip()


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_cli_serves_ccxt_and_stops_cleanly_on_signal(sig: signal.Signals) -> None:
    proc, url = _start("--seed", "11", "--now", "2025-10-01T12:34:56")
    try:
        client = ccxt_client(url, timeout=3000)
        assert client.fetch_time() == 1_759_322_096_000
        rows = client.fetch_ohlcv("BTC/USDT", "1h", limit=3)
        assert len(rows) == 3 and rows[-1][0] == 1_759_320_000_000
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert "stopping" in err and "stopped" in err and "Traceback" not in err


def test_cli_bad_arguments_exit_with_usage_error() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--now", "yesterday"])
    args = build_parser().parse_args(["--genesis", "2025-01-01", "--port", "9000"])
    assert args.genesis == 1_735_689_600_000 and args.port == 9000
