"""The order state machine: one explicit ``(state, event) -> state`` table and one entry point.

After nautilus_trader's ``OrderFSM``: anything not in :data:`TRANSITIONS` is impossible and raises
:class:`~quantdag.errors.InvalidStateTransition`; terminal states accept no event at all.

::

    new --submit--> submitted --accept--> submitted (acknowledged)
    submitted / partially_filled --partial_fill--> partially_filled --fill--> filled
    new / submitted / partially_filled --cancel--> canceled       (new: never sent)
    new / submitted --reject--> rejected
    submitted / partially_filled --expire--> expired
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantdag.errors import InvalidStateTransition
from quantdag.execution.types import Order, OrderEvent, OrderStatus

S, E = OrderStatus, OrderEvent

TRANSITIONS: Mapping[tuple[OrderStatus, OrderEvent], OrderStatus] = {
    (S.NEW, E.SUBMIT): S.SUBMITTED,
    (S.NEW, E.CANCEL): S.CANCELED,
    (S.NEW, E.REJECT): S.REJECTED,
    (S.SUBMITTED, E.ACCEPT): S.SUBMITTED,
    (S.SUBMITTED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.SUBMITTED, E.FILL): S.FILLED,
    (S.SUBMITTED, E.CANCEL): S.CANCELED,
    (S.SUBMITTED, E.REJECT): S.REJECTED,
    (S.SUBMITTED, E.EXPIRE): S.EXPIRED,
    (S.PARTIALLY_FILLED, E.ACCEPT): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILL): S.FILLED,
    (S.PARTIALLY_FILLED, E.CANCEL): S.CANCELED,
    (S.PARTIALLY_FILLED, E.EXPIRE): S.EXPIRED,
}


def next_status(status: OrderStatus, event: OrderEvent) -> OrderStatus:
    """The state after ``event`` in ``status``.

    Raises
    ------
    InvalidStateTransition
        If the table has no such transition.
    """
    try:
        return TRANSITIONS[(OrderStatus(status), OrderEvent(event))]
    except (KeyError, ValueError):
        raise InvalidStateTransition(f"order event {event!s} is impossible in state {status!s}") from None


def apply(order: Order, event: OrderEvent, **changes: Any) -> Order:
    """The order after ``event``, with ``changes`` (filled_qty, avg_price, ids, timestamps...) applied.

    Raises
    ------
    InvalidStateTransition
        On an impossible event (the message names the order).
    """
    try:
        status = next_status(order.status, event)
    except InvalidStateTransition as exc:
        raise InvalidStateTransition(f"{order.client_order_id}: {exc}") from None
    return order.with_(status=status, **changes)


def event_for(status: OrderStatus) -> OrderEvent:
    """The event that leads into a broker-reported ``status`` (used when syncing with the broker)."""
    return {
        S.SUBMITTED: E.ACCEPT,
        S.PARTIALLY_FILLED: E.PARTIAL_FILL,
        S.FILLED: E.FILL,
        S.CANCELED: E.CANCEL,
        S.REJECTED: E.REJECT,
        S.EXPIRED: E.EXPIRE,
    }[status]
