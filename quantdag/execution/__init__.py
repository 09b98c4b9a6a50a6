"""Order management: typed orders, a state machine, write-ahead storage, risk checks, brokers, algos, TCA.

Entry point for a paper/live run::

    from quantdag.execution import OrderManager, RiskEngine, RiskLimits, PaperBroker
    oms = OrderManager(warehouse, broker, strategy="ma_cross", risk=RiskEngine(RiskLimits(...)))
    oms.reconcile()
    oms.rebalance({"BTC/USDT": 0.05}, decision_ts_ms=decision_ts)
"""

from quantdag.execution.brokers.base import Broker, BrokerOrder
from quantdag.execution.brokers.ccxt import CcxtBroker
from quantdag.execution.brokers.paper import PaperBroker, Quote, paper_fill_price, ticker_source
from quantdag.execution.ids import client_order_id
from quantdag.execution.lease import AccountLocked, Lease
from quantdag.execution.oms import OrderManager, ReconcileReport
from quantdag.execution.risk import RiskEngine, RiskLimits, RiskState
from quantdag.execution.state import TRANSITIONS, apply
from quantdag.execution.store import OrderStore
from quantdag.execution.types import (
    Balance,
    Fill,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Position,
    Side,
    positions_from_fills,
)

__all__ = [
    "TRANSITIONS", "AccountLocked", "Balance", "Broker", "BrokerOrder", "CcxtBroker", "Fill", "Lease", "Order", "OrderEvent",
    "OrderManager", "OrderStatus", "OrderStore", "OrderType", "PaperBroker", "Position", "Quote",
    "ReconcileReport", "RiskEngine", "RiskLimits", "RiskState", "Side", "apply", "client_order_id",
    "paper_fill_price", "positions_from_fills", "ticker_source",
]
