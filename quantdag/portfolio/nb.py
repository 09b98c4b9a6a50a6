"""The portfolio simulation kernel: one shared cash balance, strategies' target weights reached at
the next open, each strategy keeping a virtual sub-ledger (its cash, units and P&L).

Arrays are wide: candles × markets (``open_``, ``close``; NaN = that market has no candle then: it
cannot trade and is valued at its last close) and candles × strategies × markets (``weights``; NaN =
no new target). See :func:`quantdag.portfolio.run_portfolio` for the rules and
:mod:`quantdag.portfolio.risk` for the risk rules called here.

Sub-ledgers: each strategy wants ``weight × its own equity / open`` units; the account trades the
sum (so opposite wishes cross internally, at the open, without costs). When the account trades less
than wished (cash, turnover cap, minimum notional), the shortfall is shared in proportion to each
strategy's wish; a risk flatten closes every strategy's units. Costs of a fill are shared in
proportion to each strategy's part of it. So strategies' cash and units always add up to the
account's, and their P&L adds up to its P&L.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantdag.portfolio.risk import (
    HALTED,
    P_HALT_ACTION,
    P_MAX_CORRELATED,
    P_MAX_ES,
    P_MAX_ORDERS,
    P_WINDOW,
    S_STATE,
    _trailing_returns,
    limit_weights,
    update_state,
)

#: A buy that cash scales below this share of the portfolio's value is no fill (float noise of "all cash spent").
DUST = 1e-12
#: counters returned by :func:`simulate`, in this order
COUNTERS = ("n_cut_for_cash", "n_below_min_notional", "n_turnover_capped", "n_risk_limited", "n_deferred_orders",
            "n_drift_rebalances")  # fmt: skip


@njit(cache=True)
def simulate(open_, close, weights, ts_ms, shares, init_cash, fee, slippage, min_notional, drift_band, turnover_cap,
             rp, state):  # fmt: skip
    """Run the portfolio. ``drift_band``/``turnover_cap``: NaN = off; ``rp``: risk parameters;
    ``state``: the risk state vector (mutated). Returns per-candle (equity, cash, gross, net,
    strategy equity), final units, the fills, counters, the attribution arrays and the risk events."""
    n, m = open_.shape
    ns = weights.shape[1]
    units = np.zeros(m)
    u = np.zeros((ns, m))  # strategies' virtual units
    cash_s = shares * init_cash
    flow = np.zeros((ns, m))  # strategies' trade cash flows at mid (open) prices
    a_fee = np.zeros((ns, m))
    a_slip = np.zeros((ns, m))
    last = np.full(m, np.nan)
    pending = np.full((ns, m), np.nan)
    latest = np.full((ns, m), np.nan)
    drift_mode = not np.isnan(drift_band)
    equity = np.empty(n)
    cash_out = np.empty(n)
    gross = np.empty(n)
    net = np.empty(n)
    s_equity = np.empty((n, ns))
    cap = 16 + 4 * n
    t_bar = np.empty(cap, dtype=np.int64)
    t_sym = np.empty(cap, dtype=np.int64)
    t_qty = np.empty(cap)
    t_px = np.empty(cap)
    t_fee = np.empty(cap)
    nt = 0
    ev_bar = np.empty(16, dtype=np.int64)
    ev_code = np.empty(16, dtype=np.int64)
    ev_state = np.empty(16, dtype=np.int64)
    ne = 0
    counts = np.zeros(len(COUNTERS), dtype=np.int64)
    cash = init_cash
    force = False
    needs_history = not np.isnan(rp[P_MAX_CORRELATED]) or not np.isnan(rp[P_MAX_ES])
    window = int(rp[P_WINDOW])
    no_history = np.empty((0, m))
    px = np.empty(m)
    d = np.zeros((ns, m))
    big_d = np.zeros(m)
    abs_d = np.zeros(m)
    cur = np.zeros(m)
    tgt = np.zeros(m)
    delta = np.zeros(m)
    done = np.zeros(m)
    paid = np.zeros(m)  # fee of each market's fill this candle
    tradable = np.zeros(m, dtype=np.bool_)
    held = np.zeros(m, dtype=np.bool_)  # not traded this candle for a reason that keeps its targets pending
    e_s = np.zeros(ns)
    for t in range(n):
        go = force
        for i in range(m):
            tradable[i] = not np.isnan(open_[t, i])
        if not go:
            for s in range(ns):
                for i in range(m):
                    if tradable[i] and not np.isnan(pending[s, i]):
                        go = True
                        break
                if go:
                    break
        if go:
            force = False
            value = cash
            for i in range(m):
                px[i] = open_[t, i] if tradable[i] else last[i]
                if units[i] != 0.0:
                    value += units[i] * px[i]
            for s in range(ns):
                e_s[s] = cash_s[s]
                for i in range(m):
                    if u[s, i] != 0.0:
                        e_s[s] += u[s, i] * px[i]
            for i in range(m):
                big_d[i] = 0.0
                abs_d[i] = 0.0
                held[i] = False
                for s in range(ns):
                    d[s, i] = 0.0
                    if tradable[i] and not np.isnan(pending[s, i]):
                        d[s, i] = pending[s, i] * e_s[s] / open_[t, i] - u[s, i]
                        big_d[i] += d[s, i]
                        abs_d[i] += abs(d[s, i])
            if value > 0:
                for i in range(m):
                    cur[i] = units[i] * px[i] / value if units[i] != 0.0 else 0.0
                    tgt[i] = (units[i] + big_d[i]) * px[i] / value
                rets = _trailing_returns(close, t - 1, window) if needs_history and t >= 2 else no_history
                lim, hits = limit_weights(tgt, cur, tradable, int(state[S_STATE]), rp, rets)
                if hits > 0:
                    counts[3] += 1
                for i in range(m):
                    if not tradable[i]:
                        delta[i] = 0.0
                    elif lim[i] == tgt[i]:
                        delta[i] = big_d[i]  # untouched by the risk rules: exactly what was wished
                    elif lim[i] == cur[i]:
                        delta[i] = 0.0  # held where it is (reducing, frozen): no float-dust fill
                    else:
                        delta[i] = lim[i] * value / open_[t, i] - units[i]
            else:  # nothing left to trade with
                for i in range(m):
                    delta[i] = 0.0
            halted = state[S_STATE] == HALTED
            if halted and rp[P_HALT_ACTION] == 1:
                for i in range(m):
                    held[i] = tradable[i]
            traded = 0.0
            n_orders = 0
            for i in range(m):
                if delta[i] != 0.0 and abs(delta[i]) * open_[t, i] < min_notional:
                    counts[1] += 1
                    delta[i] = 0.0
                traded += abs(delta[i]) * open_[t, i] if delta[i] != 0.0 else 0.0
                n_orders += delta[i] != 0.0
            if not np.isnan(turnover_cap) and value > 0 and traded > turnover_cap * value:
                f = turnover_cap * value / traded
                for i in range(m):
                    if delta[i] != 0.0:
                        delta[i] *= f
                        held[i] = True  # the rest of the way waits for the next candle
                counts[2] += 1
            if not np.isnan(rp[P_MAX_ORDERS]) and n_orders > rp[P_MAX_ORDERS]:
                _defer_smallest(delta, open_[t], int(rp[P_MAX_ORDERS]), held)
                counts[4] += n_orders - int(rp[P_MAX_ORDERS])
            buy_cost = 0.0
            for i in range(m):
                done[i] = 0.0
                paid[i] = 0.0
                if delta[i] > 0:
                    buy_cost += delta[i] * open_[t, i] * (1.0 + slippage) * (1.0 + fee)
            for i in range(m):  # sells first: their proceeds pay for the buys
                q = delta[i]
                if q < 0:
                    p = open_[t, i] * (1.0 - slippage)
                    f = -q * p * fee
                    cash += -q * p - f
                    units[i] += q
                    done[i] = q
                    paid[i] = f
                    t_bar, t_sym, t_qty, t_px, t_fee = _record(t_bar, t_sym, t_qty, t_px, t_fee, nt, t, i, q, p, f)
                    nt += 1
            scale = 1.0
            if buy_cost > 0 and buy_cost > cash:
                scale = max(cash, 0.0) / buy_cost
            for i in range(m):
                q = delta[i]
                if q > 0:
                    if scale < 1.0:
                        q *= scale
                        counts[0] += 1
                        if q * open_[t, i] < max(min_notional, DUST * abs(value)):
                            continue  # scaled to nothing: counted, not filled
                    p = open_[t, i] * (1.0 + slippage)
                    f = q * p * fee
                    cash -= q * p + f
                    units[i] += q
                    done[i] = q
                    paid[i] = f
                    t_bar, t_sym, t_qty, t_px, t_fee = _record(t_bar, t_sym, t_qty, t_px, t_fee, nt, t, i, q, p, f)
                    nt += 1
            flatten = halted and rp[P_HALT_ACTION] == 0
            for i in range(m):
                q = done[i]
                if tradable[i] and not held[i]:
                    for s in range(ns):  # reached (or cut, or too small): no longer pending
                        pending[s, i] = np.nan
                if not tradable[i] or not (q != 0.0 or (not held[i] and (abs_d[i] > 0 or flatten))):
                    continue
                before = units[i] - q
                dd = big_d[i]
                side = 0.0  # the wishes on the side of the net trade: only they absorb a shortfall
                for s in range(ns):
                    if d[s, i] * dd > 0:
                        side += abs(d[s, i])
                short_of_wish = dd != 0.0 and q * dd >= 0 and abs(q) <= abs(dd)
                tot = 0.0
                for s in range(ns):  # each strategy's part of this market's fill (or internal cross)
                    if flatten and q == -before:
                        x = -u[s, i]
                    elif short_of_wish:
                        x = d[s, i] - (dd - q) * abs(d[s, i]) / side if d[s, i] * dd > 0 else d[s, i]
                    elif abs_d[i] > 0:
                        x = d[s, i] - (dd - q) * abs(d[s, i]) / abs_d[i]
                    elif before != 0.0:
                        x = u[s, i] * q / before
                    else:
                        x = 0.0
                    d[s, i] = x
                    if x * q > 0:
                        tot += abs(x)
                cost_slip = abs(q) * open_[t, i] * slippage
                for s in range(ns):
                    x = d[s, i]
                    share = abs(x) / tot if tot > 0 and x * q > 0 else 0.0  # crossed internally: no cost
                    u[s, i] += x
                    flow[s, i] -= x * open_[t, i]
                    a_fee[s, i] += paid[i] * share
                    a_slip[s, i] += cost_slip * share
                    cash_s[s] -= x * open_[t, i] + (paid[i] + cost_slip) * share
        g = 0.0
        v = 0.0
        for i in range(m):
            if not np.isnan(close[t, i]):
                last[i] = close[t, i]
            if units[i] != 0.0:
                x = units[i] * last[i]
                g += abs(x)
                v += x
        eq = cash + v
        for s in range(ns):
            e_s[s] = cash_s[s]
            for i in range(m):
                if u[s, i] != 0.0:
                    e_s[s] += u[s, i] * last[i]
            s_equity[t, s] = e_s[s]
            for i in range(m):
                w = weights[t, s, i]
                if not np.isnan(w):
                    latest[s, i] = w
                    if not drift_mode:
                        pending[s, i] = w
        if drift_mode and eq > 0 and _drifted(units, u, last, latest, e_s, eq, drift_band):
            counts[5] += 1
            _pend_latest(pending, latest)
        e1, e2 = update_state(state, rp, eq, ts_ms[t])
        for code in (e1, e2):
            if code != 0:
                ev_bar, ev_code, ev_state = _event(ev_bar, ev_code, ev_state, ne, t, code, int(state[S_STATE]))
                ne += 1
                if state[S_STATE] == HALTED:
                    force = rp[P_HALT_ACTION] == 0
                else:
                    _pend_latest(pending, latest)  # back to the strategies' targets
        if state[S_STATE] == HALTED and rp[P_HALT_ACTION] == 0 and not force:
            for i in range(m):  # a flatten an open could not finish (no candle, caps) goes on
                if units[i] != 0.0:
                    force = True
                    break
        equity[t] = eq
        cash_out[t] = cash
        gross[t] = g
        net[t] = v
    return (equity, cash_out, gross, net, s_equity, units, t_bar[:nt], t_sym[:nt], t_qty[:nt], t_px[:nt], t_fee[:nt],
            counts, flow, a_fee, a_slip, u, ev_bar[:ne], ev_code[:ne], ev_state[:ne])  # fmt: skip


@njit(cache=True)
def _drifted(units, u, last, latest, e_s, eq, band) -> bool:
    """Whether any market's weight strays more than ``band`` from the strategies' combined target
    (a strategy without a target for a market counts at its current holding)."""
    ns, m = u.shape
    for i in range(m):
        if np.isnan(last[i]):
            continue
        want = 0.0
        for s in range(ns):
            want += latest[s, i] * e_s[s] if not np.isnan(latest[s, i]) else u[s, i] * last[i]
        if abs(units[i] * last[i] - want) / eq > band:
            return True
    return False


@njit(cache=True)
def _pend_latest(pending, latest):
    ns, m = latest.shape
    for s in range(ns):
        for i in range(m):
            if not np.isnan(latest[s, i]):
                pending[s, i] = latest[s, i]


@njit(cache=True)
def _defer_smallest(delta, open_row, keep, held):
    """Keep the ``keep`` largest orders by notional; the others wait (``held``) for the next candle."""
    m = delta.shape[0]
    size = np.empty(m)
    for i in range(m):
        size[i] = abs(delta[i]) * open_row[i] if delta[i] != 0.0 else -1.0
    order = np.argsort(-size)
    for r in range(keep, m):
        i = order[r]
        if delta[i] != 0.0:
            delta[i] = 0.0
            held[i] = True


@njit(cache=True)
def _event(ev_bar, ev_code, ev_state, ne, t, code, st):
    if ne == ev_bar.shape[0]:
        k = ne * 2
        a, b, c = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.int64), np.empty(k, dtype=np.int64)
        a[:ne], b[:ne], c[:ne] = ev_bar, ev_code, ev_state
        ev_bar, ev_code, ev_state = a, b, c
    ev_bar[ne], ev_code[ne], ev_state[ne] = t, code, st
    return ev_bar, ev_code, ev_state


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
