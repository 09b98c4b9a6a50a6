from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone

import polars as pl
import pytest

from quantdag.errors import ConfigurationError, DataError
from quantdag.store import Slice, Warehouse, WarehouseLocked

UTC = timezone.utc


def _candles(symbol: str, hours: range, *, shuffle_columns: bool = False) -> pl.DataFrame:
    n = len(hours)
    df = pl.DataFrame(
        {
            "exchange": ["sim"] * n,
            "symbol": [symbol] * n,
            "timeframe": ["1h"] * n,
            "ts": pl.Series([h * 3_600_000 for h in hours]).cast(pl.Datetime("ms", "UTC")),
            "open": [100.0 + h for h in hours],
            "high": [101.0 + h for h in hours],
            "low": [99.0 + h for h in hours],
            "close": [100.5 + h for h in hours],
            "volume": [10.0] * n,
            "filled": [False] * n,
        }
    )
    return df.select(list(reversed(df.columns))) if shuffle_columns else df


def _day(symbol: str, day: int) -> Slice:
    return Slice(
        where={"exchange": "sim", "symbol": symbol, "timeframe": "1h"},
        start=datetime(1970, 1, 1 + day, tzinfo=UTC),
        end=datetime(1970, 1, 2 + day, tzinfo=UTC),
    )


KEY = ("exchange", "symbol", "timeframe", "ts")


def test_warehouse_fresh_file_creates_every_stage_schema(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    wh.ensure_schema()
    tables = wh.query("SELECT table_schema || '.' || table_name AS t FROM information_schema.tables")["t"].to_list()
    for table in ("raw.candles", "market.candles", "market.gaps", "market.events", "features.indicators"):
        assert table in tables


def test_replace_rerun_of_same_slice_gives_identical_table(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    wh.replace_slices("market.candles", _candles("BTC/USDT", range(0, 24)), [_day("BTC/USDT", 0)], order_by=KEY)
    wh.replace_slices("market.candles", _candles("ETH/USDT", range(0, 24)), [_day("ETH/USDT", 0)], order_by=KEY)
    first = wh.table_hash("market.candles", KEY)
    wh.replace_slices("market.candles", _candles("BTC/USDT", range(0, 24)), [_day("BTC/USDT", 0)], order_by=KEY)
    assert wh.table_hash("market.candles", KEY) == first
    assert wh.query("SELECT count(*) AS n FROM market.candles")["n"][0] == 48


def test_replace_columns_in_any_order_insert_by_name(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    wh.replace_slices("market.candles", _candles("BTC/USDT", range(0, 3), shuffle_columns=True), [_day("BTC/USDT", 0)])
    back = wh.read("market.candles", order_by=["ts"])
    assert back["open"].to_list() == [100.0, 101.0, 102.0]
    assert back["high"].to_list() == [101.0, 102.0, 103.0]
    assert back.schema["ts"] == pl.Datetime("ms", "UTC")


def test_replace_row_outside_slice_raises_and_writes_nothing(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    wh.replace_slices("market.candles", _candles("BTC/USDT", range(0, 24)), [_day("BTC/USDT", 0)])
    before = wh.table_hash("market.candles", KEY)
    with pytest.raises(DataError, match="outside the slice"):
        wh.replace_slices("market.candles", _candles("BTC/USDT", range(20, 30)), [_day("BTC/USDT", 0)])
    assert wh.table_hash("market.candles", KEY) == before


def test_transaction_failure_in_second_table_rolls_back_first(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    wh.replace_slices("market.candles", _candles("BTC/USDT", range(0, 24)), [_day("BTC/USDT", 0)])
    before = wh.table_hash("market.candles", KEY)
    bad_gaps = pl.DataFrame({"exchange": ["sim"], "symbol": ["BTC/USDT"], "no_such_column": [1]})
    with pytest.raises(DataError, match="does not fit market.gaps"):
        with wh.transaction() as con:
            Warehouse.replace(con, "market.candles", _candles("BTC/USDT", range(0, 5)), [_day("BTC/USDT", 0)])
            Warehouse.replace(con, "market.gaps", bad_gaps, [Slice(where={"exchange": "sim"}, time_column=None)])
    assert wh.table_hash("market.candles", KEY) == before


def test_warehouse_stem_equal_to_schema_name_is_rejected(tmp_path):
    with pytest.raises(ConfigurationError, match="'market'"):
        Warehouse(tmp_path / "market.duckdb")


def test_read_only_missing_file_raises_naming_path(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        Warehouse(tmp_path / "nope.duckdb", read_only=True).read("market.candles")


def test_second_writer_process_gets_bounded_lock_error_and_corrupts_nothing(tmp_path):
    path = tmp_path / "q.duckdb"
    wh = Warehouse(path, lock_timeout=1.0)
    wh.replace_slices("market.candles", _candles("BTC/USDT", range(0, 24)), [_day("BTC/USDT", 0)])
    before = wh.table_hash("market.candles", KEY)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(path)!r})
            print("locked", flush=True)
            time.sleep(30)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        with pytest.raises(WarehouseLocked, match="locked by another process"):
            wh.replace_slices("market.candles", _candles("BTC/USDT", range(0, 5)), [_day("BTC/USDT", 0)])
        assert time.monotonic() - t0 < 10
    finally:
        holder.kill()
        holder.wait()
    assert wh.table_hash("market.candles", KEY) == before


def test_raw_slice_on_epoch_ms_column_deletes_only_its_window(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    raw = pl.DataFrame(
        {
            "exchange": ["sim"] * 4, "symbol": ["BTC/USDT"] * 4, "timeframe": ["1h"] * 4,
            "ts": [0, 3_600_000, 86_400_000, 90_000_000],
            "open": [1.0] * 4, "high": [1.0] * 4, "low": [1.0] * 4, "close": [1.0] * 4, "volume": [1.0] * 4,
            "fetched_at": pl.Series([100_000_000] * 4).cast(pl.Datetime("ms", "UTC")),
        }
    )
    everything = Slice(where={"symbol": "BTC/USDT"}, epoch_ms=True, start=0, end=2 * 86_400_000)
    wh.replace_slices("raw.candles", raw, [everything])
    day0 = Slice(where={"symbol": "BTC/USDT"}, epoch_ms=True, start=datetime(1970, 1, 1), end=datetime(1970, 1, 2))
    wh.replace_slices("raw.candles", raw.head(1), [day0])
    assert wh.read("raw.candles", order_by=["ts"])["ts"].to_list() == [0, 86_400_000, 90_000_000]
