"""The per-bar simulation of one market: :func:`simulate_nb`."""

from __future__ import annotations

import numpy as np
from numba import njit

from quantdag.backtest.enums import (
    EXIT_END_OF_DATA,
    EXIT_NONE,
    FILL_CLOSE,
    FILL_NEXT_OPEN,
    M_BAR,
    M_CASH,
    M_POS,
    MODE_TARGET,
    N_STATS,
    S_CASH,
    S_FEES,
    S_FINAL_EQUITY,
    S_N_FILLS,
    S_N_MARKS,
    S_CAPPED,
    S_N_TRADES,
    S_POSITION,
    S_REJ_CASH,
    S_REJ_SIZE,
    S_REJ_VOLUME,
    S_SLIPPAGE,
    S_TRADED_VALUE,
)
from quantdag.backtest.nb.pricing import slip_rate_nb, stop_exit_nb
from quantdag.backtest.nb.state import (
    ST_CAP_LEFT,
    ST_CAPPED,
    ST_CASH,
    ST_ENTRY_QTY,
    ST_ENTRY_VALUE,
    ST_EXTREME,
    ST_FEES,
    ST_LAST_TARGET,
    ST_N_FILLS,
    ST_N_STATE,
    ST_N_TRADES,
    ST_PENDING,
    ST_POS,
    ST_REJ_CASH,
    ST_REJ_SIZE,
    ST_REJ_VOLUME,
    ST_SLIP,
    ST_STOP_FROM,
    ST_TRADED,
    close_nb,
    next_event_nb,
    opens_nb,
    quiet_nb,
    record_nb,
    signal_fill_nb,
    target_fill_nb,
)


