"""`quantdag new-strategy`: each template's file and test, generated into the configured strategy
folder, pass the look-ahead and warm-up checks and their own test as generated."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import load_real_candles

from quantdag.cli.templates import TEMPLATES
from quantdag.strategies.lookahead import check_lookahead
from quantdag.strategies.loader import load_strategy_class
from quantdag.strategies.warmup import check_warmup


@pytest.fixture(scope="module")
def real_candles():
    return load_real_candles("kraken", "BTC_USDT", "1h").tail(1200)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_generated_strategy_passes_both_checks_on_real_candles(cli, template, real_candles):
    from quantdag.strategies import unregister

    name = f"my_{template}"
    proc = cli("new-strategy", name, "--template", template)
    assert proc.returncode == 0, proc.stderr
    assert (cli.strategy_dir / f"{name}.py").exists() and (cli.strategy_dir / f"test_{name}.py").exists()
    try:
        cls = load_strategy_class(cli.strategy_dir / f"{name}.py", "My" + template.capitalize())
        s = cls()
        assert s.name == name
        look = check_lookahead(s, real_candles, prefixes=20, perturbations=3)
        assert look.ok, look.summary()
        warm = check_warmup(s, real_candles)
        assert warm.ok, warm.summary()
    finally:
        unregister(name)  # the registry is global: other tests list every strategy


@pytest.mark.slow
def test_generated_tests_pass_and_the_command_finds_the_strategy(cli):
    for template in sorted(TEMPLATES):
        assert cli("new-strategy", f"gen_{template}", "--template", template).returncode == 0
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(cli.strategy_dir)],
                           capture_output=True, text=True, cwd=cli.strategy_dir, timeout=300, check=False)  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert f"{3 * len(TEMPLATES)} passed" in tests.stdout
    listed = cli("list")
    assert all(f"gen_{t}:" in listed.stdout for t in TEMPLATES), listed.stdout
    check = cli("check", "gen_ml", "--market", "BTC/USDT:1h", "--from", "2026-04-01", "--to", "2026-05-31")
    assert check.returncode == 0, check.stdout + check.stderr


def test_new_strategy_refuses_a_taken_name(cli, tmp_path):
    assert cli("new-strategy", "twice").returncode == 0
    again = cli("new-strategy", "twice", "--dir", str(tmp_path / "elsewhere"))
    assert again.returncode == 2 and "already registered" in again.stderr
    assert not (tmp_path / "elsewhere").exists()
