"""Your own strategies reach the pipeline from a folder named in the configuration file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipeline_helpers import config_with
from quantdag.config import DEFAULT_CONFIG_PATH
from quantdag.strategies import list_strategies, unregister

ROOT = Path(__file__).resolve().parents[2]
FOLDER = Path(__file__).resolve().parent / "user_strategies"


@pytest.fixture
def user_defs(tmp_path):
    from pipelines.definitions import build_defs

    config = config_with(strategy_paths=[str(FOLDER)])
    yield build_defs(tmp_path, config=config)
    for name in ("user_breakout", "user_peeker"):
        unregister(name)


def test_build_defs_with_strategy_paths_registers_folder_strategies_everywhere(user_defs):
    assert {"user_breakout", "user_peeker"} <= set(list_strategies())
    opt = user_defs.resolve_assets_def("optimization")
    assert {"user_breakout", "user_peeker"} <= set(opt.partitions_def.get_partition_keys())
    sensor = user_defs.resolve_sensor_def("register_param_sets")
    with dg.instance_for_test() as instance, dg.build_sensor_context(instance=instance) as ctx:
        added = {k for r in sensor.evaluate_tick(ctx).dynamic_partitions_requests for k in r.partition_keys}
    assert any(k.startswith("user_breakout-") for k in added) and any(k.startswith("user_peeker-") for k in added)


def test_strategy_paths_with_a_broken_file_fail_naming_it(tmp_path):
    from pipelines.definitions import build_defs
    from quantdag.errors import ConfigurationError

    (tmp_path / "broken.py").write_text("import polars as pl\nraise RuntimeError('boom')\n")
    with pytest.raises(ConfigurationError, match=r"broken\.py.*boom"):
        build_defs(tmp_path / "data", config=config_with(strategy_paths=[str(tmp_path)]))


def test_malformed_config_fails_definitions_validate_naming_the_key(tmp_path):
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    data["universe"]["markets"][0]["timeframes"] = ["7h"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    env = {**os.environ, "QUANTDAG_CONFIG": str(bad), "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env=env,
    )
    assert proc.returncode != 0
    assert "universe.markets[0].timeframes" in proc.stdout + proc.stderr and "7h" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_demo_backtests_a_folder_strategy_and_blocks_one_that_peeks(demo_run):
    """The issue's acceptance: a user file appears in backtest.runs after the demo; a peeking one never does.

    The demo is the session's one `quantdag demo` (tests/demo_run.py), whose strategy folder is ``FOLDER``."""
    from demo_run import USER_STRATEGIES
    from quantdag.store import Warehouse

    assert USER_STRATEGIES == FOLDER
    proc = demo_run.proc
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "BLOCKED user_peeker-" in proc.stdout and "no_lookahead: column" in proc.stdout
    wh = Warehouse(demo_run.data_dir / "quantdag.duckdb", read_only=True)
    runs = wh.query("SELECT strategy, count(*) AS n FROM backtest.runs GROUP BY ALL")
    got = dict(zip(runs["strategy"], runs["n"]))
    assert got.get("user_breakout") == 3 and "user_peeker" not in got
    verdict = wh.query("SELECT ok, column_name, candle_ts FROM signals.lookahead WHERE strategy = 'user_peeker'").row(0, named=True)
    assert verdict["ok"] is False and verdict["column_name"] in ("entry", "exit", "next_close")
    assert verdict["candle_ts"] is not None
    assert wh.query("SELECT count(*) AS n FROM signals.signals WHERE strategy = 'user_peeker'")["n"][0] == 0
