"""The issue end to end: a stray old day, then recent days; the hole is recorded and a backtest refuses it."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest
import yaml

from pipeline_helpers import config_with, recent_days, run_job
from quantdag.config import DEFAULT_CONFIG_PATH
from quantdag.strategies import create_strategy
from quantdag.strategies.keys import param_set_key

RECENT = recent_days(3)
OLD_DAY = (date.fromisoformat(RECENT[0]) - timedelta(days=40)).isoformat()
HOLE_START = datetime.fromisoformat(OLD_DAY).replace(tzinfo=timezone.utc) + timedelta(days=1)
HOLE_END = datetime.fromisoformat(RECENT[0]).replace(tzinfo=timezone.utc) - timedelta(hours=1)
HOLE_1H = 39 * 24
KEY = param_set_key(create_strategy("sma_cross", {"fast": 5, "slow": 20}))
TABLE_KEYS = {
    "market.candles": ("exchange", "symbol", "timeframe", "ts"),
    "market.gaps": ("exchange", "symbol", "timeframe", "gap_start"),
}


def _config(accept_holes: bool = False):
    universe = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())["universe"]
    return config_with(
        universe={**universe, "accept_holes": accept_holes},
        strategies={"param_sets": [{"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}}]},
    )


@pytest.fixture(scope="module")
def stray_day(tmp_path_factory, sim):
    """One stray old day, then the last three days: the data job run as the issue ran it."""
    from pipelines.definitions import build_defs

    tmp = tmp_path_factory.mktemp("holes")
    defs = build_defs(tmp, config=_config(), sim_url=sim.url)
    old = run_job(defs, "daily_data_job", [OLD_DAY])
    recent = run_job(defs, "daily_data_job", RECENT)
    return {"tmp": tmp, "defs": defs, "old": old, "recent": recent, "wh": defs.resources["warehouse"].get()}


def _backtest(defs, instance):
    instance.add_dynamic_partitions("param_sets", [KEY])
    return defs.resolve_job_def("backtest_job").execute_in_process(
        instance=instance, partition_key=KEY, raise_on_error=False
    )


def _failures(result) -> str:
    return "\n".join(e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure)


def test_stray_old_day_hole_is_recorded_in_gaps_and_candle_checks_pass(stray_day):
    assert stray_day["old"].success and stray_day["recent"].success
    checks = stray_day["recent"].get_asset_check_evaluations()
    assert {c.check_name for c in checks} >= {"missing_unrecorded", "holes_unrecorded"}
    assert all(c.passed for c in checks)
    gaps = stray_day["wh"].query(
        "SELECT symbol, gap_start, gap_end, missing FROM market.gaps WHERE NOT filled AND timeframe = '1h' ORDER BY symbol"
    )
    assert gaps.height == 5  # every downloaded market
    assert set(gaps.select("gap_start", "gap_end", "missing").rows()) == {(HOLE_START, HOLE_END, HOLE_1H)}


def test_stray_old_day_backtest_fails_naming_the_hole_and_writes_no_run(stray_day):
    with dg.instance_for_test() as instance:
        result = _backtest(stray_day["defs"], instance)
    assert not result.success
    message = _failures(result)
    assert "DataError" in message
    assert (
        f"sim:BTC/USDT:1h from {HOLE_START:%Y-%m-%d} 00:00 to {HOLE_END:%Y-%m-%d} 23:00 UTC ({HOLE_1H} missing candles)"
        in message
    )
    signals_checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert signals_checks == {"no_lookahead": True, "signals_match_candles": True}
    assert stray_day["wh"].query("SELECT count(*) AS n FROM backtest.runs")["n"][0] == 0


def test_stray_old_day_accepted_holes_backtest_runs_with_checks_naming_them(stray_day, sim):
    from pipelines.definitions import build_defs

    defs = build_defs(stray_day["tmp"], config=_config(accept_holes=True), sim_url=sim.url)
    with dg.instance_for_test() as instance:
        result = _backtest(defs, instance)
    assert result.success, _failures(result)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations() if c.asset_key == dg.AssetKey("backtests")}
    assert set(checks) == {"no_unaccepted_holes", "signals_match_candles", "costs_on"}
    assert all(c.passed for c in checks.values())
    meta = checks["no_unaccepted_holes"].metadata
    assert meta["holes"].value == 3 and meta["hole_candles"].value == 3 * HOLE_1H and meta["accept_holes"].value is True


def test_stray_old_day_rerun_of_either_run_gives_identical_tables(stray_day):
    wh, defs = stray_day["wh"], stray_day["defs"]
    holes = "SELECT count(*) AS n FROM market.gaps WHERE NOT filled"
    assert wh.query(holes)["n"][0] == 5 + 2  # each downloaded market, and BTC/USDT's 4h and 1d resamples
    before = {t: wh.table_hash(t, k) for t, k in TABLE_KEYS.items()}
    assert run_job(defs, "daily_data_job", RECENT).success
    assert run_job(defs, "daily_data_job", [OLD_DAY]).success
    assert {t: wh.table_hash(t, k) for t, k in TABLE_KEYS.items()} == before
    assert wh.query(holes)["n"][0] == 7
