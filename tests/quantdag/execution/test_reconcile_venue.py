"""Reconciliation checks the venue, not only the store: fills of orders never sent here (simulator,
real ccxt over HTTP, same API key)."""

from __future__ import annotations

import logging

import pytest

from quantdag.execution import OrderStatus, Side
from quantdag.store.warehouse import Warehouse

from .conftest import make_client, make_oms


def _direct_order(sim, symbol: str, side: str, qty: float, cid: str) -> dict:
    """An order placed on the venue with the same credentials, bypassing the OMS."""
    client = make_client(sim)
    client.markets()
    return client.ccxt.create_order(symbol, "market", side, qty, None, {"newClientOrderId": cid})


def test_reconcile_fill_of_order_never_sent_reported_as_foreign_and_alerted(order_sim, account, tmp_path, caplog):
    db = tmp_path / "foreign.duckdb"
    oms = make_oms(order_sim, db)
    oms.reconcile()
    mine = oms.submit("BTC/USDT", Side.BUY, 0.021, intent="own-1")
    assert mine.status is OrderStatus.FILLED
    raw = _direct_order(order_sim, "BTC/USDT", "buy", 0.006, "manual-foreign-1")
    with caplog.at_level(logging.ERROR, logger="quantdag.alerts"):
        report = oms.reconcile()
    foreign = report.foreign_fills
    assert foreign and {f.exchange_order_id for f in foreign} == {str(raw["id"])}
    assert {f.client_order_id for f in foreign} == {"manual-foreign-1"}
    assert sum(f.qty for f in foreign) == pytest.approx(0.006)
    alerts = [r.getMessage() for r in caplog.records if r.name == "quantdag.alerts"]
    assert len(alerts) == 1 and "never sent" in alerts[0] and str(raw["id"]) in alerts[0]
    # not booked: the ledger and positions are ours only; the foreign fill is kept apart
    assert oms.positions()["BTC/USDT"].qty == pytest.approx(0.021)
    assert {f.client_order_id for f in oms.store.fills()} == {mine.client_order_id}
    assert {f.trade_id for f in oms.store.foreign_fills()} == {f.trade_id for f in foreign}
    # seen again by the next reconcile: still reported, alerted once only
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="quantdag.alerts"):
        again = oms.reconcile()
    assert {f.trade_id for f in again.foreign_fills} == {f.trade_id for f in foreign}
    assert [r for r in caplog.records if r.name == "quantdag.alerts"] == []
    oms.close()
    rows = Warehouse(db).query("SELECT count(*) AS n FROM paper.foreign_fills")
    assert rows["n"][0] == len(foreign)


def test_reconcile_fill_of_own_order_with_unknown_exchange_id_booked_not_foreign(order_sim, account, tmp_path):
    db = tmp_path / "own.duckdb"
    oms = make_oms(order_sim, db)
    oms.reconcile()
    o = oms.submit("BTC/USDT", Side.BUY, 0.004, intent="own-unacked")
    with Warehouse(db).connect() as con:  # as if the ack and the fills were never stored
        con.execute("DELETE FROM paper.fills")
        con.execute("UPDATE paper.orders SET exchange_order_id = NULL, status = 'filled'")
    fresh = make_oms(order_sim, db)
    report = fresh.reconcile()
    assert report.foreign_fills == []
    assert report.new_fills >= 1
    assert {f.client_order_id for f in fresh.store.fills()} == {o.client_order_id}
    assert fresh.positions()["BTC/USDT"].qty == pytest.approx(0.004)
