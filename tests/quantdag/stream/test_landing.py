"""The landing area: atomic appends, keyed idempotent ingestion with lineage, nothing moved before the commit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from quantdag.errors import DataError
from quantdag.store import Warehouse
from quantdag.stream.landing import ingest, pending, write_batch

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def _candles(minutes, source="stream", price=100.0, received=None):
    return pl.DataFrame([{
        "exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1m", "ts": T0 + timedelta(minutes=m), "open": price,
        "high": price + 1, "low": price - 1, "close": price + 0.5, "volume": 2.0, "source": source,
        "received_at": received or (T0 + timedelta(minutes=m + 1, seconds=1)),
    } for m in minutes]).with_columns(pl.col("ts", "received_at").cast(pl.Datetime("ms", "UTC")))  # fmt: skip


def test_ingest_moves_closed_candles_into_market_candles_with_their_session(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    write_batch(tmp_path / "landing", _candles(range(3)), session="s1")
    write_batch(tmp_path / "landing", _candles([3, 4], source="backfill"), session="s1")
    rep = ingest(wh, tmp_path / "landing")
    assert rep.files == 2 and rep.candles == 5 and rep.by_market == {"BTC/USDT:1m": 5}
    got = wh.query("SELECT ts, close, filled FROM market.candles WHERE timeframe = '1m' ORDER BY ts")
    assert got.height == 5 and not got["filled"].any()
    lineage = wh.query("SELECT session, source FROM market.stream_candles ORDER BY ts")
    assert lineage["session"].to_list() == ["s1"] * 5 and lineage["source"].to_list() == ["stream"] * 3 + ["backfill"] * 2
    assert pending(tmp_path / "landing") == []


def test_a_minute_delivered_twice_is_stored_once_the_latest_copy_winning_and_reingesting_changes_nothing(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    root = tmp_path / "landing"
    write_batch(root, _candles([0, 1], price=100.0), session="s1")
    write_batch(root, _candles([1], source="backfill", price=101.0, received=T0 + timedelta(minutes=5)), session="s2")
    ingest(wh, root)
    before = wh.table_hash("market.candles", ("exchange", "symbol", "timeframe", "ts"))
    rows = wh.query("SELECT ts, open FROM market.candles ORDER BY ts")
    assert rows["open"].to_list() == [100.0, 101.0]
    # the same files again (e.g. copied back by hand): keyed replace, same table
    for f in (root / "candles" / "done").glob("*.parquet"):
        f.rename(root / "candles" / f.name)
    ingest(wh, root)
    assert wh.table_hash("market.candles", ("exchange", "symbol", "timeframe", "ts")) == before


def test_bad_batches_are_refused_naming_the_problem_and_a_failed_ingest_moves_no_file(tmp_path):
    root = tmp_path / "landing"
    with pytest.raises(DataError, match="source"):
        write_batch(root, _candles([0], source="guess"), session="s1")
    with pytest.raises(DataError, match="missing"):
        write_batch(root, _candles([0]).drop("close"), session="s1")
    write_batch(root, _candles([0]), session="s1")
    wh = Warehouse(tmp_path / "q.duckdb")
    wh.ensure_schema()
    with wh.transaction() as con:  # a table the ingest cannot write: the transaction fails, files stay
        con.execute("DROP TABLE market.stream_candles")
        con.execute("CREATE TABLE market.stream_candles (x INTEGER)")
    with pytest.raises(Exception):
        ingest(wh, root)
    assert len(pending(root)) == 1 and wh.query("SELECT count(*) AS n FROM market.candles")["n"][0] == 0
