"""Warehouse.session: one connection for a batch of calls, the same results and rollbacks."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from quantdag.store import Slice, Warehouse

WHERE = {"exchange": "x", "symbol": "A/B", "timeframe": "1h"}


def _row(ts: int, close: float) -> pl.DataFrame:
    return pl.DataFrame({**{k: [v] for k, v in WHERE.items()}, "ts": [ts], "open": [1.0], "high": [2.0], "low": [0.5],
                         "close": [close], "volume": [1.0], "filled": [False]},
                        schema_overrides={"ts": pl.Datetime("ms", "UTC")})  # fmt: skip


def test_session_opens_the_file_once_for_every_call_inside(tmp_path, monkeypatch):
    wh = Warehouse(tmp_path / "q.duckdb")
    wh.ensure_schema()
    opened = []
    real = Warehouse._dial
    monkeypatch.setattr(Warehouse, "_dial", lambda self: opened.append(1) or real(self))
    with wh.session():
        with wh.transaction() as con:
            Warehouse.replace(con, "market.candles", _row(0, 1.0), [Slice(where=WHERE, time_column=None)])
        assert wh.query("SELECT count(*) AS n FROM market.candles")["n"][0] == 1
        with wh.session():  # nested: the outer connection
            assert wh.read("market.candles")["close"].to_list() == [1.0]
    assert len(opened) == 1
    wh.query("SELECT 1")  # outside: a connection of its own again
    assert len(opened) == 2


def test_session_rollback_of_one_transaction_keeps_the_connection_usable(tmp_path):
    wh = Warehouse(tmp_path / "q.duckdb")
    with wh.session():
        with wh.transaction() as con:
            Warehouse.replace(con, "market.candles", _row(0, 1.0), [Slice(where=WHERE, time_column=None)])
        with pytest.raises(RuntimeError), wh.transaction() as con:
            Warehouse.replace(con, "market.candles", _row(0, 9.0), [Slice(where=WHERE, time_column=None)])
            raise RuntimeError("boom")
        assert wh.read("market.candles")["close"].to_list() == [1.0]


def test_session_holds_the_file_until_it_ends(tmp_path):
    """Another process (here: a read-only open) is refused while a writer's session holds the file."""
    wh = Warehouse(tmp_path / "q.duckdb")
    wh.ensure_schema()
    with wh.session():
        with pytest.raises(duckdb.Error):
            duckdb.connect(str(wh.path), read_only=True)
    con = duckdb.connect(str(wh.path), read_only=True)
    con.close()
