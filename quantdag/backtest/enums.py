"""Integer codes shared by the numba kernels, the API layer and the tests.

Kernels only see plain ints (numba folds module-level ints into constants); the API layer maps
the user's strings to these codes once, and :class:`ExitReason` maps the codes back to names in
``BacktestResult.trades``.
"""

from __future__ import annotations

from enum import IntEnum

# -- where a signal fills ---------------------------------------------------------------------
FILL_NEXT_OPEN = 0
FILL_CLOSE = 1
FILLS = {"next_open": FILL_NEXT_OPEN, "close": FILL_CLOSE}

# -- which sides may be held ------------------------------------------------------------------
DIR_LONG = 0
DIR_SHORT = 1
DIR_BOTH = 2
DIRECTIONS = {"long": DIR_LONG, "short": DIR_SHORT, "both": DIR_BOTH}

# -- what drives orders -----------------------------------------------------------------------
MODE_SIGNALS = 0
MODE_TARGET = 1

# -- how the per-bar ``size`` array is read when a position opens ------------------------------
SIZE_PERCENT = 0  # fraction of equity (after the entry fee)
SIZE_VALUE = 1  # quote-currency notional
SIZE_UNITS_PER_EQUITY = 2  # base units per unit of equity (ATR risk sizing)


class ExitReason(IntEnum):
    """Why a trade ended; the kernel writes the integer, ``.trades`` shows the lower-case name."""

    SIGNAL = 0
    STOP_LOSS = 1
    TAKE_PROFIT = 2
    TRAILING_STOP = 3
    END_OF_DATA = 4  # still open at the last candle: marked to market, flagged open
    REVERSE = 5  # closed by an entry signal of the opposite side


EXIT_SIGNAL = int(ExitReason.SIGNAL)
EXIT_STOP_LOSS = int(ExitReason.STOP_LOSS)
EXIT_TAKE_PROFIT = int(ExitReason.TAKE_PROFIT)
EXIT_TRAILING_STOP = int(ExitReason.TRAILING_STOP)
EXIT_END_OF_DATA = int(ExitReason.END_OF_DATA)
EXIT_REVERSE = int(ExitReason.REVERSE)
EXIT_NONE = -1

# -- columns of the kernel's float64 trade records --------------------------------------------
T_ENTRY_IDX = 0  # bar of the first entry fill
T_EXIT_IDX = 1  # bar of the last exit fill (last bar for an open trade)
T_SIDE = 2  # +1 long, -1 short
T_SIZE = 3  # base units entered in total
T_ENTRY_PRICE = 4  # size-weighted average entry fill price (slippage included)
T_EXIT_PRICE = 5  # size-weighted average exit fill price; last close for an open trade
T_FEES = 6  # fees paid on every fill of the trade
T_SLIPPAGE = 7  # slippage cost of every fill of the trade
T_PNL = 8  # side * (exit value - entry value) - fees
T_RETURN = 9  # pnl / entry value
T_REASON = 10  # ExitReason code
T_OPEN = 11  # 1.0 if still open at the end
N_TRADE_FIELDS = 12

# -- the kernel's summary array ---------------------------------------------------------------
S_FINAL_EQUITY = 0
S_CASH = 1
S_POSITION = 2
S_N_TRADES = 3  # closed + open; may exceed the rows of a too-small trade buffer
S_FEES = 4
S_SLIPPAGE = 5
S_TRADED_VALUE = 6  # sum of |units * fill price| over all fills
S_N_FILLS = 7
S_N_MARKS = 8  # rows written to the marks buffer
# orders the kernel could not place (counted where it refuses them, one per attempt); see the
# ``n_rejected`` rows of :mod:`quantdag.backtest.metrics`
S_REJ_SIZE = 9  # entries whose size is not positive: zero, rounded to nothing, or NaN (warm-up)
S_REJ_CASH = 10  # entries refused because equity (the cash, when flat) is not positive
S_REJ_VOLUME = 11  # fill attempts the volume cap refused entirely (nothing left in the candle)
S_CAPPED = 12  # fills the volume cap cut short (partly filled; not a rejection)
N_STATS = 13

# -- columns of the kernel's account marks (one row per bar whose cash/position may have changed)
M_BAR = 0  # the bar, marked at its close
M_CASH = 1  # cash after the bar
M_POS = 2  # signed units after the bar
N_MARK_FIELDS = 3
