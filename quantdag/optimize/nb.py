"""Parallel numba kernel of the moving-average-crossover sweep, over plain arrays.

Each distinct moving average is computed once (by the caller, with the strategy's own TA-Lib
function); the kernel gets them as rows of one ``(n_periods, n)`` matrix and a list of
``(fast_row, slow_row)`` combinations, and runs the combinations in ``numba.prange``. Nothing of
size ``combos x candles`` is ever allocated: every combination keeps a few scalars (cash,
position, running sums) and writes one row of :data:`N_OUT` summary values.

Bit-identity with :func:`quantdag.backtest.run`
-----------------------------------------------
* the crossover test is the strategy's (``crossed_above``/``crossed_below``: ``a > b`` now and
  ``a <= b`` on the previous candle, NaN never crossing);
* every fill is the engine's ``signal_fill_nb`` specialised to a whole-position crossover (no
  stops, no volume cap) and priced by the engine's own ``fill_price_nb``/``entry_size_nb``/
  ``fill_nb`` with the engine's bar timeline (next-open or close fills), so cash, position, fees
  and trade P&L are the same floating-point operations in the same order; the marked equity
  ``cash + pos * close[i]`` is too (the agreement tests pin this); an entry that sizes to no
  units is counted as the engine counts it (``rejected_size_zero``/``rejected_no_cash``);
* metrics are accumulated from that equity in one pass: extremes, counts, streaks and the sums
  the engine takes sequentially (fees, slippage, traded value) are exact; the means (returns,
  equity, trade P&L) sum plainly between fills and compensated (TwoSum) across segments, within a few ulps of numpy's pairwise sums.

Supported settings here: ``direction`` long or short, every sizing (a length-1 or per-candle
``size`` array, as the engine builds it), fixed or volatility slippage, next-open or close
fills. Stops and the volume cap are not specialised: the API sends those to the generic path.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from quantdag.backtest import nb as bnb
from quantdag.backtest.enums import FILL_NEXT_OPEN

# -- columns of the kernel's output row -------------------------------------------------------
O_FINAL_EQUITY = 0
O_N_TRADES = 1  # closed + open
O_N_OPEN = 2
O_MEAN_R = 3
O_SUM_SQ_DEV = 4  # sum (r - mean)^2 (from compensated sums)
O_MEAN_DOWN_SQ = 5  # mean(min(r, 0)^2)
O_MAX_DD = 6
O_DD_BARS = 7
O_N_WINS = 8
O_N_LOSSES = 9
O_WIN_SUM = 10
O_LOSS_SUM = 11  # positive
O_PNL_SUM = 12
O_BARS_SUM = 13
O_MAX_CW = 14
O_MAX_CL = 15
O_EXPOSED = 16  # candles whose close finds a position
O_TRADED = 17
O_FEES = 18
O_SLIP = 19
O_MEAN_EQUITY = 20
O_REJ_SIZE = 21  # entries sized to no units with cash > 0 (the engine's S_REJ_SIZE)
O_REJ_CASH = 22  # entries sized to no units with cash <= 0 (S_REJ_CASH); no volume cap here
N_OUT = 23


@njit(cache=True, inline="always")
def _two_sum(s: float, c: float, x: float) -> tuple[float, float]:
    """Compensated running sum (Knuth's branch-free TwoSum): ``s + c`` carries the exact error."""
    t = s + x
    bp = t - s
    c += (s - (t - bp)) + (x - bp)
    return t, c


@njit(cache=True, inline="always")
def _signals(
    f: float, s: float, prev_le: bool, prev_ge: bool, sig_e: bool, sig_x: bool, next_open: bool
) -> tuple[bool, bool, bool, bool, bool, bool]:
    """The strategy's crossings on one candle (``f``/``s`` = fast/slow average) and the entry/exit
    acted on there: this candle's with ``fill="close"``, the previous candle's (``sig_e``/``sig_x``)
    with next-open fills. Returns ``(le, lx, prev_le, prev_ge, sig_e, sig_x)`` for the next candle."""
    e_i = prev_le & (f > s)  # crossed above: fast > slow now, fast <= slow before (NaN never crosses)
    x_i = prev_ge & (f < s)
    if next_open:
        return sig_e, sig_x, f <= s, f >= s, e_i, x_i
    return e_i, x_i, f <= s, f >= s, e_i, x_i


@njit(cache=True, error_model="numpy", _nrt=False)
def _ret(eq: float, prev_eq: float) -> float:
    """One candle's return, compiled without fast-math: LLVM may not fold the ``- 1`` into
    :func:`_chunk_sums`' running sum (that would cost ~1e-12 of precision)."""
    return eq / prev_eq - 1.0


@njit(cache=True, error_model="numpy", _nrt=False)
def _down_sq(r: float) -> float:
    d = min(r, 0.0)
    return d * d


@njit(cache=True, inline="always")
def _mark(
    eq: float,
    prev_eq: float,
    psr: float,
    psq: float,
    psd: float,
    pse: float,
    peak: float,
    run: int,
    best_run: int,
    min_dd: float,
    gate: float,
) -> tuple[float, float, float, float, float, int, int, float, float]:
    """Fold one candle's marked equity into the running sums, peak, drawdown and its duration.

    ``run`` counts candles since the last peak; ``best_run`` takes its maximum at each new peak
    (and once more at the end), which is the maximum over every candle. ``gate`` (:func:`_gate`)
    is a conservative pre-filter: only equity below it can set a new maximum drawdown, and that
    is then decided with the exact ``eq / peak - 1`` (:func:`_deeper`).
    """
    r = _ret(eq, prev_eq)
    psr += r
    psq += r * r
    psd += _down_sq(r)
    pse += eq
    peak, run, best_run, min_dd, gate = _peak_step(eq, peak, run, best_run, min_dd, gate)
    return psr, psq, psd, pse, peak, run, best_run, min_dd, gate


@njit(cache=True, inline="always")
def _peak_step(
    eq: float, peak: float, run: int, best_run: int, min_dd: float, gate: float
) -> tuple[float, int, int, float, float]:
    """:func:`_mark`'s peak, drawdown and duration part."""
    if eq >= peak:
        peak = eq
        best_run = max(best_run, run)
        run = 0
        gate = _gate(peak, min_dd)
    else:
        run += 1
        min_dd, gate = _deeper(eq, peak, min_dd, gate)
    return peak, run, best_run, min_dd, gate


@njit(cache=True, inline="always")
def _gate(peak: float, min_dd: float) -> float:
    """Conservative pre-filter of :func:`_deeper`: only equity below it can set a new maximum
    drawdown (the 1e-12 margin covers the rounding of this product)."""
    return peak * ((1.0 + min_dd) * (1.0 + 1e-12))


@njit(cache=True, inline="always")
def _deeper(eq: float, peak: float, min_dd: float, gate: float) -> tuple[float, float]:
    """``(min_dd, gate)`` after equity ``eq`` below ``peak``: a new maximum drawdown if the
    exact ``eq / peak - 1`` is deeper."""
    if eq < gate:
        dd = eq / peak - 1.0
        if dd < min_dd:
            min_dd = dd
            gate = _gate(peak, min_dd)
    return min_dd, gate


#: Candles per step of :func:`_chunk_sums` (its loop is unrolled and vectorised whole).
CHUNK = 16


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "nsz"}, _nrt=False)
def _chunk_sums(
    close: np.ndarray,
    fast_ma: np.ndarray,
    slow_ma: np.ndarray,
    j0: int,
    cash: float,
    pos: float,
    prev_eq: float,
    peak: float,
    gate: float,
) -> tuple[int, int, int, float, float, float, float]:
    """:data:`CHUNK` candles from ``j0`` of an unchanged position, speculatively: how many have
    ``fast_ma >= slow_ma`` (the caller keeps the chunk only if all do), how many reach the
    peak and how many fall below the drawdown gate (the caller then settles those exactly), and
    the sums of the return, squared return, squared negative return and equity.

    Without the early exit of a per-candle loop, LLVM vectorises this one: four divisions per
    instruction, where the per-candle loop was bound by one division per candle. Only the sums
    may be reassociated (lane-wise partial sums); each equity and return is still the engine's
    exact value (:func:`_ret` is compiled without fast-math)."""
    sr, sq, sd, se = 0.0, 0.0, 0.0, 0.0
    above = 0
    n_peak = 0
    n_low = 0
    p = prev_eq
    for t in range(CHUNK):
        j = j0 + np.uintp(t)
        above += fast_ma[j] >= slow_ma[j]
        eq = cash + pos * close[j]
        r = _ret(eq, p)
        sr += r
        sq += r * r
        sd += _down_sq(r)
        se += eq
        n_peak += eq >= peak
        n_low += eq < gate
        p = eq
    return above, n_peak, n_low, sr, sq, sd, se


