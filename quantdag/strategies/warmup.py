"""Warm-up (recursive) check: signals must not depend on where the history starts.

A strategy declares how many leading candles it needs before its output is trustworthy
(:attr:`Strategy.startup_candles`). Beyond that warm-up, its output must be the same whether the
history it was given starts at candle 0 or later: a recursive indicator (an EMA, a position state
carried from the first candle) whose warm-up is under-declared gives different signals on a
backtest that starts elsewhere, so a backtest over the whole stored history and one over a shorter
window (a sweep, a walk-forward fold, a newly added market, ``quantdag backtest --from``) disagree
on the same candles. The look-ahead check cannot see this: it cuts the *end* of the history, this
check cuts its *start*. It is freqtrade's ``recursive-analysis`` (which compares indicator values
for several ``startup_candle_count``) turned into a pass/fail test on the signals themselves.

What is compared, for each history start ``s``, on every candle from ``s + startup_candles`` on:

* **every output column**. Signals (``entry``/``exit``, the short pair) and every non-float
  column (a regime label, a member's vote) must be identical. Float columns (indicators and
  ``target``) may differ by at most ``rtol`` of the column's scale (its largest absolute value
  over the compared candles): a recursive indicator such as an EMA never forgets its seed
  exactly, its start-up error only decays as ``(1 - alpha)^n``, so exact equality is impossible
  in principle. The default ``rtol`` is :data:`~quantdag.indicators.SETTLE_RTOL` (1e-6), the
  tolerance the built-ins' ``startup_candles`` are computed for
  (:func:`~quantdag.indicators.ema_settle`, :func:`~quantdag.indicators.wilder_settle`): a
  declared warm-up shorter than the indicator's convergence shows as an indicator difference
  beyond the tolerance, and fails.
* **a tie is a warning, not a failure.** Because converged indicators still differ by float
  noise below ``rtol``, a comparison decided by an even smaller margin (an EMA crossing where
  fast and slow are within 1e-9 of each other) can come out differently on two histories, and
  no warm-up, however long, rules that out. Such a flip is told apart from real start-dependence
  by asking whether the *full* history's own output at that candle is that fragile: the check
  recomputes the full history :data:`TIE_TRIALS` times with every input value multiplied by
  ``1 + rtol * N(0, 1)`` (noise of the tolerance's size) and if one of them gives the shortened
  history's value at that candle and column, the difference is a **tie**: reported with the size
  of the indicator differences that caused it, ``ok`` stays True. A state carried from before
  the warm-up (a position entered earlier) or an under-converged indicator does not move under
  noise that small, so it stays a failure. After a tie the rest of that start is not compared
  (a flipped entry changes the position that follows); the other starts still cover the history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from quantdag.errors import ConfigurationError, StrategyError
from quantdag.indicators import SETTLE_RTOL
from quantdag.strategies.base import Strategy
from quantdag.strategies.lookahead import LookaheadDifference, first_difference

#: The columns whose values a backtest acts on.
SIGNAL_COLUMNS = ("entry", "exit", "short_entry", "short_exit", "target")
#: Recomputations of the full history under noise that decide whether a difference is a tie.
TIE_TRIALS = 8
_OHLC = ("open", "high", "low", "close")


@dataclass(frozen=True)
class WarmupFinding:
    """One history start whose output differed beyond the warm-up.

    ``size`` is the largest difference of a float indicator column (not ``target``) up to that
    candle, relative to the column's scale: the noise behind a tie, or an unconverged indicator.
    """

    start: int
    difference: LookaheadDifference
    size: float

    def describe(self) -> str:
        d = self.difference
        return (f"history from row {self.start}: column {d.column!r} at ts={d.ts} is {d.full_value!r} with the full "
                f"history but {d.other_value!r} (row {self.start + d.row}, {d.row} candles after that start); "
                f"float indicators differ by up to {self.size:.3g} of their scale there")  # fmt: skip


@dataclass(frozen=True)
class WarmupReport:
    """Outcome of :func:`check_warmup`; ``ok`` is False if a start changed the output past the warm-up
    beyond the tolerance (``differences``); ``ties`` are warnings (see the module docstring)."""

    strategy: str
    warmup: int
    rows: int
    starts: tuple[int, ...]
    differences: tuple[WarmupFinding, ...] = field(default=())
    ties: tuple[WarmupFinding, ...] = field(default=())
    rtol: float = SETTLE_RTOL

    @property
    def ok(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        """Readable lines: what was checked, then the first differing column and candle per start."""
        head = (f"warm-up check of {self.strategy}: declared warm-up {self.warmup} candles, "
                f"{self.rows} candles, history started at rows {list(self.starts)}, "
                f"float tolerance {self.rtol:g} of each column's scale")  # fmt: skip
        lines = [head]
        if self.ok:
            lines.append("OK: signals identical beyond the warm-up whatever the history start"
                         + (f" ({len(self.ties)} tie(s) within the tolerance, see below)" if self.ties else ""))  # fmt: skip
        else:
            lines.append(f"WARM-UP: {len(self.differences)} start(s) changed the output beyond the declared warm-up")
            lines += [f"  - {f.describe()}; declare a longer startup_candles or make the indicator independent "
                      "of the start" for f in self.differences]  # fmt: skip
        lines += [f"  warning (tie): {f.describe()}; the full history's own value flips under noise of "
                  f"{self.rtol:g}, so the candle is decided by less than the tolerance, not by the start" for f in self.ties]  # fmt: skip
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


def jitter(candles: pl.DataFrame, rtol: float, rng: np.random.Generator) -> pl.DataFrame:
    """``candles`` with every float value multiplied by ``1 + rtol * N(0, 1)``: one factor per row for
    OHLC (so high >= open, close >= low still holds), independent ones for other float columns."""
    n = candles.height
    row = 1.0 + rtol * rng.standard_normal(n)
    updates = []
    for name, dtype in candles.schema.items():
        if name != "ts" and dtype.is_float():
            factor = row if name in _OHLC else 1.0 + rtol * rng.standard_normal(n)
            updates.append((candles[name] * pl.Series(factor)).cast(dtype).alias(name))
    return candles.with_columns(updates)


def _scales(frame: pl.DataFrame) -> dict[str, float]:
    """Each float column's largest finite absolute value (1.0 when none is nonzero)."""
    out = {}
    for c, dtype in frame.schema.items():
        if dtype.is_float():
            top = frame.select(pl.col(c).abs().filter(pl.col(c).is_finite()).max()).item()
            out[c] = float(top) if top else 1.0
    return out


