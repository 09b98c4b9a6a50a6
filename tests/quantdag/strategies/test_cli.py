"""`python -m quantdag.strategies`: the look-ahead command users run on their own strategies."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import SHARED_DATA, load_real_candles, require_shared

from quantdag.strategies.cli import EXIT_LOOKAHEAD, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[3]
TESTS_QUANTDAG = Path(__file__).resolve().parents[1]  # makes `strategies.fixture_strategies` importable
KRAKEN_1H = SHARED_DATA / "kraken" / "BTC_USDT-1h.parquet"  # ts stored as epoch milliseconds


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS_QUANTDAG)])}
    return subprocess.run(
        [sys.executable, "-m", "quantdag.strategies", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def _main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out, err)
    return code, out.getvalue(), err.getvalue()


def test_cli_registered_strategy_clean_exits_zero():
    proc = _run("check-lookahead", "sma_cross", "--params", '{"fast":10,"slow":50}', "--data", str(require_shared(KRAKEN_1H)))
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "OK: no look-ahead detected" in proc.stdout
    assert "2160 candles" in proc.stdout and "'fast': 10" in proc.stdout


def test_cli_user_lookahead_strategy_exits_one_with_report():
    proc = _run("check-lookahead", "strategies.fixture_strategies:PeekNextClose", "--data", str(require_shared(KRAKEN_1H)))
    assert proc.returncode == EXIT_LOOKAHEAD, proc.stderr
    assert "LOOK-AHEAD" in proc.stdout
    assert "first: prefix of length" in proc.stdout
    assert "column 'entry'" in proc.stdout or "column 'exit'" in proc.stdout


def test_cli_invalid_params_exit_two_naming_parameter():
    code, out, err = _main("check-lookahead", "rsi", "--params", '{"oversold": 120}', "--data", str(require_shared(KRAKEN_1H)))
    assert code == EXIT_USAGE and out == ""
    assert err == "error: rsi: parameter 'oversold' must be in [0, 100], got 120\n"


def test_cli_list_shows_every_strategy_and_schema():
    code, out, _ = _main("list")
    assert code == EXIT_OK
    for name in ("sma_cross", "ema_cross", "rsi", "macd", "regime_ma", "consensus"):
        assert f"\n{name}: " in f"\n{out}"
    assert "fast (int, default 10) valid [1, 1000], search [5, 50] step 5" in out
    assert "constraint: fast < slow" in out


def test_cli_unknown_strategy_lists_known_names():
    code, _, err = _main("check-lookahead", "smacross", "--data", str(require_shared(KRAKEN_1H)))
    assert code == EXIT_USAGE and "unknown strategy 'smacross'; known strategies:" in err


@pytest.mark.parametrize(
    ("params", "message"),
    [("{fast: 10}", "--params is not valid JSON"), ("[10, 50]", "--params must be a JSON object")],
)
def test_cli_malformed_params_rejected(params, message):
    code, _, err = _main("check-lookahead", "sma_cross", "--params", params, "--data", str(require_shared(KRAKEN_1H)))
    assert code == EXIT_USAGE and message in err


def test_cli_missing_data_file_rejected(tmp_path):
    code, _, err = _main("check-lookahead", "sma_cross", "--data", str(tmp_path / "nope.parquet"))
    assert code == EXIT_USAGE and "does not exist" in err


def test_cli_bad_module_path_rejected():
    code, _, err = _main("check-lookahead", "no_such_module:Thing", "--data", str(require_shared(KRAKEN_1H)))
    assert code == EXIT_USAGE and "cannot load strategy 'no_such_module:Thing'" in err


def test_cli_datetime_ts_parquet_and_every_prefix_mode(tmp_path):
    path = tmp_path / "candles.parquet"
    load_real_candles("kraken", "BTC_USDT", "1d").write_parquet(path)
    params = '{"fast": 3, "slow": 8, "signal": 3}'
    code, out, err = _main("check-lookahead", "macd", "--params", params, "--data", str(path), "--prefixes", "all")
    assert code == EXIT_OK, err
    assert "90 candles, 89 prefixes and 5 perturbed futures checked" in out


def test_cli_unsorted_candles_rejected_as_data_error(tmp_path):
    path = tmp_path / "shuffled.parquet"
    pl.read_parquet(require_shared(KRAKEN_1H)).reverse().write_parquet(path)
    code, _, err = _main("check-lookahead", "sma_cross", "--data", str(path))
    assert code == EXIT_USAGE and "'ts' must be strictly increasing" in err