@njit(cache=True, _nrt=False)
def _skip_while(a: np.ndarray, b: np.ndarray, k: int, n: int, test: int) -> int:
    """First ``j >= k`` (``n`` if none) where the test fails: 0 ``not a <= b``, 1 ``a <= b``,
    2 ``not a >= b``, 3 ``a >= b`` (NaN fails ``<=``/``>=``). The sweep's scans over quiet
    stretches. Indices are unsigned: with signed ones numba tests each index for negative
    wraparound, and inside the big kernel that test reloaded shapes and strides from the stack
    on every candle (~30 % of a sweep)."""
    j = np.uintp(k)  # unsigned: no negative-index wraparound test in the loop
    m = np.uintp(n)
    one = np.uintp(1)
    if test == 0:
        while j < m and not (a[j] <= b[j]):
            j += one
    elif test == 1:
        while j < m and a[j] <= b[j]:
            j += one
    elif test == 2:
        while j < m and not (a[j] >= b[j]):
            j += one
    else:
        while j < m and a[j] >= b[j]:
            j += one
    return np.intp(j)


@njit(cache=True, error_model="numpy", _nrt=False)
def _mark_while_above(
    close: np.ndarray,
    fast_ma: np.ndarray,
    slow_ma: np.ndarray,
    i: int,
    cash: float,
    pos: float,
    prev_eq: float,
    psr: float,
    psq: float,
    psd: float,
    pse: float,
    peak: float,
    run: int,
    best_run: int,
    min_dd: float,
    gate: float,
) -> tuple[float, float, float, float, float, int, int, float, float, int]:
    """:func:`_mark` each candle from ``i`` of an unchanged position while ``fast_ma >= slow_ma``
    (no exit crossing possible); also returns the first candle where that fails (or ``n``).
    The hot loop of a sweep, bound by its one division per candle: whole :data:`CHUNK`\ s go
    through the vectorised :func:`_chunk_sums`, the rest candle by candle. Rounding is monotone,
    so within a chunk the lowest equity is the deepest drawdown, exactly as per candle; a chunk
    that reaches the peak is replayed candle by candle. Unsigned indices as in
    :func:`_skip_while`."""
    j = np.uintp(i)  # unsigned: no negative-index wraparound test in the loop
    m = np.uintp(close.shape[0])
    one = np.uintp(1)
    step = np.uintp(CHUNK)
    while j + step <= m:
        above, n_peak, n_low, a, b, c, d = _chunk_sums(close, fast_ma, slow_ma, j, cash, pos, prev_eq, peak, gate)
        if above != CHUNK:
            break  # the position may exit inside: the per-candle loop below takes over
        psr += a
        psq += b
        psd += c
        pse += d
        if n_peak:  # a new peak inside: replay the chunk candle by candle
            for t in range(CHUNK):
                peak, run, best_run, min_dd, gate = _peak_step(
                    cash + pos * close[j + np.uintp(t)], peak, run, best_run, min_dd, gate
                )
        else:
            run += CHUNK
            if n_low:  # a deeper drawdown inside: its lowest equity decides it, as per candle
                e_lo = cash + pos * close[j]
                for t in range(1, CHUNK):
                    e_lo = min(e_lo, cash + pos * close[j + np.uintp(t)])
                min_dd, gate = _deeper(e_lo, peak, min_dd, gate)
        prev_eq = cash + pos * close[j + step - one]
        j += step
    while j < m and fast_ma[j] >= slow_ma[j]:
        eq = cash + pos * close[j]
        psr, psq, psd, pse, peak, run, best_run, min_dd, gate = _mark(
            eq, prev_eq, psr, psq, psd, pse, peak, run, best_run, min_dd, gate
        )
        prev_eq = eq
        j += one
    return psr, psq, psd, pse, peak, run, best_run, min_dd, gate, np.intp(j)


