"""The simulation's mutable state and the helpers that change it.

The helpers are inlined into their callers and compiled without numba's reference counting
(``_nrt=False``): they never allocate, and an atomic incref/decref pair per array argument per
call dominated the cost of an order in measurements.

One float64 vector (layout below) carries the account and the open trade so helpers can update
it in place; :func:`quantdag.backtest.nb.simulate.simulate_nb` keeps the hot part in locals and
re-reads it after each helper call.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from quantdag.backtest.enums import (
    EXIT_NONE,
    EXIT_REVERSE,
    EXIT_SIGNAL,
    T_ENTRY_IDX,
    T_ENTRY_PRICE,
    T_EXIT_IDX,
    T_EXIT_PRICE,
    T_FEES,
    T_OPEN,
    T_PNL,
    T_REASON,
    T_RETURN,
    T_SIDE,
    T_SIZE,
    T_SLIPPAGE,
)
from quantdag.backtest.nb.pricing import entry_size_nb, fill_nb, fill_price_nb, target_units_nb

# -- simulation state, one float64 vector so helpers can update it in place --------------------
ST_CASH = 0
ST_POS = 1  # signed base units
ST_ENTRY_IDX = 2
ST_ENTRY_QTY = 3  # units entered in the current trade
ST_ENTRY_VALUE = 4  # sum of units * fill price of the entries
ST_EXIT_QTY = 5
ST_EXIT_VALUE = 6
ST_T_FEES = 7
ST_T_SLIP = 8
ST_EXTREME = 9  # best price since entry (trailing stop)
ST_PENDING = 10  # 1.0 while a volume-capped reduction waits for the next fill point
ST_PENDING_REASON = 11
ST_LAST_TARGET = 12
ST_N_TRADES = 13
ST_FEES = 14
ST_SLIP = 15
ST_TRADED = 16
ST_N_FILLS = 17
ST_CAP_LEFT = 18  # units still fillable in the current bar (volume cap)
ST_STOP_FROM = 19  # first bar whose range may trigger the stops
ST_SIDE = 20  # +1 / -1 of the current (or just closed) trade
ST_PENDING_FLAT = 21  # 1.0 if the pending reduction goes all the way to flat
# refused or cut orders, per reason (the S_REJ_* / S_CAPPED stats of quantdag.backtest.enums)
ST_REJ_SIZE = 22
ST_REJ_CASH = 23
ST_REJ_VOLUME = 24
ST_CAPPED = 25
ST_N_STATE = 26


# -- state updates ------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def execute_nb(st: np.ndarray, qty: float, is_buy: bool, ref: float, fee: float, slip: float) -> float:
    price, fee_paid, slip_cost, cash_delta = fill_nb(ref, qty, is_buy, fee, slip)
    st[ST_CASH] += cash_delta
    st[ST_T_FEES] += fee_paid
    st[ST_T_SLIP] += slip_cost
    st[ST_FEES] += fee_paid
    st[ST_SLIP] += slip_cost
    st[ST_TRADED] += qty * price
    st[ST_N_FILLS] += 1.0
    st[ST_CAP_LEFT] -= qty
    return price


@njit(cache=True, _nrt=False)
def increase_nb(
    st: np.ndarray, i: int, side: float, qty: float, ref: float, fee: float, slip: float, stop_from: int
) -> None:
    """Open a trade (when flat) or add ``qty`` units to it."""
    if st[ST_POS] == 0.0:
        st[ST_ENTRY_IDX] = i
        st[ST_ENTRY_QTY] = 0.0
        st[ST_ENTRY_VALUE] = 0.0
        st[ST_EXIT_QTY] = 0.0
        st[ST_EXIT_VALUE] = 0.0
        st[ST_T_FEES] = 0.0
        st[ST_T_SLIP] = 0.0
        st[ST_STOP_FROM] = stop_from
        st[ST_SIDE] = side
    price = execute_nb(st, qty, side > 0.0, ref, fee, slip)
    if st[ST_POS] == 0.0:
        st[ST_EXTREME] = price
    st[ST_POS] += side * qty
    st[ST_ENTRY_QTY] += qty
    st[ST_ENTRY_VALUE] += qty * price


@njit(cache=True, _nrt=False)
def cap_nb(st: np.ndarray, qty: float) -> float:
    """``qty > 0`` units cut to what the volume cap still allows in this bar. A cut is counted:
    as a refusal (``ST_REJ_VOLUME``) when nothing is left, else as a capped fill (``ST_CAPPED``)."""
    cap = st[ST_CAP_LEFT]
    if qty > cap:
        st[ST_CAPPED if cap > 0.0 else ST_REJ_VOLUME] += 1.0
        return cap
    return qty


@njit(cache=True, _nrt=False)
def unsized_nb(st: np.ndarray) -> None:
    """Count an entry that sized to no units: no positive equity (the cash, as the position is
    flat) to size from, else a size that is zero, rounded to nothing or NaN."""
    st[ST_REJ_SIZE if st[ST_CASH] > 0.0 else ST_REJ_CASH] += 1.0


@njit(cache=True, _nrt=False)
def record_nb(st: np.ndarray, trades: np.ndarray, exit_idx: int, reason: int, mark_price: float) -> None:
    """Write the current trade; ``mark_price`` is NaN for a closed trade, else the open one's mark."""
    k = int(st[ST_N_TRADES])
    st[ST_N_TRADES] += 1.0
    if k >= trades.shape[0]:
        return
    side = st[ST_SIDE]
    exit_value = st[ST_EXIT_VALUE]
    is_open = mark_price == mark_price
    if is_open:
        exit_value += abs(st[ST_POS]) * mark_price
    pnl = side * (exit_value - st[ST_ENTRY_VALUE]) - st[ST_T_FEES]
    trades[k, T_ENTRY_IDX] = st[ST_ENTRY_IDX]
    trades[k, T_EXIT_IDX] = exit_idx
    trades[k, T_SIDE] = side
    trades[k, T_SIZE] = st[ST_ENTRY_QTY]
    trades[k, T_ENTRY_PRICE] = st[ST_ENTRY_VALUE] / st[ST_ENTRY_QTY]
    trades[k, T_EXIT_PRICE] = exit_value / st[ST_ENTRY_QTY]
    trades[k, T_FEES] = st[ST_T_FEES]
    trades[k, T_SLIPPAGE] = st[ST_T_SLIP]
    trades[k, T_PNL] = pnl
    trades[k, T_RETURN] = pnl / st[ST_ENTRY_VALUE]
    trades[k, T_REASON] = reason
    trades[k, T_OPEN] = 1.0 if is_open else 0.0


