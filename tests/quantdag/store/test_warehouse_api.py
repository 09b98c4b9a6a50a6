"""The warehouse's public write API (open / insert / update by column name) and that nothing else reaches past it."""

from __future__ import annotations

import ast
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from quantdag.errors import ConfigurationError, DataError
from quantdag.store import Warehouse, begin
from quantdag.store import warehouse as warehouse_module

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "quantdag"
STORE = PACKAGE / "store"
TS = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _shuffled_balances(wh: Warehouse) -> None:
    """``paper.balances`` rebuilt with its columns in another order and an extra column in the middle."""
    with wh.transaction() as con:
        con.execute("DROP TABLE paper.balances")
        con.execute("CREATE TABLE paper.balances (ts TIMESTAMPTZ, total DOUBLE, note VARCHAR, used DOUBLE, "
                    "free DOUBLE, asset VARCHAR, broker VARCHAR)")


def test_insert_rows_by_column_name_whatever_the_table_order(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.ensure_schema()
    _shuffled_balances(wh)
    rows = [{"broker": "b", "asset": "BTC", "free": 1.0, "used": 2.0, "total": 3.0, "ts": TS},
            {"broker": "b", "asset": "ETH", "free": 4.0, "used": 5.0, "total": 9.0, "ts": TS}]
    with wh.transaction() as con:
        assert Warehouse.insert(con, "paper.balances", rows) == 2
        assert Warehouse.insert(con, "paper.balances", []) == 0
    got = wh.query("SELECT broker, asset, free, used, total, ts, note FROM paper.balances ORDER BY asset")
    assert got.rows() == [("b", "BTC", 1.0, 2.0, 3.0, TS, None), ("b", "ETH", 4.0, 5.0, 9.0, TS, None)]


def test_insert_frame_by_name(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.ensure_schema()
    _shuffled_balances(wh)
    frame = pl.DataFrame({"asset": ["BTC"], "broker": ["b"], "total": [3.0], "free": [1.0], "used": [2.0],
                          "ts": pl.Series([TS]).cast(pl.Datetime("ms", "UTC"))})
    with wh.transaction() as con:
        assert Warehouse.insert(con, "paper.balances", frame) == 1
    got = wh.query("SELECT broker, asset, free, used, total, ts FROM paper.balances")
    assert got.rows() == [("b", "BTC", 1.0, 2.0, 3.0, TS)]


def test_insert_rejects_unknown_columns_mixed_keys_and_odd_names_writing_nothing(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    row = {"broker": "b", "asset": "BTC", "free": 1.0, "used": 2.0, "total": 3.0, "ts": TS}
    with pytest.raises(DataError, match="paper.balances"), wh.transaction() as con:
        Warehouse.insert(con, "paper.balances", [{**row, "colour": "red"}])
    with pytest.raises(DataError, match="differ in columns"), wh.transaction() as con:
        Warehouse.insert(con, "paper.balances", [row, {k: v for k, v in row.items() if k != "used"}])
    with pytest.raises(ConfigurationError), wh.transaction() as con:
        Warehouse.insert(con, "paper.balances", [{**row, 'x" , "y': 1}])
    with pytest.raises(ConfigurationError), wh.transaction() as con:
        Warehouse.insert(con, "paper.balances; DROP TABLE paper.fills", [row])
    assert wh.query("SELECT count(*) AS n FROM paper.balances")["n"][0] == 0


def test_update_sets_named_columns_of_matching_rows(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.ensure_schema()
    _shuffled_balances(wh)
    rows = [{"broker": "b", "asset": a, "free": 1.0, "used": 2.0, "total": 3.0, "ts": TS} for a in ("BTC", "ETH")]
    with wh.transaction() as con:
        Warehouse.insert(con, "paper.balances", rows)
        changed = Warehouse.update(con, "paper.balances", {"used": 7.0, "total": 8.0}, {"broker": "b", "asset": "ETH"})
    assert changed == 1
    got = wh.query("SELECT asset, free, used, total FROM paper.balances ORDER BY asset")
    assert got.rows() == [("BTC", 1.0, 2.0, 3.0), ("ETH", 1.0, 7.0, 8.0)]
    with pytest.raises(ConfigurationError), wh.transaction() as con:
        Warehouse.update(con, "paper.balances", {"used": 0.0}, {})


def test_open_gives_a_caller_owned_connection_with_schema_and_begin_rolls_back(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    con = wh.open()
    try:
        row = {"broker": "b", "asset": "BTC", "free": 1.0, "used": 2.0, "total": 3.0, "ts": TS}
        with pytest.raises(RuntimeError), begin(con):
            Warehouse.insert(con, "paper.balances", [row])
            raise RuntimeError("crash mid-transaction")
        with begin(con):
            Warehouse.insert(con, "paper.balances", [row])
    finally:
        con.close()
    assert wh.query("SELECT count(*) AS n FROM paper.balances")["n"][0] == 1


def _private_names() -> tuple[set[str], set[str]]:
    """Private members of ``Warehouse`` (class and instance) and private module-level names of warehouse.py."""
    members = {n for n in vars(Warehouse) if n.startswith("_") and not n.startswith("__")}
    members |= {n for n in vars(Warehouse("/nonexistent/w.duckdb")) if n.startswith("_")}
    module = {n for n in vars(warehouse_module) if n.startswith("_") and not n.startswith("__")}
    return members, module


def test_nothing_outside_the_store_package_touches_private_warehouse_members():
    members, module = _private_names()
    assert "_dial" in members and "_schema_ready" in members  # the scan looks for real names
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if STORE in path.parents:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in members:
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("quantdag.store"):
                offences += [f"{path.relative_to(ROOT)}:{node.lineno} imports {a.name}"
                             for a in node.names if a.name.startswith("_") or a.name == "*"]
            elif isinstance(node, ast.Constant) and node.value in members | module:
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} getattr-style {node.value!r}")
    assert not offences, offences
