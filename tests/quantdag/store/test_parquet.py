"""Heavy outputs as Parquet files behind DuckDB views (warehouse.outputs: parquet)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from quantdag.store import Slice, Warehouse

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
KEY = {"strategy": "s", "params_hash": "h1", "exchange": "sim", "symbol": "BTC/USDT", "timeframe": "1h"}


def _equity(n: int, params_hash: str = "h1", scale: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame({**{k: [v] * n for k, v in {**KEY, "params_hash": params_hash}.items()},
                         "ts": [T0 + timedelta(hours=i) for i in range(n)], "equity": [scale * (1000.0 + i) for i in range(n)],
                         "cash": [0.0] * n, "position": [1.0] * n, "drawdown": [0.0] * n},
                        schema_overrides={"ts": pl.Datetime("ms", "UTC")})  # fmt: skip


def _write(wh: Warehouse, frame: pl.DataFrame, hashes=("h1",)) -> None:
    with wh.transaction() as con:
        Warehouse.replace(con, "backtest.equity", frame, [Slice(where={**KEY, "params_hash": h}, time_column=None) for h in hashes],
                          order_by=("ts",))  # fmt: skip


def _files(d) -> list[str]:
    return sorted(p.name for p in (d / "backtest" / "equity").glob("*.parquet") if p.name != "_schema.parquet")


def test_parquet_outputs_read_back_as_the_duckdb_table_would(tmp_path):
    cols = ("strategy", "params_hash", "exchange", "symbol", "timeframe", "ts")
    plain, pq = Warehouse(tmp_path / "a.duckdb"), Warehouse(tmp_path / "b.duckdb", parquet_dir=tmp_path / "pq")
    for wh in (plain, pq):
        _write(wh, pl.concat([_equity(5), _equity(3, "h2")]), hashes=("h1", "h2"))
    assert len(_files(tmp_path / "pq")) == 2  # one file per parameter set x market
    assert pq.table_hash("backtest.equity", cols) == plain.table_hash("backtest.equity", cols)
    assert pq.query("SELECT count(*) AS n FROM backtest.equity WHERE params_hash = 'h2'")["n"][0] == 3
    before = _files(tmp_path / "pq")
    _write(pq, _equity(4, scale=2.0))  # a re-run replaces its slice's file, nothing else
    assert _files(tmp_path / "pq") == before
    assert pq.query("SELECT max(equity) AS m FROM backtest.equity WHERE params_hash = 'h1'")["m"][0] == 2 * 1003.0
    _write(pq, _equity(0))  # an empty slice: its file goes
    assert len(_files(tmp_path / "pq")) == 1


def test_a_rolled_back_transaction_moves_no_parquet_file(tmp_path):
    pq = Warehouse(tmp_path / "b.duckdb", parquet_dir=tmp_path / "pq")
    _write(pq, _equity(5))
    with pytest.raises(RuntimeError), pq.transaction() as con:
        Warehouse.replace(con, "backtest.equity", _equity(9, scale=3.0), [Slice(where=KEY, time_column=None)])
        raise RuntimeError("the run dies before its commit")
    assert pq.query("SELECT count(*) AS n, max(equity) AS m FROM backtest.equity").row(0) == (5, 1004.0)
    assert not list((tmp_path / "pq").rglob("*.tmp"))


def test_switching_outputs_moves_the_rows_both_ways(tmp_path):
    cols = ("strategy", "params_hash", "exchange", "symbol", "timeframe", "ts")
    path = tmp_path / "q.duckdb"
    _write(Warehouse(path), pl.concat([_equity(5), _equity(2, "h2")]), hashes=("h1", "h2"))
    expected = Warehouse(path).table_hash("backtest.equity", cols)
    pq = Warehouse(path, parquet_dir=tmp_path / "pq")
    assert pq.table_hash("backtest.equity", cols) == expected and len(_files(tmp_path / "pq")) == 2
    assert Warehouse(path, read_only=True).query("SELECT count(*) AS n FROM backtest.equity")["n"][0] == 7  # readers see the view
    back = Warehouse(path)
    assert back.table_hash("backtest.equity", cols) == expected
    assert back.query("SELECT table_type FROM information_schema.tables WHERE table_name = 'equity'")["table_type"][0] == "BASE TABLE"