@njit(cache=True)
def simulate_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    long_entry: np.ndarray,
    long_exit: np.ndarray,
    short_entry: np.ndarray,
    short_exit: np.ndarray,
    target: np.ndarray,
    size: np.ndarray,
    slip: np.ndarray,
    mode: int,
    fill: int,
    size_type: int,
    init_cash: float,
    fee: float,
    sl_stop: float,
    tp_stop: float,
    tsl_stop: float,
    max_leverage: float,
    max_volume_share: float,
    slip_vol_factor: float,
    marks_out: np.ndarray,
    trades_out: np.ndarray,
    stats_out: np.ndarray,
) -> float:
    """Simulate one market bar by bar; returns the final equity. See :func:`simulate_core_nb`.

    This wrapper only allocates the scratch state (``st``, ``words``) and hands everything to the
    core, which is compiled without numba's reference counting (``_nrt=False``): with it, every
    array passed to an inlined helper cost an atomic incref/decref pair, about a third of the
    kernel's time in measurements.
    """
    return simulate_core_nb(
        open_,
        high,
        low,
        close,
        volume,
        long_entry,
        long_exit,
        short_entry,
        short_exit,
        target,
        size,
        slip,
        mode,
        fill,
        size_type,
        init_cash,
        fee,
        sl_stop,
        tp_stop,
        tsl_stop,
        max_leverage,
        max_volume_share,
        slip_vol_factor,
        marks_out,
        trades_out,
        stats_out,
        np.zeros(ST_N_STATE),
        np.empty(close.shape[0] // 8 + 2, dtype=np.uint64),
    )


@njit(cache=True, _nrt=False)  # no allocation inside: no refcounting needed (see simulate_nb)
def simulate_core_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    long_entry: np.ndarray,
    long_exit: np.ndarray,
    short_entry: np.ndarray,
    short_exit: np.ndarray,
    target: np.ndarray,
    size: np.ndarray,
    slip: np.ndarray,
    mode: int,
    fill: int,
    size_type: int,
    init_cash: float,
    fee: float,
    sl_stop: float,
    tp_stop: float,
    tsl_stop: float,
    max_leverage: float,
    max_volume_share: float,
    slip_vol_factor: float,
    marks_out: np.ndarray,
    trades_out: np.ndarray,
    stats_out: np.ndarray,
    st: np.ndarray,
    words: np.ndarray,
) -> float:
    """The simulation behind :func:`simulate_nb`. Reference: ``reference.simulate``.

    Parameters
    ----------
    open_, high, low, close, volume
        float64 candles, validated by the caller (finite, positive prices).
    long_entry, long_exit, short_entry, short_exit
        bool signals of length n (all False for a side that is not traded); ignored in target mode.
    target
        float64 target fraction of equity per bar (NaN = unchanged); used when ``mode == MODE_TARGET``.
    size
        float64 per-bar size read at the decision bar, interpreted by ``size_type``; length 1
        means the same size on every bar (no per-run allocation in a sweep).
    slip
        float64 per-bar slippage fraction applied to any fill inside that bar; length 1 = constant.
    mode, fill, size_type
        codes from :mod:`quantdag.backtest.enums`.
    init_cash, fee
        starting cash; fee as a fraction of traded value, per side.
    sl_stop, tp_stop, tsl_stop
        stop-loss, take-profit and trailing-stop fractions; 0.0 turns one off.
    max_leverage
        cap on position notional as a multiple of equity (signal mode sizing).
    max_volume_share
        cap on units filled per bar as a share of the bar's volume; ``inf`` turns it off.
    slip_vol_factor
        volatility slippage: a fill in bar ``i`` slips by ``slip_rate_nb(slip[i], slip_vol_factor,
        high[i], low[i], close[i])``; 0.0 leaves ``slip`` as it is.
    marks_out
        ``(n, N_MARK_FIELDS)`` account marks or ``(0, N_MARK_FIELDS)`` (not recorded): one row
        ``(bar, cash, position)`` at the close of each bar whose account may have changed;
        every other bar carries the row before it (``init_cash``, 0 before the first).
        :func:`expand_marks_nb` turns them into per-bar equity, cash and position, so quiet
        bars cost no memory traffic.
    trades_out
        ``(capacity, N_TRADE_FIELDS)`` records; at most n trades can occur.
    stats_out
        length ``N_STATS`` summary (see ``S_*`` in :mod:`quantdag.backtest.enums`), with the
        orders the kernel could not place per reason (``S_REJ_*``) and the fills the volume cap
        cut short (``S_CAPPED``); a shorter array (e.g. empty) is left untouched.
    st, words
        scratch, overwritten: ``ST_N_STATE`` floats, and at least ``n // 8 + 1`` uint64 words
        whose bytes get the per-bar event flags and a sentinel after the last bar (bytes past the
        sentinel are never read).
    """
    n = close.shape[0]
    size_step = 1 if size.shape[0] > 1 else 0  # a length-1 size/slip array applies to every bar
    slip_step = 1 if slip.shape[0] > 1 else 0
    st[:] = 0.0
    st[ST_CASH] = init_cash
    st[ST_LAST_TARGET] = np.nan
    record = marks_out.shape[0] > 0
    n_marks = 0
    stops_on = sl_stop > 0.0 or tp_stop > 0.0 or tsl_stop > 0.0
    is_target = mode == MODE_TARGET
    # Hot state lives in locals (registers); helpers work on ``st`` and the loop re-reads it
    # after each helper call. Bars without orders or stop hits never touch ``st``. The re-reads
    # are written out on purpose: folding them (and the order dispatch) into helpers returning
    # tuples doubled the cost of every event in measurements.
    cash = init_cash
    pos = 0.0
    pending = False
    last_target = np.nan
    stop_from = 0
    side = 0.0
    sl_level = np.nan
    tp_level = np.nan
    extreme = np.nan
    capped = max_volume_share < np.inf
    cap_bar = -1  # bar whose volume budget is loaded in st[ST_CAP_LEFT]
    # ev[k]: bar k may order something (a signal, or a non-NaN target). Bars whose fill point
    # sees no event and no pending reduction are skipped: next_event_nb finds the next event 8
    # flags at a time, and only while a position is open with stops does quiet_nb walk the bars
    # in between (checking stops only)
    ev = words.view(np.uint8)
    if is_target:
        for k in range(n):
            ev[k] = target[k] == target[k]
    else:
        for k in range(n):
            ev[k] = long_entry[k] | long_exit[k] | short_entry[k] | short_exit[k]
    ev[n] = 1  # sentinel: the scan for the next event always stops
    lag = 1 if fill == FILL_NEXT_OPEN else 0
    i = 0
    while i < n:
        if not pending:
            nxt = next_event_nb(words, max(i - lag, 0)) + lag
            if stops_on and pos != 0.0:
                i, extreme = quiet_nb(
                    i, min(nxt, n), side, stop_from, sl_level, tp_level, tsl_stop, extreme, open_, high, low
                )
            else:
                i = nxt
            if i >= n:
                break
        # (1) orders decided at the previous close fill at this open
        if fill == FILL_NEXT_OPEN and i > 0:
            d = i - 1
            if is_target:
                act = pending or (target[d] == target[d] and target[d] != last_target)
            else:  # flat without an entry (e.g. an exit signal after a stop): nothing to price
                act = pending or (
                    ev[d] and (pos != 0.0 or opens_nb(long_entry[d], long_exit[d], short_entry[d], short_exit[d]))
                )
            if act:
                if cap_bar != i:
                    st[ST_CAP_LEFT] = max_volume_share * volume[i] if capped else np.inf
                    cap_bar = i
                st[ST_EXTREME] = extreme
                if is_target:
                    target_fill_nb(
                        st,
                        trades_out,
                        i,
                        target[d],
                        open_[i],
                        fee,
                        slip_rate_nb(slip[i * slip_step], slip_vol_factor, high[i], low[i], close[i]),
                        i,
                    )
                else:
                    signal_fill_nb(
                        st,
                        trades_out,
                        i,
                        d,
                        open_[i],
                        long_entry[d],
                        long_exit[d],
                        short_entry[d],
                        short_exit[d],
                        size_type,
                        size[d * size_step],
                        fee,
                        slip_rate_nb(slip[i * slip_step], slip_vol_factor, high[i], low[i], close[i]),
                        max_leverage,
                        i,
                    )
                cash, pos, pending, last_target = st[ST_CASH], st[ST_POS], st[ST_PENDING] != 0.0, st[ST_LAST_TARGET]
                stop_from, extreme = int(st[ST_STOP_FROM]), st[ST_EXTREME]
                if pos != 0.0:
                    side = 1.0 if pos > 0.0 else -1.0
                    avg = st[ST_ENTRY_VALUE] / st[ST_ENTRY_QTY]
                    sl_level = avg * (1.0 - side * sl_stop) if sl_stop > 0.0 else np.nan
                    tp_level = avg * (1.0 + side * tp_stop) if tp_stop > 0.0 else np.nan
        # (2) stops against this bar's range; the trailing extreme takes the open first, the
        #     high (low for shorts) only after the bar survived, as the order inside is unknown
        if stops_on and pos != 0.0 and i >= stop_from:
            trail_level = np.nan
            if tsl_stop > 0.0:
                extreme = max(extreme, open_[i]) if side > 0.0 else min(extreme, open_[i])
                trail_level = extreme * (1.0 - side * tsl_stop)
            price, reason = stop_exit_nb(side, open_[i], high[i], low[i], sl_level, tp_level, trail_level)
            if reason != EXIT_NONE:
                if cap_bar != i:
                    st[ST_CAP_LEFT] = max_volume_share * volume[i] if capped else np.inf
                    cap_bar = i
                st[ST_EXTREME] = extreme
                close_nb(
                    st,
                    trades_out,
                    i,
                    price,
                    fee,
                    slip_rate_nb(slip[i * slip_step], slip_vol_factor, high[i], low[i], close[i]),
                    reason,
                )
                cash, pos, pending = st[ST_CASH], st[ST_POS], st[ST_PENDING] != 0.0
            elif tsl_stop > 0.0:
                extreme = max(extreme, high[i]) if side > 0.0 else min(extreme, low[i])
        # (3) orders decided on this bar fill at its close
        if fill == FILL_CLOSE:
            if is_target:
                act = pending or (target[i] == target[i] and target[i] != last_target)
            else:
                act = pending or (
                    ev[i] and (pos != 0.0 or opens_nb(long_entry[i], long_exit[i], short_entry[i], short_exit[i]))
                )
            if act:
                if cap_bar != i:
                    st[ST_CAP_LEFT] = max_volume_share * volume[i] if capped else np.inf
                    cap_bar = i
                st[ST_EXTREME] = extreme
                if is_target:
                    target_fill_nb(
                        st,
                        trades_out,
                        i,
                        target[i],
                        close[i],
                        fee,
                        slip_rate_nb(slip[i * slip_step], slip_vol_factor, high[i], low[i], close[i]),
                        i + 1,
                    )
                else:
                    signal_fill_nb(
                        st,
                        trades_out,
                        i,
                        i,
                        close[i],
                        long_entry[i],
                        long_exit[i],
                        short_entry[i],
                        short_exit[i],
                        size_type,
                        size[i * size_step],
                        fee,
                        slip_rate_nb(slip[i * slip_step], slip_vol_factor, high[i], low[i], close[i]),
                        max_leverage,
                        i + 1,
                    )
                cash, pos, pending, last_target = st[ST_CASH], st[ST_POS], st[ST_PENDING] != 0.0, st[ST_LAST_TARGET]
                stop_from, extreme = int(st[ST_STOP_FROM]), st[ST_EXTREME]
                if pos != 0.0:
                    side = 1.0 if pos > 0.0 else -1.0
                    avg = st[ST_ENTRY_VALUE] / st[ST_ENTRY_QTY]
                    sl_level = avg * (1.0 - side * sl_stop) if sl_stop > 0.0 else np.nan
                    tp_level = avg * (1.0 + side * tp_stop) if tp_stop > 0.0 else np.nan
        # (4) mark the account at this close (quiet bars carry the last mark forward)
        if record:
            marks_out[n_marks, M_BAR] = i
            marks_out[n_marks, M_CASH] = cash
            marks_out[n_marks, M_POS] = pos
            n_marks += 1
        i += 1
    final_equity = cash + pos * close[n - 1]
    if pos != 0.0:
        record_nb(st, trades_out, n - 1, EXIT_END_OF_DATA, close[n - 1])
    if stats_out.shape[0] >= N_STATS:
        stats_out[S_FINAL_EQUITY] = final_equity
        stats_out[S_CASH] = cash
        stats_out[S_POSITION] = pos
        stats_out[S_N_TRADES] = st[ST_N_TRADES]
        stats_out[S_FEES] = st[ST_FEES]
        stats_out[S_SLIPPAGE] = st[ST_SLIP]
        stats_out[S_TRADED_VALUE] = st[ST_TRADED]
        stats_out[S_N_FILLS] = st[ST_N_FILLS]
        stats_out[S_N_MARKS] = n_marks
        stats_out[S_REJ_SIZE] = st[ST_REJ_SIZE]
        stats_out[S_REJ_CASH] = st[ST_REJ_CASH]
        stats_out[S_REJ_VOLUME] = st[ST_REJ_VOLUME]
        stats_out[S_CAPPED] = st[ST_CAPPED]
    return final_equity


@njit(cache=True)
def expand_marks_nb(
    marks: np.ndarray,
    n_marks: int,
    close: np.ndarray,
    init_cash: float,
    equity_out: np.ndarray,
    cash_out: np.ndarray,
    pos_out: np.ndarray,
) -> None:
    """Per-bar ``equity = cash + position * close``, cash and position from the marks of
    :func:`simulate_nb`, forward-filled (the same arithmetic the simulation would have done at
    every close, so the curve is bit-identical to marking each bar)."""
    cash = init_cash
    pos = 0.0
    k = 0
    for i in range(close.shape[0]):
        if k < n_marks and marks[k, M_BAR] == i:
            cash = marks[k, M_CASH]
            pos = marks[k, M_POS]
            k += 1
        equity_out[i] = cash + pos * close[i]
        cash_out[i] = cash
        pos_out[i] = pos
