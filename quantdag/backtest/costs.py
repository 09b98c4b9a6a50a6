"""The cost model as plain functions, so a paper broker prices fills exactly like the backtest.

:func:`fill` wraps the kernel helper :func:`quantdag.backtest.nb.fill_nb` (same compiled code,
same rounding); :func:`slippage_rate` / :func:`slippage_rates` turn the settings' slippage
model into the fraction a fill inside a given candle slips by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quantdag.backtest.nb import fill_nb, volatility_slippage_nb
from quantdag.backtest.settings import BacktestSettings
from quantdag.errors import ConfigurationError, DataError


@dataclass(frozen=True)
class Fill:
    """One priced fill: what the account pays or receives for ``qty`` units."""

    side: str  # "buy" or "sell"
    qty: float
    ref_price: float  # price before slippage (open, close or stop level)
    price: float  # price after slippage
    fee: float  # quote currency
    slippage_cost: float  # qty * ref_price * slippage
    cash_delta: float  # change of cash: -(qty*price + fee) for a buy, qty*price - fee for a sell


def fill(ref_price: float, qty: float, side: str, *, fee: float, slippage: float) -> Fill:
    """Price one order with the backtest's cost model.

    Parameters
    ----------
    ref_price
        Price the order executes at before slippage (> 0).
    qty
        Units, > 0.
    side
        ``"buy"`` or ``"sell"``.
    fee, slippage
        Fractions, as in :class:`~quantdag.backtest.settings.BacktestSettings`.

    Raises
    ------
    ConfigurationError
        On an unknown side or a fee/slippage outside ``[0, 1)``.
    DataError
        On a non-positive or non-finite price or quantity.
    """
    if side not in ("buy", "sell"):
        raise ConfigurationError(f"side must be 'buy' or 'sell', got {side!r}")
    if not (math.isfinite(ref_price) and ref_price > 0):
        raise DataError(f"ref_price must be a finite price > 0, got {ref_price!r}")
    if not (math.isfinite(qty) and qty > 0):
        raise DataError(f"qty must be a finite quantity > 0, got {qty!r}")
    for name, value in (("fee", fee), ("slippage", slippage)):
        if not 0.0 <= value < 1.0:
            raise ConfigurationError(f"{name} must be in [0, 1), got {value!r}")
    price, fee_paid, slip_cost, cash_delta = fill_nb(
        float(ref_price), float(qty), side == "buy", float(fee), float(slippage)
    )
    return Fill(side, float(qty), float(ref_price), price, fee_paid, slip_cost, cash_delta)


def slippage_rates(settings: BacktestSettings, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Slippage fraction of a fill inside each candle under ``settings``' model (float64 array).

    ``fixed``: ``slippage`` everywhere. ``volatility``: ``slippage + slippage_vol_factor *
    (high - low) / close``, capped at ``MAX_SLIPPAGE`` (0.99) so a fill price stays positive --
    the same arithmetic the kernel applies to each fill (:func:`quantdag.backtest.nb.slip_rate_nb`).
    """
    if settings.slippage_model == "fixed":
        return np.full(close.shape[0], settings.slippage, dtype=np.float64)
    return volatility_slippage_nb(high, low, close, float(settings.slippage), float(settings.slippage_vol_factor))


def slippage_rate(settings: BacktestSettings, high: float, low: float, close: float) -> float:
    """:func:`slippage_rates` for one candle (e.g. the paper broker's latest)."""
    arr = slippage_rates(settings, np.array([high], float), np.array([low], float), np.array([close], float))
    return float(arr[0])