def _scaled(frame: pl.DataFrame, scales: dict[str, float]) -> pl.DataFrame:
    return frame.with_columns([(pl.col(c) / s).alias(c) for c, s in scales.items() if c in frame.columns])


def _largest_float_gap(expected: pl.DataFrame, actual: pl.DataFrame, scales: dict[str, float], rows: int) -> float:
    """Largest relative difference of a float indicator column (not ``target``) over the first ``rows + 1`` compared candles."""
    gaps = [0.0]
    for c, s in scales.items():
        if c not in SIGNAL_COLUMNS and c in actual.columns and actual[c].dtype == expected[c].dtype:
            a, b = expected[c].head(rows + 1), actual[c].head(rows + 1)
            gap = ((a - b).abs() / s).filter((a - b).abs().is_finite()).max()
            gaps.append(float(gap) if gap is not None else 0.0)
    return max(gaps)


def _same(a: object, b: object, scale: float | None, rtol: float) -> bool:
    if a is None or b is None or scale is None:
        return a == b
    fa, fb = float(a), float(b)  # type: ignore[arg-type]
    return (math.isnan(fa) and math.isnan(fb)) or abs(fa - fb) <= rtol * scale


def _is_tie(strategy: Strategy, candles: pl.DataFrame, row: int, column: str, value: object,
            scale: float | None, rtol: float, rng: np.random.Generator) -> bool:  # fmt: skip
    """True if the full history's output at ``row``/``column`` becomes ``value`` under noise of ``rtol``."""
    for _ in range(TIE_TRIALS):
        out = strategy.signals(jitter(candles, rtol, rng))
        if column in out.columns and _same(out[column][row], value, scale, rtol):
            return True
    return False


def check_warmup(
    strategy: Strategy,
    candles: pl.DataFrame,
    *,
    starts: Sequence[int] | None = None,
    rtol: float = SETTLE_RTOL,
    seed: int = 0,
) -> WarmupReport:
    """Compare ``strategy``'s output on ``candles[s:]`` with that on all ``candles``, row for row,
    beyond ``strategy.startup_candles`` rows after each start ``s`` (see the module docstring).

    Parameters
    ----------
    rtol
        Tolerance of float columns, relative to each column's largest absolute value; also the
        size of the noise that tells a tie from a real dependence on the start.
    seed
        Seed of that noise (the check is reproducible).

    Raises
    ------
    ConfigurationError
        If ``candles`` are too few to leave candles beyond the warm-up for any start.
    """
    if not 0.0 < rtol < 1.0:
        raise ConfigurationError(f"{strategy.name}: rtol must be in (0, 1), got {rtol!r}")
    warmup = strategy.startup_candles
    n = candles.height
    chosen = sorted(set(starts)) if starts is not None else default_starts(n, warmup)
    if not chosen or any(s < 1 or s + warmup >= n for s in chosen):
        raise ConfigurationError(
            f"{strategy.name}: {n} candles leave none beyond the warm-up of {warmup} candles for the history "
            f"starts {list(chosen)}; give at least {2 * warmup + 21} candles"
        )
    full = strategy.signals(candles)
    rng = np.random.default_rng(seed)
    errors: list[WarmupFinding] = []
    ties: list[WarmupFinding] = []
    for s in chosen:
        part = strategy.signals(candles.slice(s)).slice(warmup)
        expected = full.slice(s + warmup)
        scales = _scales(expected)
        # floats compared in units of their column's scale; the exact values are reported
        d = first_difference(_scaled(expected, scales), _scaled(part, scales), check="prefix", cut=s, rtol=0.0, atol=rtol)
        if d is None:
            continue
        full_value = expected[d.column][d.row] if d.column in expected.columns else d.full_value
        other_value = part[d.column][d.row] if d.column in part.columns else d.other_value
        d = replace(d, row=warmup + d.row, full_value=full_value, other_value=other_value)
        finding = WarmupFinding(s, d, _largest_float_gap(expected, part, scales, d.row - warmup))
        tie = other_value != "<missing column>" and _is_tie(
            strategy, candles, s + d.row, d.column, other_value, scales.get(d.column), rtol, rng
        )
        (ties if tie else errors).append(finding)
    return WarmupReport(strategy.name, warmup, n, tuple(chosen), tuple(errors), tuple(ties), rtol)