@njit(cache=True, error_model="numpy", _nrt=False)  # allocates nothing: no refcounting
def cross_combo_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    fast_ma: np.ndarray,
    slow_ma: np.ndarray,
    short: bool,
    fill: int,
    size_type: int,
    size: np.ndarray,
    slip: float,
    slip_vol_factor: float,
    init_cash: float,
    fee: float,
    max_leverage: float,
    out: np.ndarray,
) -> None:
    """One crossover combination: enter when ``fast_ma`` crosses above ``slow_ma``, exit when it
    crosses below (with ``short``: the same signals open/close a short); writes ``out[:N_OUT]``.

    Fills are the engine's ``signal_fill_nb`` specialised to this case (whole position, no
    stops, no volume cap), written with the same pricing functions in the same order, so cash,
    position, fees and trade P&L are bit-identical to :func:`quantdag.backtest.run`.
    """
    n = close.shape[0]
    size_step = 1 if size.shape[0] > 1 else 0
    next_open = fill == FILL_NEXT_OPEN
    side = -1.0 if short else 1.0
    entry_buy = not short
    cash = init_cash
    pos = 0.0
    fees_paid, slip_paid, traded = 0.0, 0.0, 0.0  # sequential sums, as the engine's state vector
    entry_value, trade_fees, entry_bar = 0.0, 0.0, 0  # the open trade
    prev_eq = init_cash
    peak = init_cash
    gate = _gate(peak, 0.0)
    sr, cr = 0.0, 0.0  # sum of returns (compensated)
    sq, cq = 0.0, 0.0  # sum of squared returns
    sd, cd = 0.0, 0.0  # sum of squared negative returns
    se, ce = 0.0, 0.0  # sum of equity
    min_dd = 0.0
    run = 0
    best_run = 0
    exposed = 0
    n_closed = 0
    n_wins = 0
    n_losses = 0
    win_sum, loss_sum, pnl_sum, pc, bars_sum = 0.0, 0.0, 0.0, 0.0, 0.0
    cw, cl, max_cw, max_cl = 0, 0, 0, 0
    rej_size, rej_cash = 0, 0  # entries that sized to no units (the engine's unsized_nb)
    prev_le = False  # fast <= slow on the previous candle (False while undefined)
    prev_ge = False
    sig_e = False  # signals of the previous candle (next-open fills)
    sig_x = False
    psr, psq, psd, pse = 0.0, 0.0, 0.0, 0.0  # plain sums of the current segment (between fills)
    flat_k = 0  # flat candles since the last flush (equity == cash, return exactly 0)
    le = False
    lx = False
    i = 0
    while i < n:
        # Fast paths: runs of candles without a fill. They do exactly what the generic step
        # below does on such candles, minus the tests that cannot succeed there.
        if pos == 0.0 and prev_eq == cash:
            # flat scan: equity == cash, return exactly 0, drawdown unchanged -> counted only.
            # First skip, with one comparison per candle, to just before the first entry
            # crossing at or after i (no entry is pending from candle i - 1); then the exact
            # per-candle loop below replays the last candle or two, restoring every signal flag.
            if not (next_open and sig_e):
                k = i
                pl = prev_le
                while k < n:
                    if not pl:
                        k = _skip_while(fast_ma, slow_ma, k, n, 0)
                        if k >= n:
                            break
                        pl = True
                        k += 1
                        continue
                    k = _skip_while(fast_ma, slow_ma, k, n, 1)
                    if k >= n:
                        break
                    if fast_ma[k] > slow_ma[k]:
                        break  # crossing above at k
                    pl = False  # undefined (NaN) candle
                    k += 1
                if k >= n:
                    flat_k += n - i
                    i = n
                    break
                r0 = k - 1
                if r0 > i:
                    flat_k += r0 - i
                    prev_le = fast_ma[r0 - 1] <= slow_ma[r0 - 1]
                    prev_ge = fast_ma[r0 - 1] >= slow_ma[r0 - 1]
                    sig_e = False  # no crossing on r0 - 1 >= i (k is the first)
                    sig_x = False  # only read as an exit signal, and the position is flat
                    i = r0
            while i < n:
                le, lx, prev_le, prev_ge, sig_e, sig_x = _signals(
                    fast_ma[i], slow_ma[i], prev_le, prev_ge, sig_e, sig_x, next_open
                )
                if le:
                    break
                i += 1
                flat_k += 1
            if i >= n:
                break
        elif pos != 0.0:
            # in position, no exit: mark the equity
            seg_start = i
            # While fast >= slow no exit crossing can happen: mark those candles in one tight
            # loop (when no exit is pending from candle i - 1), then resume the exact per-candle
            # signals at the first candle below (or undefined) with the flags it needs.
            if not (next_open and sig_x):
                psr, psq, psd, pse, peak, run, best_run, min_dd, gate, k = _mark_while_above(
                    close, fast_ma, slow_ma, i, cash, pos, prev_eq, psr, psq, psd, pse, peak, run, best_run, min_dd, gate
                )
                if k > i:
                    prev_eq = cash + pos * close[k - 1]
                    prev_le = fast_ma[k - 1] <= slow_ma[k - 1]
                    prev_ge = True
                    sig_e = False  # only read as an entry signal, and a position is open
                    sig_x = False  # fast >= slow on k - 1: no crossing below there
                    i = k
            while i < n:  # per-candle signals until the exit signal
                le, lx, prev_le, prev_ge, sig_e, sig_x = _signals(
                    fast_ma[i], slow_ma[i], prev_le, prev_ge, sig_e, sig_x, next_open
                )
                if lx:
                    break
                eq = cash + pos * close[i]
                psr, psq, psd, pse, peak, run, best_run, min_dd, gate = _mark(
                    eq, prev_eq, psr, psq, psd, pse, peak, run, best_run, min_dd, gate
                )
                prev_eq = eq
                i += 1
            exposed += i - seg_start
            if i >= n:
                break
        else:
            le, lx, prev_le, prev_ge, sig_e, sig_x = _signals(
                fast_ma[i], slow_ma[i], prev_le, prev_ge, sig_e, sig_x, next_open
            )
        # generic step of candle i (signals le/lx already computed)
        filled = False
        if (le & (pos == 0.0)) | (lx & (pos != 0.0)):
            filled = True
            d = i - 1 if next_open else i
            ref = open_[i] if next_open else close[i]
            rate = bnb.slip_rate_nb(slip, slip_vol_factor, high[i], low[i], close[i])
            if pos != 0.0:  # exit: the whole position at once (no volume cap here)
                qty = abs(pos)
                price, fee_i, slip_i, cash_delta = bnb.fill_nb(ref, qty, pos < 0.0, fee, rate)
                cash += cash_delta
                trade_fees += fee_i
                fees_paid += fee_i
                slip_paid += slip_i
                traded += qty * price
                pnl = side * (qty * price - entry_value) - trade_fees
                pos = 0.0
                n_closed += 1
                pnl_sum, pc = _two_sum(pnl_sum, pc, pnl)
                bars_sum += i - entry_bar
                if pnl > 0.0:
                    n_wins += 1
                    win_sum += pnl
                    cw += 1
                    cl = 0
                    max_cw = max(max_cw, cw)
                elif pnl < 0.0:
                    n_losses += 1
                    loss_sum -= pnl
                    cl += 1
                    cw = 0
                    max_cl = max(max_cl, cl)
                else:
                    cw = 0
                    cl = 0
            elif not lx:  # entry (an exit signal on the same candle would win)
                qty = bnb.entry_size_nb(
                    size_type, size[d * size_step], cash, bnb.fill_price_nb(ref, entry_buy, rate), fee, max_leverage
                )
                if qty > 0.0:
                    price, fee_i, slip_i, cash_delta = bnb.fill_nb(ref, qty, entry_buy, fee, rate)
                    cash += cash_delta
                    trade_fees = fee_i
                    fees_paid += fee_i
                    slip_paid += slip_i
                    traded += qty * price
                    pos = side * qty
                    entry_value = qty * price
                    entry_bar = i
                elif cash > 0.0:
                    rej_size += 1
                else:
                    rej_cash += 1
        if pos == 0.0 and not filled and prev_eq == cash:
            flat_k += 1  # r = 0, drawdown unchanged: accounted in bulk
            i += 1
            continue
        if flat_k > 0:
            se, ce = _two_sum(se, ce, prev_eq * flat_k)
            if prev_eq < peak:
                run += flat_k
            flat_k = 0
        if filled:  # fold the segment's plain partial sums into the compensated totals
            sr, cr = _two_sum(sr, cr, psr)
            sq, cq = _two_sum(sq, cq, psq)
            sd, cd = _two_sum(sd, cd, psd)
            se, ce = _two_sum(se, ce, pse)
            psr, psq, psd, pse = 0.0, 0.0, 0.0, 0.0
        eq = cash + pos * close[i]
        psr, psq, psd, pse, peak, run, best_run, min_dd, gate = _mark(
            eq, prev_eq, psr, psq, psd, pse, peak, run, best_run, min_dd, gate
        )
        prev_eq = eq
        exposed += pos != 0.0
        i += 1
    if flat_k > 0:
        se, ce = _two_sum(se, ce, prev_eq * flat_k)
        if prev_eq < peak:
            run += flat_k
    best_run = max(best_run, run)
    sr, cr = _two_sum(sr, cr, psr)
    sq, cq = _two_sum(sq, cq, psq)
    sd, cd = _two_sum(sd, cd, psd)
    se, ce = _two_sum(se, ce, pse)
    final = cash + pos * close[n - 1]
    sum_r = sr + cr
    mean = sum_r / n
    out[O_FINAL_EQUITY] = final
    out[O_N_TRADES] = n_closed + (1 if pos != 0.0 else 0)
    out[O_N_OPEN] = 1 if pos != 0.0 else 0
    out[O_MEAN_R] = mean
    out[O_SUM_SQ_DEV] = max((sq + cq) - sum_r * mean, 0.0)
    out[O_MEAN_DOWN_SQ] = (sd + cd) / n
    out[O_MAX_DD] = -min_dd
    out[O_DD_BARS] = best_run
    out[O_N_WINS] = n_wins
    out[O_N_LOSSES] = n_losses
    out[O_WIN_SUM] = win_sum
    out[O_LOSS_SUM] = loss_sum
    out[O_PNL_SUM] = pnl_sum + pc
    out[O_BARS_SUM] = bars_sum
    out[O_MAX_CW] = max_cw
    out[O_MAX_CL] = max_cl
    out[O_EXPOSED] = exposed
    out[O_TRADED] = traded
    out[O_FEES] = fees_paid
    out[O_SLIP] = slip_paid
    out[O_MEAN_EQUITY] = (se + ce) / n
    out[O_REJ_SIZE] = rej_size
    out[O_REJ_CASH] = rej_cash


