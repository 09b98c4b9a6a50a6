"""The OMS store and TCA write every value into its named column, whatever the table's column order.

A positional ``INSERT INTO t VALUES (...)`` silently swaps values once a table's columns differ from
the tuple order (a column added to the DDL in the middle, a table rebuilt by hand): these tests
rebuild each ``paper`` table with its columns reversed, or with an extra column in the middle, and
check the stored rows equal those written into the canonical tables.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from quantdag.execution import Balance, Fill, Order, OrderStatus, OrderStore, OrderType, Side
from quantdag.execution.tca import analyse, store_tca
from quantdag.store import Warehouse

TABLES = ("paper.orders", "paper.fills", "paper.positions", "paper.balances", "paper.tca")
T0 = 1_700_000_000_000


def _columns(wh: Warehouse, table: str) -> list[tuple[str, str]]:
    schema, name = table.split(".")
    frame = wh.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    )
    return list(frame.iter_rows())


def _rebuild(wh: Warehouse, table: str, layout: str) -> None:
    """Recreate ``table`` (empty) with its columns reversed, two same-typed columns swapped (a swap no
    type check would catch), or with a column inserted in the middle."""
    cols = _columns(wh, table)
    if layout == "reversed":
        cols = cols[::-1]
    elif layout == "swapped_same_type":
        i, j = next((i, j) for i in range(len(cols)) for j in range(i + 1, len(cols)) if cols[i][1] == cols[j][1])
        cols[i], cols[j] = cols[j], cols[i]
    else:
        cols.insert(len(cols) // 2, ("note", "VARCHAR"))
    defs = ", ".join(f'"{c}" {t}' for c, t in cols)
    with wh.transaction() as con:
        con.execute(f"DROP TABLE {table}")
        con.execute(f"CREATE TABLE {table} ({defs})")


def _write(wh: Warehouse, *, persistent: bool) -> None:
    """One order's life through the store (write-ahead, fills, balances, positions) and two TCA writes."""
    store = OrderStore(wh, "paper", persistent=persistent)
    try:
        order = Order("cid-1", "strat", "BTC/USDT", Side.BUY, 0.5, OrderType.LIMIT, 101.25, OrderStatus.SUBMITTED,
                      parent_id="parent-1", intent="enter", reason="why", ts_created=T0, ts_submitted=T0 + 1,
                      ts_updated=T0 + 1)
        store.write_ahead(order)
        store.update_order(order.with_(exchange_order_id="ex-9", ts_acked=T0 + 2, ts_updated=T0 + 2,
                                       status=OrderStatus.PARTIALLY_FILLED))
        fills = [Fill("t-1", "cid-1", "BTC/USDT", Side.BUY, 0.2, 100.5, 0.02, "USDT", T0 + 3, "ex-9"),
                 Fill("t-2", "cid-1", "BTC/USDT", Side.BUY, 0.3, 101.0, 0.0003, "BTC", T0 + 4, "ex-9")]
        done = order.with_(status=OrderStatus.FILLED, exchange_order_id="ex-9", filled_qty=0.5, avg_price=100.8,
                           fee=0.05, ts_acked=T0 + 2, ts_updated=T0 + 4)
        assert len(store.record(done, fills)) == 2
        store.save_balances([Balance("USDT", 900.0, 49.5, 949.5), Balance("BTC", 0.4997, 0.0, 0.4997)], T0 + 5)
        store.rebuild_positions()
        tca = analyse(parent_id="parent-1", strategy="strat", symbol="BTC/USDT", side="buy", algo="twap",
                      parent_qty=0.6, arrival_price=100.0, fills=fills, n_children=2, vwap=100.7,
                      ts_start=T0, ts_end=T0 + 4)
        store.save_tca([tca])
        store_tca(wh, [replace(tca, parent_id="parent-2", algo="vwap", n_fills=7)])
    finally:
        store.close()


def _dump(wh: Warehouse, table: str, names: list[str]) -> pl.DataFrame:
    cols = ", ".join(f'"{c}"' for c in names)
    return wh.query(f"SELECT {cols} FROM {table} ORDER BY ALL")


@pytest.mark.parametrize("persistent", [True, False])
@pytest.mark.parametrize("layout", ["reversed", "swapped_same_type", "extra_middle_column"])
def test_store_and_tca_write_by_column_name_whatever_the_column_order(tmp_path: Path, layout: str,
                                                                       persistent: bool) -> None:
    canonical = Warehouse(tmp_path / "canonical.duckdb")
    _write(canonical, persistent=persistent)

    shuffled = Warehouse(tmp_path / "shuffled.duckdb")
    shuffled.ensure_schema()
    for table in TABLES:
        _rebuild(shuffled, table, layout)
    _write(shuffled, persistent=persistent)

    for table in TABLES:
        names = [c for c, _ in _columns(canonical, table)]
        expected = _dump(canonical, table, names)
        assert expected.height > 0, table
        assert _dump(shuffled, table, names).equals(expected), table
        if layout == "extra_middle_column":
            assert shuffled.query(f"SELECT count(*) AS n FROM {table} WHERE note IS NOT NULL")["n"][0] == 0

    # spot checks by name, so a swap in both warehouses alike would still be caught
    fills = shuffled.query("SELECT trade_id, symbol, side, qty, price, fee_asset, broker, exchange_order_id "
                           "FROM paper.fills ORDER BY trade_id")
    assert fills.rows() == [("t-1", "BTC/USDT", "buy", 0.2, 100.5, "USDT", "paper", "ex-9"),
                            ("t-2", "BTC/USDT", "buy", 0.3, 101.0, "BTC", "paper", "ex-9")]
    order = shuffled.query("SELECT client_order_id, strategy, type, price, status, exchange_order_id, filled_qty, "
                           "parent_id, intent, reason, broker, epoch_ms(ts_acked) AS acked FROM paper.orders")
    assert order.rows() == [("cid-1", "strat", "limit", 101.25, "filled", "ex-9", 0.5, "parent-1", "enter", "why",
                             "paper", T0 + 2)]
    pos = shuffled.query("SELECT broker, symbol, qty, epoch_ms(ts) AS ts FROM paper.positions")
    assert pos.rows() == [("paper", "BTC/USDT", pytest.approx(0.4997), T0 + 4)]
    bal = shuffled.query("SELECT broker, asset, free, used, total FROM paper.balances ORDER BY asset")
    assert bal.rows() == [("paper", "BTC", 0.4997, 0.0, 0.4997), ("paper", "USDT", 900.0, 49.5, 949.5)]
    tca = shuffled.query("SELECT parent_id, algo, n_children, n_fills, arrival_price FROM paper.tca ORDER BY ALL")
    assert tca.rows() == [("parent-1", "twap", 2, 2, 100.0), ("parent-2", "vwap", 2, 7, 100.0)]
