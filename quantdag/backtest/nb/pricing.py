"""Pricing kernels: fill price, fees, slippage, position size, target units and stop exits.

Pure functions of scalars (plus one array helper); the simulation, a sweep kernel and the paper
broker share them so their arithmetic is bit-identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantdag.backtest.enums import (
    EXIT_NONE,
    EXIT_STOP_LOSS,
    EXIT_TAKE_PROFIT,
    EXIT_TRAILING_STOP,
    SIZE_PERCENT,
    SIZE_VALUE,
)


@njit(cache=True)
def fill_price_nb(ref_price: float, is_buy: bool, slippage: float) -> float:
    """Price actually paid: slippage always moves the reference price against the order.

    Reference: ``reference.fill_price``.
    """
    if is_buy:
        return ref_price * (1.0 + slippage)
    return ref_price * (1.0 - slippage)


@njit(cache=True)
def fill_nb(
    ref_price: float, qty: float, is_buy: bool, fee: float, slippage: float
) -> tuple[float, float, float, float]:
    """Cost model of one fill of ``qty > 0`` units: ``(price, fee_paid, slippage_cost, cash_delta)``.

    ``price = ref * (1 ± slippage)``; ``fee_paid = qty * price * fee``; ``slippage_cost =
    qty * ref * slippage``; a buy costs ``qty * price + fee_paid``, a sell brings
    ``qty * price - fee_paid``. The backtest, the sweep kernel and the paper broker all price
    fills through this function so they agree to the last bit. Reference: ``reference.fill``.
    """
    price = fill_price_nb(ref_price, is_buy, slippage)
    value = qty * price
    fee_paid = value * fee
    slip_cost = qty * ref_price * slippage
    if is_buy:
        return price, fee_paid, slip_cost, -(value + fee_paid)
    return price, fee_paid, slip_cost, value - fee_paid


#: Ceiling of the volatility slippage model, so a slipped sell price stays positive.
MAX_SLIPPAGE = 0.99


@njit(cache=True)
def slip_rate_nb(base: float, vol_factor: float, high: float, low: float, close: float) -> float:
    """Slippage fraction of a fill inside one candle: ``base`` plus ``vol_factor`` times the
    candle's relative range ``(high - low) / close``, capped at :data:`MAX_SLIPPAGE`; exactly
    ``base`` when ``vol_factor`` is 0. Reference: ``reference.slip_rate``.
    """
    if vol_factor == 0.0:
        return base
    return min(base + vol_factor * (high - low) / close, MAX_SLIPPAGE)


@njit(cache=True)
def entry_size_nb(
    size_type: int, size_value: float, equity: float, price: float, fee: float, max_leverage: float
) -> float:
    """Units to open at fill ``price`` (0.0 when no position can be opened).

    ``SIZE_PERCENT``: ``size_value * equity / (price * (1 + fee))`` (1.0 spends all equity
    including the entry fee); ``SIZE_VALUE``: ``size_value / price``; ``SIZE_UNITS_PER_EQUITY``:
    ``size_value * equity``. Every mode is capped at ``max_leverage * equity / (price * (1 +
    fee))``; non-positive equity or a NaN size (indicator warm-up) opens nothing.
    Reference: ``reference.entry_size``.
    """
    if not equity > 0.0:
        return 0.0
    if size_type == SIZE_PERCENT:
        qty = size_value * equity / (price * (1.0 + fee))
    elif size_type == SIZE_VALUE:
        qty = size_value / price
    else:
        qty = size_value * equity
    cap = max_leverage * equity / (price * (1.0 + fee))
    if qty > cap:
        qty = cap
    if not qty > 0.0:
        return 0.0
    return qty


@njit(cache=True)
def target_units_nb(target: float, equity: float, ref_price: float, fee: float, slippage: float) -> float:
    """Signed units a target fraction of equity asks for.

    ``target * equity / (p * (1 + fee))`` with ``p`` the reference price slipped in the target's
    direction, so a target of ±1 from flat spends exactly the equity, like all-in sizing.
    Reference: ``reference.target_units``.
    """
    if target == 0.0 or not equity > 0.0:
        return 0.0
    p = fill_price_nb(ref_price, target > 0.0, slippage)
    return target * equity / (p * (1.0 + fee))


@njit(cache=True)
def stop_exit_nb(
    side: float, open_: float, high: float, low: float, sl_level: float, tp_level: float, trail_level: float
) -> tuple[float, int]:
    """Reference price and reason of a stop exit within one bar, or ``(nan, EXIT_NONE)``.

    Levels are prices, NaN when that stop is off. The adverse level is the tighter of the
    stop-loss and trailing levels (a tie counts as stop-loss). A bar that opens beyond a level
    fills at the open; otherwise, when both the adverse level and the take-profit lie inside the
    bar's range, the adverse one is assumed hit first. Reference: ``reference.stop_exit``.
    """
    reason = EXIT_NONE
    if side > 0.0:
        adverse = -np.inf
        if sl_level == sl_level:
            adverse = sl_level
            reason = EXIT_STOP_LOSS
        if trail_level == trail_level and trail_level > adverse:
            adverse = trail_level
            reason = EXIT_TRAILING_STOP
        fav = tp_level if tp_level == tp_level else np.inf
        if open_ <= adverse:
            return open_, reason
        if open_ >= fav:
            return open_, EXIT_TAKE_PROFIT
        if low <= adverse:
            return adverse, reason
        if high >= fav:
            return fav, EXIT_TAKE_PROFIT
        return np.nan, EXIT_NONE
    adverse = np.inf
    if sl_level == sl_level:
        adverse = sl_level
        reason = EXIT_STOP_LOSS
    if trail_level == trail_level and trail_level < adverse:
        adverse = trail_level
        reason = EXIT_TRAILING_STOP
    fav = tp_level if tp_level == tp_level else -np.inf
    if open_ >= adverse:
        return open_, reason
    if open_ <= fav:
        return open_, EXIT_TAKE_PROFIT
    if high >= adverse:
        return adverse, reason
    if low <= fav:
        return fav, EXIT_TAKE_PROFIT
    return np.nan, EXIT_NONE


@njit(cache=True)
def volatility_slippage_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, base: float, factor: float
) -> np.ndarray:
    """:func:`slip_rate_nb` of every candle (what the kernel applies to a fill in each).

    Reference: ``reference.slip_rate`` per candle.
    """
    n = close.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = slip_rate_nb(base, factor, high[i], low[i], close[i])
    return out
