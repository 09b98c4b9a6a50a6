from __future__ import annotations

import itertools

import pytest

from quantdag.errors import InvalidStateTransition, OrderRejected
from quantdag.execution import state
from quantdag.execution.ids import client_order_id, is_legal
from quantdag.execution.risk import RiskEngine, RiskLimits, RiskState
from quantdag.execution.types import Fill, Order, OrderEvent, OrderStatus, Position, Side, positions_from_fills

LEGAL = {
    (OrderStatus.NEW, OrderEvent.SUBMIT), (OrderStatus.NEW, OrderEvent.CANCEL), (OrderStatus.NEW, OrderEvent.REJECT),
    (OrderStatus.SUBMITTED, OrderEvent.ACCEPT), (OrderStatus.SUBMITTED, OrderEvent.PARTIAL_FILL),
    (OrderStatus.SUBMITTED, OrderEvent.FILL), (OrderStatus.SUBMITTED, OrderEvent.CANCEL),
    (OrderStatus.SUBMITTED, OrderEvent.REJECT), (OrderStatus.SUBMITTED, OrderEvent.EXPIRE),
    (OrderStatus.PARTIALLY_FILLED, OrderEvent.ACCEPT), (OrderStatus.PARTIALLY_FILLED, OrderEvent.PARTIAL_FILL),
    (OrderStatus.PARTIALLY_FILLED, OrderEvent.FILL), (OrderStatus.PARTIALLY_FILLED, OrderEvent.CANCEL),
    (OrderStatus.PARTIALLY_FILLED, OrderEvent.EXPIRE),
}


def _order(status=OrderStatus.NEW, side=Side.BUY, qty=1.0):
    return Order("qd-x", "s", "BTC/USDT", side, qty, status=status)


@pytest.mark.parametrize(("status", "event"), list(itertools.product(OrderStatus, OrderEvent)))
def test_transition_table_is_exhaustive(status, event):
    if (status, event) in LEGAL:
        assert state.apply(_order(status), event).status is state.TRANSITIONS[(status, event)]
    else:
        with pytest.raises(InvalidStateTransition):
            state.apply(_order(status), event)


def test_table_matches_spec_and_terminal_states_are_dead_ends():
    assert set(state.TRANSITIONS) == LEGAL
    for status in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED):
        assert status.terminal and not any(s is status for s, _ in state.TRANSITIONS)


def test_client_order_ids_are_deterministic_and_binance_legal():
    a = client_order_id("ma_cross", "BTC/USDT", "rebalance:1700000000000")
    assert a == client_order_id("ma_cross", "BTC/USDT", "rebalance:1700000000000")
    assert a != client_order_id("ma_cross", "BTC/USDT", "rebalance:1700000000001")
    assert a != client_order_id("ma_cross", "ETH/USDT", "rebalance:1700000000000")
    ids = {client_order_id("s" * 50, "BTC/USDT", i) for i in range(5000)}
    assert len(ids) == 5000 and all(is_legal(i) and len(i) <= 36 for i in ids)


def test_sell_fill_reduces_position_and_realises_pnl():
    fills = [Fill("1", "a", "BTC/USDT", Side.BUY, 2.0, 100.0, 0.2, "USDT", 1),
             Fill("2", "b", "BTC/USDT", Side.SELL, 0.5, 110.0, 0.055, "USDT", 2)]
    pos = positions_from_fills(fills)["BTC/USDT"]
    assert pos.qty == pytest.approx(1.5) and pos.avg_price == pytest.approx(100.0)
    assert pos.realised_pnl == pytest.approx(5.0) and pos.fees == pytest.approx(0.255)
    flipped = pos.apply(Fill("3", "c", "BTC/USDT", Side.SELL, 2.0, 90.0, 0.0, "USDT", 3))
    assert flipped.qty == pytest.approx(-0.5) and flipped.avg_price == 90.0
    assert flipped.realised_pnl == pytest.approx(5.0 - 15.0)


