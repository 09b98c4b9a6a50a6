"""Warm-up (recursive) check: signals must not depend on where the history starts.

A strategy declares how many leading candles it needs before a signal can fire
(:attr:`Strategy.startup_candles`). Beyond that warm-up, its signals must be the same whether the
history it was given starts at candle 0 or later: a recursive indicator (an EMA, a position state
carried from the first candle) whose warm-up is under-declared gives different signals on a
backtest that starts elsewhere, so a backtest over the whole stored history and one over a shorter
window (a sweep, a walk-forward fold, a newly added market) disagree on the same candles. The
look-ahead check cannot see this: it cuts the *end* of the history, this check cuts its *start*.

Only the signal columns are compared (``entry``, ``exit``, the short pair, ``target``): an
indicator that converges (an EMA) may differ in its last digits for ever while its signals agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from quantdag.errors import ConfigurationError, StrategyError
from quantdag.strategies.base import Strategy
from quantdag.strategies.lookahead import LookaheadDifference, first_difference

#: The columns whose values a backtest acts on.
SIGNAL_COLUMNS = ("entry", "exit", "short_entry", "short_exit", "target")


@dataclass(frozen=True)
class WarmupReport:
    """Outcome of :func:`check_warmup`; ``ok`` is False if a start changed a signal past the warm-up."""

    strategy: str
    warmup: int
    rows: int
    starts: tuple[int, ...]
    differences: tuple[tuple[int, LookaheadDifference], ...] = field(default=())  # (start, difference)

    @property
    def ok(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        """Readable lines: what was checked, then the first differing column and candle per start."""
        head = (f"warm-up check of {self.strategy}: declared warm-up {self.warmup} candles, "
                f"{self.rows} candles, history started at rows {list(self.starts)}")  # fmt: skip
        if self.ok:
            return f"{head}\nOK: signals identical beyond the warm-up whatever the history start"
        lines = [head, f"WARM-UP: {len(self.differences)} start(s) changed signals beyond the declared warm-up"]
        for start, d in self.differences:
            lines.append(
                f"  - history from row {start}: column {d.column!r} at ts={d.ts} is {d.full_value!r} with the full "
                f"history but {d.other_value!r} (row {start + d.row}, {d.row} candles after that start); "
                "declare a longer startup_candles or make the indicator independent of the start"
            )
        return "\n".join(lines)

    def raise_for_difference(self) -> None:
        if not self.ok:
            raise StrategyError(self.summary())


def default_starts(n: int, warmup: int, count: int = 5) -> list[int]:
    """History starts to try: 1 and a few spread up to where ``2 * warmup + 20`` candles still remain."""
    last = n - (2 * warmup + 20)
    if last < 1:
        return []
    spread = {1, *(int(round(1 + i * (last - 1) / max(count - 1, 1))) for i in range(count))}
    return sorted(s for s in spread if 1 <= s <= last)


def check_warmup(
    strategy: Strategy,
    candles: pl.DataFrame,
    *,
    starts: Sequence[int] | None = None,
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> WarmupReport:
    """Compare ``strategy``'s signals on ``candles[s:]`` with those on all ``candles``, row for row,
    beyond ``strategy.startup_candles`` rows after each start ``s``.

    Raises
    ------
    ConfigurationError
        If ``candles`` are too few to leave candles beyond the warm-up for any start.
    """
    warmup = strategy.startup_candles
    n = candles.height
    chosen = sorted(set(starts)) if starts is not None else default_starts(n, warmup)
    if not chosen or any(s < 1 or s + warmup >= n for s in chosen):
        raise ConfigurationError(
            f"{strategy.name}: {n} candles leave none beyond the warm-up of {warmup} candles for the history "
            f"starts {list(chosen)}; give at least {2 * warmup + 21} candles"
        )
    full = strategy.signals(candles)
    columns = ["ts", *(c for c in SIGNAL_COLUMNS if c in full.columns)]
    diffs: list[tuple[int, LookaheadDifference]] = []
    for s in chosen:
        part = strategy.signals(candles.slice(s)).select(columns).slice(warmup)
        expected = full.select(columns).slice(s + warmup)
        d = first_difference(expected, part, check="prefix", cut=s, rtol=rtol, atol=atol)
        if d is not None:
            diffs.append((s, LookaheadDifference(d.check, s, warmup + d.row, d.ts, d.column, d.full_value, d.other_value, d.columns)))
    return WarmupReport(strategy.name, warmup, n, tuple(chosen), tuple(diffs))
