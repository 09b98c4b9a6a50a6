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


def _trades(ids, source="stream"):
    return pl.DataFrame([{"exchange": "sim", "symbol": "BTC/USDT", "id": i, "ts": T0 + timedelta(milliseconds=10 * i),
                          "price": 100.0 + i, "amount": 0.1, "side": "buy", "source": source, "received_at": T0}
                         for i in ids]).with_columns(pl.col("ts", "received_at").cast(pl.Datetime("ms", "UTC")))  # fmt: skip


def _event(kind="reconnect", channel="ohlcv", first=None):
    return pl.DataFrame([{"exchange": "sim", "symbol": "*", "channel": channel, "kind": kind, "first_ts": first,
                          "last_ts": first, "count": 1, "detail": "silence", "seen_at": T0}],
                        schema_overrides={"first_ts": pl.Datetime("ms", "UTC"), "last_ts": pl.Datetime("ms", "UTC"),
                                          "seen_at": pl.Datetime("ms", "UTC")})  # fmt: skip


def test_trades_and_events_are_stored_once_whatever_overlaps_and_reingests(tmp_path):
    wh, root = Warehouse(tmp_path / "q.duckdb"), tmp_path / "landing"
    write_batch(root, _trades(range(0, 5)), session="s1", kind="trades")
    write_batch(root, _trades(range(3, 8), source="backfill"), session="s1", kind="trades")  # ids 3, 4 twice
    write_batch(root, _event(), session="s1", kind="events")  # a reconnect: no first_ts (NULL)
    rep = ingest(wh, root)
    assert rep.rows == {"trades": 8, "events": 1} and rep.candles == 0  # ids 3 and 4 once
    assert wh.query("SELECT list(id ORDER BY id) AS ids FROM market.trades")["ids"][0].to_list() == list(range(8))
    for kind in ("trades", "events"):  # the same files again: nothing new
        for f in (root / kind / "done").glob("*.parquet"):
            f.rename(root / kind / f.name)
    ingest(wh, root)
    assert wh.query("SELECT count(*) AS n FROM market.trades")["n"][0] == 8
    assert wh.query("SELECT count(*) AS n FROM market.stream_events")["n"][0] == 1


def test_a_batch_of_an_unknown_kind_channel_or_event_is_refused_naming_it(tmp_path):
    with pytest.raises(DataError, match="kind 'quotes'"):
        write_batch(tmp_path, _trades([1]), session="s", kind="quotes")
    with pytest.raises(DataError, match="channel 'tape'"):
        write_batch(tmp_path, _event(channel="tape"), session="s", kind="events")
    with pytest.raises(DataError, match="kind 'synthetic'"):
        write_batch(tmp_path, _event(kind="synthetic"), session="s", kind="events")
    assert pending(tmp_path) == []


def test_ticks_older_than_their_retention_are_pruned_with_their_landing_files_candles_never(tmp_path):
    import os

    from quantdag.stages.stream import ingest_landing
    from quantdag.stream.landing import prune

    wh, root = Warehouse(tmp_path / "q.duckdb"), tmp_path / "landing"
    write_batch(root, _candles(range(3)), session="s1")
    write_batch(root, _trades(range(0, 6)), session="s1", kind="trades")  # trades at T0 + 10 ms x id
    old = ingest_landing(wh, root)
    done = list((root / "trades" / "done").glob("*.parquet"))
    os.utime(done[0], (T0.timestamp(), T0.timestamp()))  # ingested long ago
    # seven days after T0 + 25 ms: trades 0..2 are older than a week, 3..5 are not
    now = T0 + timedelta(days=7, milliseconds=25)
    assert prune(wh, root, {"trades": 7, "book": None}, now=now) == {"trades": 3}  # a kind kept forever keeps the files
    assert wh.query("SELECT list(id ORDER BY id) AS ids FROM market.trades")["ids"][0].to_list() == [3, 4, 5]
    assert prune(wh, root, {"trades": 7, "book": 7}, now=now) == {"trades": 0, "book": 0, "files": 1}
    assert not done[0].exists() and wh.query("SELECT count(*) AS n FROM market.candles")["n"][0] == 3 == old.candles
    assert ingest_landing(wh, root, retention={"trades": 1, "book": 1}).pruned["trades"] == 3  # the asset's path: all old now