@njit(cache=True, _nrt=False)
def reduce_nb(
    st: np.ndarray, trades: np.ndarray, i: int, qty: float, ref: float, fee: float, slip: float, reason: int
) -> None:
    """Take ``qty`` units off the position; closing the last unit records the trade."""
    pos = st[ST_POS]
    side = 1.0 if pos > 0.0 else -1.0
    price = execute_nb(st, qty, side < 0.0, ref, fee, slip)
    st[ST_EXIT_QTY] += qty
    st[ST_EXIT_VALUE] += qty * price
    if qty >= abs(pos):
        st[ST_POS] = 0.0  # exactly flat, whatever rounding the subtraction would leave
        record_nb(st, trades, i, reason, np.nan)
    else:
        st[ST_POS] = pos - side * qty


@njit(cache=True, _nrt=False)
def close_nb(st: np.ndarray, trades: np.ndarray, i: int, ref: float, fee: float, slip: float, reason: int) -> bool:
    """Close as much of the position as the bar's volume allows; True when flat afterwards."""
    q = cap_nb(st, abs(st[ST_POS]))
    if q > 0.0:
        reduce_nb(st, trades, i, q, ref, fee, slip, reason)
    if st[ST_POS] == 0.0:
        st[ST_PENDING] = 0.0
        return True
    if st[ST_PENDING] == 0.0 or st[ST_PENDING_FLAT] == 0.0:
        st[ST_PENDING] = 1.0
        st[ST_PENDING_FLAT] = 1.0
        st[ST_PENDING_REASON] = reason
    return False