@njit(cache=True, parallel=True, error_model="numpy")
def cross_sweep_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    ma: np.ndarray,
    fast_row: np.ndarray,
    slow_row: np.ndarray,
    short: bool,
    fill: int,
    size_type: int,
    size: np.ndarray,
    slip: float,
    slip_vol_factor: float,
    init_cash: float,
    fee: float,
    max_leverage: float,
    order: np.ndarray,
) -> np.ndarray:
    """Every combination ``k`` crosses ``ma[fast_row[k]]`` with ``ma[slow_row[k]]``; returns the
    ``(n_combos, N_OUT)`` summaries. Combinations run in parallel (``prange``) in ``order`` (a
    permutation of ``0 .. n_combos - 1``): each thread gets one contiguous stretch of it, so an
    order that deals neighbouring combinations to different threads balances their work (see
    :func:`thread_order`)."""
    m = fast_row.shape[0]
    out = np.empty((m, N_OUT))
    for j in prange(m):
        k = order[j]
        cross_combo_nb(
            open_, high, low, close, ma[fast_row[k]], ma[slow_row[k]], short, fill, size_type, size, slip,
            slip_vol_factor, init_cash, fee, max_leverage, out[k],
        )
    return out


def thread_order(m: int, n_threads: int) -> np.ndarray:
    """``0 .. m - 1`` dealt round-robin to ``n_threads`` contiguous stretches (all ``k % T == 0``,
    then ``== 1``, ...). Neighbouring combinations of a grid cost about the same (a fast period
    near 5 trades far more often than one near 100), so each thread gets a fair share, and
    still walks its combinations in grid order (the same fast average stays in cache)."""
    t = max(1, int(n_threads))
    return np.concatenate([np.arange(c, m, t, dtype=np.int64) for c in range(t)])


@njit(cache=True, parallel=True)
def sma_rows_nb(close: np.ndarray, periods: np.ndarray, out: np.ndarray) -> None:
    """TA-Lib's simple moving average of ``close`` for each period, one row of ``out`` per
    period (NaN during warm-up), rows in parallel.

    TA-Lib's own running sum, term for term (add the new value, divide, drop the oldest), so the
    rows are bit-identical to ``talib.SMA`` (a test pins it) while a big grid's ~150 averages
    cost one pass on every core instead of ~150 wrapped library calls.
    """
    n = close.shape[0]
    for r in prange(periods.shape[0]):
        p = periods[r]
        row = out[r]
        total = 0.0
        for i in range(min(p - 1, n)):
            total += close[i]
            row[i] = np.nan
        for i in range(p - 1, n):
            total += close[i]
            row[i] = total / p
            total -= close[i - p + 1]