def test_risk_limits_each():
    r = RiskEngine(RiskLimits(max_order_notional=1000, max_position_notional=1500))
    r.check(_order(qty=0.9), position_qty=0, price=1000)
    with pytest.raises(OrderRejected) as e:
        r.check(_order(qty=1.1), position_qty=0, price=1000)
    assert e.value.kind == "max_order_notional"
    with pytest.raises(OrderRejected) as e:
        r.check(_order(qty=0.9), position_qty=0.9, price=1000)
    assert e.value.kind == "max_position_notional"
    r.check(_order(qty=2.0, side=Side.SELL), position_qty=2.0, price=1000)  # reducing passes both limits

    t = [0.0]
    rate = RiskEngine(RiskLimits(max_orders=3, rate_window_s=10), clock=lambda: t[0])
    for _ in range(3):
        rate.check(_order(), position_qty=0, price=1)
    with pytest.raises(OrderRejected) as e:
        rate.check(_order(), position_qty=0, price=1)
    assert e.value.kind == "order_rate"
    t[0] = 10.0
    rate.check(_order(), position_qty=0, price=1)


def test_daily_loss_goes_reducing_then_resets_next_day():
    r = RiskEngine(RiskLimits(daily_loss_limit=100))
    day = 86_400_000
    r.update_equity(10_000, 5 * day)
    assert r.update_equity(9_950, 5 * day + 1) is RiskState.ACTIVE
    assert r.update_equity(9_899, 5 * day + 2) is RiskState.REDUCING
    with pytest.raises(OrderRejected):
        r.check(_order(), position_qty=0, price=1)
    r.check(_order(side=Side.SELL, qty=0.5), position_qty=1.0, price=1)
    assert r.update_equity(9_899, 6 * day) is RiskState.ACTIVE


def test_drawdown_kill_switch_refuses_all_risk_adding_passes_reducing_and_cancels():
    r = RiskEngine(RiskLimits(max_drawdown=0.1))
    r.update_equity(100.0, 0)
    r.update_equity(120.0, 1)
    assert r.update_equity(107.0, 2) is RiskState.HALTED  # 10.8 % below the peak
    accepted = 0
    for i in range(10_000):
        side = Side.BUY if i % 2 else Side.SELL
        pos = [0.0, 1.0, -1.0][i % 3]
        order = _order(side=side, qty=1.5 + i % 7)  # never merely reducing: opens, adds or flips
        try:
            r.check(order, position_qty=pos, price=100.0)
            accepted += 1
        except OrderRejected:
            pass
    assert accepted == 0
    r.check(_order(side=Side.SELL, qty=0.5), position_qty=1.0, price=100.0)  # reducing passes
    assert r.check_cancel("qd-x") is None
    assert r.update_equity(130.0, 3) is RiskState.HALTED  # sticky until resume()
    r.resume()
    r.check(_order(), position_qty=0, price=1)


def test_a_fee_in_the_base_asset_comes_out_of_the_position():
    buy = Fill("1", "a", "BTC/USDT", Side.BUY, 1.0, 100.0, 0.001, "BTC", 1)  # Binance without BNB
    pos = positions_from_fills([buy])["BTC/USDT"]
    assert pos.qty == pytest.approx(0.999, rel=1e-12) and pos.avg_price == pytest.approx(100.0)
    assert pos.fees == pytest.approx(0.1)
    closed = pos.apply(Fill("2", "b", "BTC/USDT", Side.SELL, 0.999, 110.0, 0.10989, "USDT", 2))
    assert closed.qty == 0.0 and closed.realised_pnl == pytest.approx(0.999 * 10.0)
    assert closed.fees == pytest.approx(0.1 + 0.10989)
    # a fee in a third asset leaves the holding whole and is not priced in quote
    bnb = positions_from_fills([Fill("3", "c", "BTC/USDT", Side.BUY, 1.0, 100.0, 0.0002, "BNB", 3)])["BTC/USDT"]
    assert bnb.qty == 1.0 and bnb.fees == 0.0
