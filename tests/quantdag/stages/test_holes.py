"""Holes between stored days: recorded in market.gaps, idempotent, checked, refused by backtests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from quantdag.backtest import BacktestSettings
from quantdag.errors import DataError
from quantdag.exchange import ExchangeClient, ExchangeConfig, RetryPolicy
from quantdag.markets import Market
from quantdag.stages.backtests import run_backtests, store_backtests
from quantdag.stages.backtests import check_backtests
from quantdag.stages.signals import check_signals
from quantdag.stages.market_data import check_candles, ingest_raw, normalize_candles
from quantdag.stages.signals import build_signals
from quantdag.store import Warehouse
from quantdag.strategies import create_strategy
from quantdag.strategies.keys import param_set_key

DAY, HOUR = timedelta(days=1), timedelta(hours=1)
M1H = Market("sim", "BTC/USDT", "1h")
M4H = Market("sim", "BTC/USDT", "4h", resample_from="1h")
CANDLE_KEY = ("exchange", "symbol", "timeframe", "ts")
GAP_KEY = ("exchange", "symbol", "timeframe", "gap_start")
END = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - DAY
OLD = (END - 40 * DAY, END - 39 * DAY)  # the stray old day
RECENT = (END - 3 * DAY, END)
MIDDLE = (OLD[1], RECENT[0])  # the hole: 36 days
HOLE_1H = 36 * 24
STRATEGY = create_strategy("sma_cross", {"fast": 5, "slow": 20})
KEY = param_set_key(STRATEGY)


@pytest.fixture
def client(sim):
    sim.faults = None
    return ExchangeClient(ExchangeConfig(venue="sim", api_url=sim.api_url, timeout_ms=2000,
                                         retry=RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02)))


def _materialize(wh: Warehouse, client: ExchangeClient, *windows) -> None:
    """raw_candles then candles of the 1h market and its 4h resample, one run over ``windows``."""
    ingest_raw(wh, client, {M1H: list(windows)})
    normalize_candles(wh, {M1H: list(windows), M4H: list(windows)})


def _hashes(wh: Warehouse) -> dict[str, str]:
    return {"candles": wh.table_hash("market.candles", CANDLE_KEY), "gaps": wh.table_hash("market.gaps", GAP_KEY)}


def _unfilled(wh: Warehouse, timeframe: str = "1h") -> list[tuple]:
    return wh.query(
        "SELECT gap_start, gap_end, missing FROM market.gaps WHERE NOT filled AND timeframe = ? ORDER BY gap_start",
        [timeframe],
    ).rows()


def test_normalize_stray_old_day_then_recent_days_records_hole_in_gaps(tmp_path, client):
    wh = Warehouse(tmp_path / "q.duckdb")
    _materialize(wh, client, OLD)
    _materialize(wh, client, RECENT)
    assert _unfilled(wh, "1h") == [(OLD[1], RECENT[0] - HOUR, HOLE_1H)]
    assert _unfilled(wh, "4h") == [(OLD[1], RECENT[0] - 4 * HOUR, HOLE_1H // 4)]
    assert wh.query("SELECT count(*) AS n FROM market.candles WHERE filled")["n"][0] == 0


def test_normalize_hole_rows_same_whatever_order_and_on_rerun_of_any_window(tmp_path, client):
    a, b = Warehouse(tmp_path / "a.duckdb"), Warehouse(tmp_path / "b.duckdb")
    _materialize(a, client, OLD)
    _materialize(a, client, RECENT)
    _materialize(b, client, RECENT)
    _materialize(b, client, OLD)
    assert _unfilled(a) == _unfilled(b) == [(OLD[1], RECENT[0] - HOUR, HOLE_1H)]
    assert _hashes(a) == _hashes(b)
    before = _hashes(a)
    _materialize(a, client, RECENT)
    _materialize(a, client, OLD)
    _materialize(a, client, OLD, RECENT)  # one run over both windows
    assert _hashes(a) == before


def test_normalize_backfill_of_missing_days_removes_hole_and_matches_one_contiguous_run(tmp_path, client):
    a, b = Warehouse(tmp_path / "a.duckdb"), Warehouse(tmp_path / "b.duckdb")
    _materialize(a, client, OLD)
    _materialize(a, client, RECENT)
    assert _unfilled(a) == [(OLD[1], RECENT[0] - HOUR, HOLE_1H)]
    _materialize(a, client, MIDDLE)
    _materialize(b, client, (OLD[0], RECENT[1]))
    assert _unfilled(a, "1h") == _unfilled(a, "4h") == []
    assert _hashes(a) == _hashes(b)


def test_normalize_partial_backfill_splits_hole_in_two(tmp_path, client):
    wh = Warehouse(tmp_path / "q.duckdb")
    _materialize(wh, client, OLD)
    _materialize(wh, client, RECENT)
    day = (OLD[1] + 10 * DAY, OLD[1] + 11 * DAY)
    _materialize(wh, client, day)
    assert _unfilled(wh, "1h") == [(OLD[1], day[0] - HOUR, 240), (day[1], RECENT[0] - HOUR, HOLE_1H - 264)]


def test_normalize_missing_first_candles_after_hole_join_it_instead_of_stale_close_fill(tmp_path, client):
    a, b = Warehouse(tmp_path / "a.duckdb"), Warehouse(tmp_path / "b.duckdb")
    for wh in (a, b):  # the exchange has nothing for the first three hours after the hole
        ingest_raw(wh, client, {M1H: [OLD, RECENT]})
        with wh.transaction() as con:
            con.execute("DELETE FROM raw.candles WHERE ts >= ? AND ts < ?",
                        [int(RECENT[0].timestamp() * 1000), int((RECENT[0] + 3 * HOUR).timestamp() * 1000)])
    for w in (OLD, RECENT):
        normalize_candles(a, {M1H: [w]})
    for w in (RECENT, OLD):
        normalize_candles(b, {M1H: [w]})
    assert _unfilled(a) == [(OLD[1], RECENT[0] + 2 * HOUR, HOLE_1H + 3)]
    assert a.query("SELECT count(*) AS n FROM market.candles WHERE filled")["n"][0] == 0
    assert _hashes(a) == _hashes(b)
    # the hole reaches into the recent window: its missing candles are recorded, not unrecorded
    checks = check_candles(a, {M1H: [OLD, RECENT]})
    assert checks["missing_unrecorded"] == 0 and checks["holes_unrecorded"] == 0


def test_check_candles_unrecorded_hole_counts_its_missing_candles(tmp_path, client):
    wh = Warehouse(tmp_path / "q.duckdb")
    _materialize(wh, client, OLD)
    _materialize(wh, client, RECENT)
    windows = {M1H: [OLD, RECENT], M4H: [OLD, RECENT]}
    assert set(check_candles(wh, windows).values()) == {0}
    with wh.transaction() as con:  # a warehouse written before holes were recorded
        con.execute("DELETE FROM market.gaps WHERE NOT filled")
    checks = check_candles(wh, windows)
    assert checks["holes_unrecorded"] == HOLE_1H + HOLE_1H // 4
    assert checks["missing_unrecorded"] == 0  # no window of its own holds the hole


def _with_signals(wh: Warehouse, client: ExchangeClient) -> None:
    _materialize(wh, client, OLD)
    _materialize(wh, client, RECENT)
    build_signals(wh, KEY, [M1H], configured={KEY: STRATEGY})


def test_run_backtests_hole_raises_data_error_naming_market_range_and_count(tmp_path, client):
    wh = Warehouse(tmp_path / "q.duckdb")
    _with_signals(wh, client)
    expected = (
        f"sim:BTC/USDT:1h from {OLD[1]:%Y-%m-%d} 00:00 to {RECENT[0] - DAY:%Y-%m-%d} 23:00 UTC "
        f"({HOLE_1H} missing candles)"
    )
    with pytest.raises(DataError) as err:
        run_backtests(wh, KEY, [M1H])
    assert expected in str(err.value) and "accept_holes" in str(err.value)


def test_run_backtests_accept_holes_backtests_across_it_and_check_says_accepted(tmp_path, client):
    wh = Warehouse(tmp_path / "q.duckdb")
    _with_signals(wh, client)
    outcomes = run_backtests(wh, KEY, [M1H], accept_holes=True)
    assert [o.n_candles for o in outcomes] == [24 + 72]
    store_backtests(wh, KEY, outcomes, [M1H])
    accepted = check_backtests(wh, KEY, [M1H], accept_holes=True)
    assert accepted["no_unaccepted_holes"].passed
    assert accepted["no_unaccepted_holes"].metadata == {"holes": 1, "hole_candles": HOLE_1H, "accept_holes": True}
    assert not check_backtests(wh, KEY, [M1H])["no_unaccepted_holes"].passed
    assert check_backtests(wh, KEY, [M1H])["signals_match_candles"].passed


def test_check_backtests_zero_fee_runs_fail_costs_on_unless_configured(tmp_path, client):
    wh = Warehouse(tmp_path / "q.duckdb")
    _materialize(wh, client, RECENT)
    build_signals(wh, KEY, [M1H], configured={KEY: STRATEGY})
    store_backtests(wh, KEY, run_backtests(wh, KEY, [M1H]), [M1H])
    assert check_backtests(wh, KEY, [M1H])["costs_on"].passed
    free = BacktestSettings(fee=0.0)
    store_backtests(wh, KEY, run_backtests(wh, KEY, [M1H], free), [M1H])
    verdict = check_backtests(wh, KEY, [M1H])["costs_on"]
    assert not verdict.passed and verdict.metadata["zero_cost_runs"] == 1
    assert check_backtests(wh, KEY, [M1H], settings=free)["costs_on"].passed


def test_check_signals_candles_stored_after_signals_fail_signals_match_candles(tmp_path, client):
    wh = Warehouse(tmp_path / "q.duckdb")
    _materialize(wh, client, (RECENT[0], RECENT[1] - DAY))
    build_signals(wh, KEY, [M1H], configured={KEY: STRATEGY})
    assert check_signals(wh, KEY, [M1H])["signals_match_candles"].passed
    _materialize(wh, client, (RECENT[1] - DAY, RECENT[1]))
    verdict = check_signals(wh, KEY, [M1H])["signals_match_candles"]
    assert not verdict.passed
    assert verdict.metadata["candles_without_one_signal"] == 24 and verdict.metadata["signal_rows"] == 48
    assert check_signals(wh, KEY, [M1H], signals_withheld=True)["signals_match_candles"].passed
