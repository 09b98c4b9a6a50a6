"""The market-data stages over a real DuckDB file and the simulator: atomic, idempotent, typed errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from quantdag.errors import DataError, ExchangeError
from quantdag.exchange import ExchangeClient, ExchangeConfig, RetryPolicy
from quantdag.markets import Market
from quantdag.stages.indicators import build_indicators
from quantdag.stages.market_data import ingest_raw, normalize_candles
from quantdag.sim import Fault, FaultPlan
from quantdag.store import Slice, Warehouse

DAY = timedelta(days=1)
MARKETS = [Market("sim", s, "1h") for s in ("BTC/USDT", "ETH/USDT", "SOL/USDT")]
RAW_KEY = ("exchange", "symbol", "timeframe", "ts", "fetched_at")


def _window(days: int = 2):
    end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - DAY
    return end - days * DAY, end


@pytest.fixture
def client(sim):
    sim.faults = None
    yield ExchangeClient(ExchangeConfig(venue="sim", api_url=sim.api_url, timeout_ms=1000,
                                        retry=RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02)))
    sim.faults = None


def test_ingest_fault_on_a_later_market_writes_no_rows_for_any_market(tmp_path, client, sim):
    wh = Warehouse(tmp_path / "q.duckdb")
    w = _window()
    wins = {m: [w] for m in MARKETS}
    # the first market's pages succeed, then every page is garbage
    sim.faults = FaultPlan(random=[Fault("malformed_json", probability=1.0, path="/api/v3/klines")])
    calls = {"n": 0}
    real_fetch = client.fetch_candles

    def first_ok_then_faults(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            saved, sim.faults = sim.faults, None
            try:
                return real_fetch(*args, **kwargs)
            finally:
                sim.faults = saved
        return real_fetch(*args, **kwargs)

    client.fetch_candles = first_ok_then_faults
    with pytest.raises(ExchangeError, match="mid-JSON"):  # truncated bodies are retried per request, then give up
        ingest_raw(wh, client, wins)
    assert calls["n"] == 2  # one market fetched fine before the failure
    assert wh.query("SELECT count(*) AS n FROM raw.candles")["n"][0] == 0
    sim.faults = None
    client.fetch_candles = real_fetch
    report = ingest_raw(wh, client, wins)
    assert report.rows_written == 3 * 48


def test_ingest_rerun_of_complete_days_fetches_nothing_and_keeps_table(tmp_path, client, sim):
    wh = Warehouse(tmp_path / "q.duckdb")
    wins = {m: [_window()] for m in MARKETS}
    ingest_raw(wh, client, wins)
    before = wh.table_hash("raw.candles", RAW_KEY)
    seq = sim.last_seq
    report = ingest_raw(wh, client, wins)
    assert not [r for r in sim.requests_since(seq) if r.path == "/api/v3/klines"]
    assert all(c["fetched"] == 0 for c in report.per_market.values())
    assert wh.table_hash("raw.candles", RAW_KEY) == before


def test_normalize_hostile_ohlc_in_one_market_raises_naming_it_and_writes_nothing(tmp_path, client):
    wh = Warehouse(tmp_path / "q.duckdb")
    w = _window()
    wins = {m: [w] for m in MARKETS}
    ingest_raw(wh, client, wins)
    normalize_candles(wh, wins)
    before = wh.table_hash("market.candles", ("exchange", "symbol", "timeframe", "ts"))
    # a later fetch of one SOL candle comes back with high below low
    bad = wh.read("raw.candles", [Slice(where={"symbol": "SOL/USDT"}, epoch_ms=True, start=w[0], end=w[1])]).head(1)
    bad = bad.with_columns(pl.col("low") + 1e6, pl.col("fetched_at") + timedelta(hours=1))
    with wh.transaction() as con:
        con.register("bad", bad)
        con.execute("INSERT INTO raw.candles BY NAME SELECT * FROM bad")
    with pytest.raises(DataError, match="SOL/USDT"):
        normalize_candles(wh, wins)
    assert wh.table_hash("market.candles", ("exchange", "symbol", "timeframe", "ts")) == before


def test_indicators_without_candles_write_nothing_and_do_not_fail(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    report = build_indicators(wh, {MARKETS[0]: [_window()]})
    assert report.rows_written == 0


def test_normalize_failing_check_rolls_back_so_the_run_writes_no_rows(tmp_path, client):
    """The checks run before the commit: judged 'unclosed' (checked at the window's start), nothing stays."""
    from quantdag.stages.market_data import CandleChecksFailed

    wh = Warehouse(tmp_path / "q.duckdb")
    w = _window()
    wins = {m: [w] for m in MARKETS}
    ingest_raw(wh, client, wins)
    with pytest.raises(CandleChecksFailed, match=r"nothing written: unclosed=\d+") as err:
        normalize_candles(wh, wins, checked_at=w[0])
    assert err.value.violations["unclosed"] == 3 * 48
    assert wh.query("SELECT count(*) AS n FROM market.candles")["n"][0] == 0
    assert wh.query("SELECT count(*) AS n FROM market.gaps")["n"][0] == 0
    report = normalize_candles(wh, wins)  # the same run, judged now: all checks zero, rows written
    assert not any(report.violations.values()) and report.rows_written == 3 * 48


def test_ingest_candles_missing_from_pages_are_refetched_and_the_next_run_heals_them_all(tmp_path, client, sim):
    """50 % of a page's interior candles lost on every fetch of run 1; run 2 (exchange healthy) heals them."""
    from quantdag.stages.market_data import pending_refetch_days

    w = _window()
    wins = {m: [w] for m in MARKETS}
    clean = Warehouse(tmp_path / "clean.duckdb")
    ingest_raw(clean, client, wins)
    normalize_candles(clean, wins)

    wh = Warehouse(tmp_path / "q.duckdb")
    sim.inject("missing_candles", count=1000, fraction=0.5, path="/api/v3/klines")
    try:
        first = ingest_raw(wh, client, wins)
    finally:
        sim.faults = None
    normalize_candles(wh, wins)
    filled = wh.query("SELECT count(*) AS n FROM market.candles WHERE filled")["n"][0]
    assert filled > 0 and sum(c.get("refetch_pending", 0) for c in first.per_market.values()) > 0
    assert set(pending_refetch_days(wh, MARKETS)) == set(MARKETS)

    second = ingest_raw(wh, client, wins)  # a re-run of the same partitions: the gaps are asked for again
    normalize_candles(wh, wins)
    # interior gaps come back through raw.refetches, trailing ones through the usual resume after the last candle
    assert 0 < sum(c["refetched"] for c in second.per_market.values()) <= filled
    assert wh.query("SELECT count(*) AS n FROM raw.refetches")["n"][0] == 0 and pending_refetch_days(wh, MARKETS) == {}
    key = ("exchange", "symbol", "timeframe", "ts")
    assert wh.table_hash("market.candles", key) == clean.table_hash("market.candles", key)


def test_ingest_gap_the_exchange_confirms_is_accepted_after_the_bounded_refetches(tmp_path, client, sim):
    """The first page loses candles, then the exchange answers every re-fetch with nothing: 2 tries, then accepted."""
    from quantdag.stages.market_data import pending_refetch_days

    w = _window(1)
    wins = {MARKETS[0]: [w]}
    wh = Warehouse(tmp_path / "q.duckdb")
    sim.inject("missing_candles", count=1, fraction=0.5, path="/api/v3/klines")
    sim.inject("empty_page", count=100_000, path="/api/v3/klines")
    try:
        for _ in range(3):
            ingest_raw(wh, client, wins, max_refetches=2)
        row = wh.query("SELECT max(attempts) AS a, min(attempts) AS lo, count(*) AS n FROM raw.refetches").row(0, named=True)
        assert row["n"] > 0 and row["a"] == row["lo"] == 2  # never more than the bound
        assert pending_refetch_days(wh, [MARKETS[0]], max_refetches=2) == {}
        before = len(sim.requests)
        ingest_raw(wh, client, wins, max_refetches=2)
        assert len(sim.requests) == before  # accepted as a real gap: not asked for again
    finally:
        sim.faults = None


def test_uncovered_days_names_days_where_a_configured_market_has_no_candle(tmp_path):
    """A day partition covers every market: a market added later finds its days missing in the warehouse."""
    from quantdag.markets import Market
    from quantdag.stages.market_data import uncovered_days

    wh = Warehouse(tmp_path / "q.duckdb")
    a, b = Market("sim", "A/USDT", "1h"), Market("sim", "B/USDT", "1h")
    rows = pl.DataFrame({"exchange": "sim", "symbol": "A/USDT", "timeframe": "1h",
                         "ts": [datetime(2026, 1, d, 5, tzinfo=timezone.utc) for d in (1, 2, 3)],
                         "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0, "filled": False},
                        schema_overrides={"ts": pl.Datetime("ms", "UTC")})  # fmt: skip
    with wh.transaction() as con:
        Warehouse.replace(con, "market.candles", rows, [Slice(where=a.where, time_column=None)])
    days = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    assert uncovered_days(wh, [a], days) == ["2026-01-04"]
    assert uncovered_days(wh, [a, b], days) == days
    assert uncovered_days(wh, [a], []) == []