@njit(cache=True, _nrt=False)
def entries_nb(le: bool, lx: bool, se: bool, sx: bool) -> tuple[bool, bool]:
    """The long and short entries one bar's signals leave standing: opposite entries cancel
    (ambiguous), and an exit beats an entry of its side."""
    return le and not lx and not se, se and not sx and not le


@njit(cache=True, _nrt=False)
def opens_nb(le: bool, lx: bool, se: bool, sx: bool) -> bool:
    """Whether one bar's signals open a position from flat (:func:`entries_nb`)."""
    le, se = entries_nb(le, lx, se, sx)
    return le or se


@njit(cache=True, _nrt=False)
def signal_fill_nb(
    st: np.ndarray,
    trades: np.ndarray,
    i: int,
    d: int,
    ref: float,
    le: bool,
    lx: bool,
    se: bool,
    sx: bool,
    size_type: int,
    size_value: float,
    fee: float,
    slip: float,
    max_leverage: float,
    stop_from: int,
) -> None:
    """Act at one fill point on the signals of decision bar ``d``. Reference: ``reference.Sim.on_signals``.

    An entry that sizes to no units or that the volume cap cuts is counted (:func:`unsized_nb`,
    :func:`cap_nb`), as is a capped close (:func:`close_nb`)."""
    le, se = entries_nb(le, lx, se, sx)
    pos = st[ST_POS]
    if pos != 0.0:
        reason = EXIT_NONE
        if st[ST_PENDING] != 0.0:
            reason = int(st[ST_PENDING_REASON])
        elif pos > 0.0 and (lx or se):
            reason = EXIT_SIGNAL if lx else EXIT_REVERSE
        elif pos < 0.0 and (sx or le):
            reason = EXIT_SIGNAL if sx else EXIT_REVERSE
        if reason == EXIT_NONE or not close_nb(st, trades, i, ref, fee, slip, reason):
            return
    if not (le or se):
        return
    side = 1.0 if le else -1.0
    price = fill_price_nb(ref, le, slip)
    qty = entry_size_nb(size_type, size_value, st[ST_CASH], price, fee, max_leverage)
    if not qty > 0.0:
        unsized_nb(st)
        return
    qty = cap_nb(st, qty)
    if qty > 0.0:
        increase_nb(st, i, side, qty, ref, fee, slip, stop_from)


