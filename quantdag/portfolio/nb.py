"""The portfolio simulation kernel: one shared cash balance, target weights reached at the next open.

Arrays are wide (candle × symbol); NaN marks a symbol with no candle at that time (it cannot trade
then and is valued at its last close) and, in the weights, a candle with no target for that symbol
(its units are kept). See :func:`quantdag.portfolio.run_portfolio` for the rules.
"""

from __future__ import annotations

import numpy as np
from numba import njit


#: A buy that cash scales below this share of the portfolio's value is no fill (float noise of "all cash spent").
DUST = 1e-12


@njit(cache=True)
def simulate(
    open_: np.ndarray,
    close: np.ndarray,
    weights: np.ndarray,
    init_cash: float,
    fee: float,
    slippage: float,
    min_notional: float,
):
    """Run the portfolio; returns per-candle (equity, cash, gross, net), final units, the trades
    (candle, symbol, qty, price, fee) and counters (orders cut for cash, orders below min_notional)."""
    n, m = open_.shape
    units = np.zeros(m)
    last = np.full(m, np.nan)
    pending = np.full(m, np.nan)  # target weight decided at a close, waiting for an open to fill at
    equity = np.empty(n)
    cash_out = np.empty(n)
    gross = np.empty(n)
    net = np.empty(n)
    cap = 16 + 4 * n
    t_bar = np.empty(cap, dtype=np.int64)
    t_sym = np.empty(cap, dtype=np.int64)
    t_qty = np.empty(cap)
    t_px = np.empty(cap)
    t_fee = np.empty(cap)
    nt = 0
    n_cut = 0
    n_small = 0
    cash = init_cash
    delta = np.zeros(m)
    for t in range(n):
        has_pending = False
        for i in range(m):
            if not np.isnan(pending[i]) and not np.isnan(open_[t, i]):
                has_pending = True
                break
        if has_pending:
            value = cash
            for i in range(m):
                px = open_[t, i] if not np.isnan(open_[t, i]) else last[i]
                if units[i] != 0.0:
                    value += units[i] * px
            buy_cost = 0.0
            for i in range(m):
                delta[i] = 0.0
                if np.isnan(pending[i]) or np.isnan(open_[t, i]):
                    continue
                d = pending[i] * value / open_[t, i] - units[i]
                pending[i] = np.nan
                if abs(d) * open_[t, i] < min_notional or d == 0.0:
                    if d != 0.0:
                        n_small += 1
                    continue
                delta[i] = d
                if d > 0:
                    buy_cost += d * open_[t, i] * (1.0 + slippage) * (1.0 + fee)
            for i in range(m):  # sells first: their proceeds pay for the buys
                d = delta[i]
                if d < 0:
                    px = open_[t, i] * (1.0 - slippage)
                    f = -d * px * fee
                    cash += -d * px - f
                    units[i] += d
                    t_bar, t_sym, t_qty, t_px, t_fee = _record(t_bar, t_sym, t_qty, t_px, t_fee, nt, t, i, d, px, f)
                    nt += 1
            scale = 1.0
            if buy_cost > cash:
                scale = max(cash, 0.0) / buy_cost
            for i in range(m):
                d = delta[i]
                if d > 0:
                    if scale < 1.0:
                        d *= scale
                        n_cut += 1
                        if d * open_[t, i] < max(min_notional, DUST * abs(value)):
                            continue  # scaled to nothing: counted, not filled
                    px = open_[t, i] * (1.0 + slippage)
                    f = d * px * fee
                    cash -= d * px + f
                    units[i] += d
                    t_bar, t_sym, t_qty, t_px, t_fee = _record(t_bar, t_sym, t_qty, t_px, t_fee, nt, t, i, d, px, f)
                    nt += 1
        g = 0.0
        v = 0.0
        for i in range(m):
            if not np.isnan(close[t, i]):
                last[i] = close[t, i]
            if units[i] != 0.0:
                x = units[i] * last[i]
                g += abs(x)
                v += x
            if not np.isnan(weights[t, i]):
                pending[i] = weights[t, i]
        equity[t] = cash + v
        cash_out[t] = cash
        gross[t] = g
        net[t] = v
    return (equity, cash_out, gross, net, units, t_bar[:nt], t_sym[:nt], t_qty[:nt], t_px[:nt], t_fee[:nt], n_cut, n_small)


@njit(cache=True)
def _record(t_bar, t_sym, t_qty, t_px, t_fee, nt, t, i, qty, px, fee):
    """Store fill ``nt`` (growing the arrays when full); the arrays, possibly new."""
    if nt == t_bar.shape[0]:
        t_bar, t_sym, t_qty, t_px, t_fee = _grow(t_bar, t_sym, t_qty, t_px, t_fee)
    t_bar[nt], t_sym[nt], t_qty[nt], t_px[nt], t_fee[nt] = t, i, qty, px, fee
    return t_bar, t_sym, t_qty, t_px, t_fee


@njit(cache=True)
def _grow(t_bar, t_sym, t_qty, t_px, t_fee):
    k = t_bar.shape[0] * 2
    a, b, c, d, e = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.int64), np.empty(k), np.empty(k), np.empty(k)
    a[: t_bar.shape[0]] = t_bar
    b[: t_bar.shape[0]] = t_sym
    c[: t_bar.shape[0]] = t_qty
    d[: t_bar.shape[0]] = t_px
    e[: t_bar.shape[0]] = t_fee
    return a, b, c, d, e
