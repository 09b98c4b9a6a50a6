"""Pre-trade risk checks and the kill switch.

States: ``ACTIVE`` (every check applies), ``REDUCING`` (daily loss limit hit: only orders that
shrink a position pass; back to ACTIVE on the next UTC day), ``HALTED`` (max-drawdown kill switch or
:meth:`RiskEngine.halt`: risk-adding orders are refused until :meth:`RiskEngine.resume`; reducing
orders and cancels still pass). Cancels are never blocked.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from quantdag.errors import ConfigurationError, OrderRejected
from quantdag.execution.types import Order

MS_PER_DAY = 86_400_000


class RiskState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


@dataclass(frozen=True)
class RiskLimits:
    """``None`` disables a limit. Notionals and losses in quote units; ``max_drawdown`` a fraction."""

    max_order_notional: float | None = None
    max_position_notional: float | None = None
    daily_loss_limit: float | None = None
    max_drawdown: float | None = None
    max_orders: int | None = None  # per rate_window_s
    rate_window_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_order_notional", "max_position_notional", "daily_loss_limit"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ConfigurationError(f"{name} must be > 0 or None, got {v!r}")
        if self.max_drawdown is not None and not 0 < self.max_drawdown < 1:
            raise ConfigurationError(f"max_drawdown must be in (0, 1) or None, got {self.max_drawdown!r}")
        if self.max_orders is not None and self.max_orders < 1:
            raise ConfigurationError(f"max_orders must be >= 1 or None, got {self.max_orders!r}")


def _rejected(msg: str, kind: str) -> OrderRejected:
    err = OrderRejected(msg)
    err.kind = kind  # type: ignore[attr-defined]
    return err


class RiskEngine:
    """Checks every order before it is written ahead. ``clock`` is monotonic seconds (rate limit);
    equity updates carry their own epoch-ms timestamps (daily loss)."""

    def __init__(self, limits: RiskLimits | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or RiskLimits()
        self.state = RiskState.ACTIVE
        self.reason: str | None = None
        self._clock = clock
        self._sent: deque[float] = deque()
        self._peak: float | None = None
        self._day: int | None = None
        self._day_start: float | None = None

    # ---- state -------------------------------------------------------------------------------

    def halt(self, reason: str) -> None:
        self.state, self.reason = RiskState.HALTED, reason

    def resume(self) -> None:
        """Manual reset of the kill switch (and of REDUCING)."""
        self.state, self.reason = RiskState.ACTIVE, None

    def update_equity(self, equity: float, ts_ms: int) -> RiskState:
        """Feed marked-to-market equity; trips the drawdown kill switch or the daily loss limit."""
        day = ts_ms // MS_PER_DAY
        if self._day != day:
            self._day, self._day_start = day, equity
            if self.state is RiskState.REDUCING:
                self.state, self.reason = RiskState.ACTIVE, None
        self._peak = equity if self._peak is None else max(self._peak, equity)
        lim = self.limits
        if lim.max_drawdown is not None and self._peak > 0 and (self._peak - equity) / self._peak >= lim.max_drawdown:
            self.halt(f"drawdown {(self._peak - equity) / self._peak:.2%} >= {lim.max_drawdown:.2%}")
        elif (lim.daily_loss_limit is not None and self.state is RiskState.ACTIVE
              and self._day_start is not None and self._day_start - equity >= lim.daily_loss_limit):
            self.state, self.reason = RiskState.REDUCING, f"daily loss {self._day_start - equity:.2f} >= {lim.daily_loss_limit}"
        return self.state

    # ---- checks ------------------------------------------------------------------------------

    @staticmethod
    def is_reducing(order: Order, position_qty: float) -> bool:
        """Whether ``order`` only shrinks the current position (never flips it)."""
        return position_qty != 0 and (order.side.sign * position_qty < 0) and order.qty <= abs(position_qty) + 1e-12

    def check(self, order: Order, *, position_qty: float, price: float) -> None:
        """Pass silently or raise :class:`OrderRejected` (``kind`` names the check)."""
        reducing = self.is_reducing(order, position_qty)
        if self.state is not RiskState.ACTIVE and not reducing:
            raise _rejected(f"{order.client_order_id}: risk state {self.state} ({self.reason}); only reducing orders",
                            str(self.state))
        lim = self.limits
        notional = order.qty * price
        if not reducing:
            if lim.max_order_notional is not None and notional > lim.max_order_notional:
                raise _rejected(f"{order.client_order_id}: order notional {notional:.2f} > {lim.max_order_notional}",
                                "max_order_notional")
            after = abs(position_qty + order.signed_qty) * price
            if lim.max_position_notional is not None and after > lim.max_position_notional:
                raise _rejected(f"{order.client_order_id}: position notional {after:.2f} > {lim.max_position_notional}",
                                "max_position_notional")
        if lim.max_orders is not None:
            now = self._clock()
            while self._sent and now - self._sent[0] >= lim.rate_window_s:
                self._sent.popleft()
            if len(self._sent) >= lim.max_orders:
                raise _rejected(f"{order.client_order_id}: more than {lim.max_orders} orders in {lim.rate_window_s}s",
                                "order_rate")
            self._sent.append(now)

    def check_cancel(self, client_order_id: str) -> None:
        """Cancels always pass (they only ever reduce risk)."""
        return None