@njit(cache=True, _nrt=False)
def target_fill_nb(
    st: np.ndarray, trades: np.ndarray, i: int, tg_new: float, ref: float, fee: float, slip: float, stop_from: int
) -> None:
    """Rebalance toward the target of the decision bar. Reference: ``reference.Sim.on_target``.

    Orders go out only when the target changes (NaN = unchanged) or while a volume-capped
    reduction is pending; a pending reduction never adds exposure, and one left by a stop or
    a sign change keeps closing until flat. A new target replaces whatever was pending.
    A non-zero target that sizes to no units from flat, and every order the volume cap cuts,
    are counted (:func:`unsized_nb`, :func:`cap_nb`).
    """
    fresh = tg_new == tg_new and tg_new != st[ST_LAST_TARGET]
    if fresh:
        st[ST_LAST_TARGET] = tg_new
    elif st[ST_PENDING] == 0.0:
        return
    elif st[ST_PENDING_FLAT] != 0.0:
        close_nb(st, trades, i, ref, fee, slip, int(st[ST_PENDING_REASON]))
        return
    tg = st[ST_LAST_TARGET]
    pos = st[ST_POS]
    want = target_units_nb(tg, st[ST_CASH] + pos * ref, ref, fee, slip)
    if pos != 0.0 and (want == 0.0 or (want > 0.0) != (pos > 0.0)):
        if not close_nb(st, trades, i, ref, fee, slip, EXIT_SIGNAL) or not fresh:
            return
        want = target_units_nb(tg, st[ST_CASH], ref, fee, slip)  # re-size on the cash after closing
        pos = 0.0
    if pos == 0.0:
        st[ST_PENDING] = 0.0
        if fresh and want != 0.0:
            qty = cap_nb(st, abs(want))
            if qty > 0.0:
                increase_nb(st, i, 1.0 if want > 0.0 else -1.0, qty, ref, fee, slip, stop_from)
        elif fresh and tg != 0.0:
            unsized_nb(st)
        return
    side = 1.0 if pos > 0.0 else -1.0
    gap = abs(want) - abs(pos)
    if gap < 0.0:
        q = cap_nb(st, -gap)
        if q > 0.0:
            reduce_nb(st, trades, i, q, ref, fee, slip, EXIT_SIGNAL)
        st[ST_PENDING] = 1.0 if q < -gap else 0.0
        st[ST_PENDING_FLAT] = 0.0
        st[ST_PENDING_REASON] = EXIT_SIGNAL
        return
    st[ST_PENDING] = 0.0
    if gap > 0.0 and fresh:
        q = cap_nb(st, gap)
        if q > 0.0:
            increase_nb(st, i, side, q, ref, fee, slip, stop_from)


@njit(cache=True, _nrt=False)
def next_event_nb(words: np.ndarray, k: int) -> int:
    """First ``j >= k`` whose event byte is set, scanning 8 bytes at a time (a sentinel ends it)."""
    w = k >> 3
    word = words[w] >> np.uint64((k & 7) * 8)
    if word == 0:
        w += 1
        while words[w] == 0:
            w += 1
        return (w << 3) + (int(trailing_zeros(words[w])) >> 3)
    return k + (int(trailing_zeros(word)) >> 3)


@njit(cache=True, _nrt=False)
def quiet_nb(
    i: int,
    end: int,
    side: float,
    stop_from: int,
    sl_level: float,
    tp_level: float,
    tsl_stop: float,
    extreme: float,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
) -> tuple[int, float]:
    """Stops over bars ``[i, end)`` where nothing can be ordered.

    Returns the first bar that touches a stop (``end`` when none) and the trailing extreme. A bar
    it stops at has had its open folded into the extreme already; the full path folds it again,
    which changes nothing. The result equals running the full path on every bar (checked by the
    property tests).
    """
    i = max(i, stop_from, 0)  # non-negative: lets LLVM drop the negative-index wraparound
    # one loop per side and trailing on/off: with the trailing stop's max inside an ``if``, LLVM
    # turned it into an unpredictable branch (a new high on about half the bars)
    if side > 0.0:
        sl_fast = sl_level if sl_level == sl_level else -np.inf
        tp_fast = tp_level if tp_level == tp_level else np.inf
        if tsl_stop > 0.0:
            trail = 1.0 - tsl_stop
            while i < end:
                extreme = max(extreme, open_[i])
                if (low[i] <= max(sl_fast, extreme * trail)) | (high[i] >= tp_fast):
                    return i, extreme
                extreme = max(extreme, high[i])
                i += 1
        else:
            while i < end:
                if (low[i] <= sl_fast) | (high[i] >= tp_fast):
                    return i, extreme
                i += 1
    else:
        sl_fast = sl_level if sl_level == sl_level else np.inf
        tp_fast = tp_level if tp_level == tp_level else -np.inf
        if tsl_stop > 0.0:
            trail = 1.0 + tsl_stop
            while i < end:
                extreme = min(extreme, open_[i])
                if (high[i] >= min(sl_fast, extreme * trail)) | (low[i] <= tp_fast):
                    return i, extreme
                extreme = min(extreme, low[i])
                i += 1
        else:
            while i < end:
                if (high[i] >= sl_fast) | (low[i] <= tp_fast):
                    return i, extreme
                i += 1
    return end, extreme
