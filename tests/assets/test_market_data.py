"""The market-data assets end to end: real ccxt over HTTP to the simulator, a real DuckDB file."""

from __future__ import annotations


from quantdag.config import load_config
from quantdag.store import Warehouse
from pipeline_helpers import recent_days, run_job

UNIVERSE = load_config().markets

KEY = ("exchange", "symbol", "timeframe", "ts")
TABLE_KEYS = {
    "raw.candles": ("exchange", "symbol", "timeframe", "ts", "fetched_at"),
    "market.candles": KEY,
    "market.gaps": ("exchange", "symbol", "timeframe", "gap_start"),
    "features.indicators": KEY,
}


def _wh(defs) -> Warehouse:
    return defs.resources["warehouse"].get()


def test_daily_data_job_builds_every_table_for_every_market(defs):
    days = recent_days(3)
    result = run_job(defs, "daily_data_job", days)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    wh = _wh(defs)
    counts = wh.query("SELECT symbol, timeframe, count(*) AS n FROM market.candles GROUP BY ALL")
    got = {(r["symbol"], r["timeframe"]): r["n"] for r in counts.iter_rows(named=True)}
    per_day = {"1h": 24, "4h": 6, "1d": 1}
    for m in UNIVERSE:
        assert got[(m.symbol, m.timeframe)] == 3 * per_day[m.timeframe], m.key
    ind = wh.query("SELECT count(*) AS n, count(rsi_14) AS rsi, count(adx_14) AS adx FROM features.indicators WHERE timeframe = '1h'")
    assert ind["n"][0] == 5 * 3 * 24
    # no look-back for the first day of history here, so only its first candles may be NULL
    assert ind["rsi"][0] >= ind["n"][0] - 5 * 15


def test_daily_data_job_rerun_gives_identical_tables(defs):
    days = recent_days(2)
    assert run_job(defs, "daily_data_job", days).success
    wh = _wh(defs)
    before = {t: wh.table_hash(t, k) for t, k in TABLE_KEYS.items()}
    assert run_job(defs, "daily_data_job", days).success
    after = {t: wh.table_hash(t, k) for t, k in TABLE_KEYS.items()}
    assert after == before


def test_indicators_first_candle_of_day_is_warm_from_lookback(defs):
    days = recent_days(4)
    assert run_job(defs, "daily_data_job", days).success
    wh = _wh(defs)
    last_day = wh.query(
        "SELECT * FROM features.indicators WHERE symbol = 'BTC/USDT' AND timeframe = '1h' AND ts >= ?::TIMESTAMPTZ ORDER BY ts LIMIT 1",
        [days[-1]],
    )
    row = last_day.row(0, named=True)
    for col in ("sma_50", "ema_26", "rsi_14", "macd_signal", "bb_upper", "atr_14", "adx_14"):
        assert row[col] is not None, col


def test_market_events_runs_over_the_days_candles(defs):
    days = recent_days(3)
    assert run_job(defs, "daily_data_job", days).success
    assert run_job(defs, "events_job", days).success
    wh = _wh(defs)
    events = wh.read("market.events")
    assert set(events.columns) >= {"event_type", "severity", "score", "ts_start", "ts_end"}
    if events.height:
        assert events["severity"].is_in(["info", "warning", "critical"]).all()
