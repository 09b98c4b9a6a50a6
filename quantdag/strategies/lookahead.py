"""Look-ahead detection: a strategy's past output must not depend on later candles.

Two complementary probes, both comparing every output column (signals *and* indicators) on the
rows that exist in both runs:

* **prefixes** – recompute on ``candles[:k]`` for many cut points ``k``; a ``shift(-1)`` shows
  on the prefix's last row, a full-sample statistic (mean, quantile, normalisation) shows almost
  everywhere. Every prefix is O(n²), so by default about 50 cut points are used (spread over the
  history plus the last five lengths, where a one-candle peek shows); ``prefixes="all"`` checks
  every one for short frames.
* **perturbation** – recompute after replacing the future from a random cut point on with a
  different but plausible path (a random walk applied to OHLC, noise on the other numeric
  columns); rows before the cut must not move.

Exact floating-point equality would flag harmless reordering of sums, so floats are compared
with a tight tolerance (``rtol=1e-9``); nulls must match exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from quantdag.errors import ConfigurationError, StrategyError
from quantdag.strategies.base import Strategy

CheckKind = Literal["prefix", "perturb"]
_OHLC = ("open", "high", "low", "close")
_TAIL = 5  # prefixes ending this close to the end are always checked


@dataclass(frozen=True)
class LookaheadDifference:
    """The earliest row where one recomputation disagreed with the full-history run."""

    check: CheckKind
    cut: int  # prefix length, or index of the first perturbed candle
    row: int
    ts: Any
    column: str
    full_value: Any
    other_value: Any
    columns: tuple[str, ...]  # every column that differed in this recomputation

    def describe(self) -> str:
        """One line for humans."""
        if self.check == "prefix":
            what, other = f"prefix of length {self.cut}", "on the prefix"
        else:
            what, other = f"future perturbed from row {self.cut} on", "with the perturbed future"
        others = f" (also: {', '.join(c for c in self.columns if c != self.column)})" if len(self.columns) > 1 else ""
        return (
            f"{what}: column {self.column!r} at ts={self.ts} (row {self.row}) is {self.full_value!r} "
            f"with the full history but {self.other_value!r} {other}{others}"
        )


@dataclass(frozen=True)
class LookaheadReport:
    """Outcome of :func:`check_lookahead`; ``ok`` is False if any past value changed."""

    strategy: str
    params: Mapping[str, Any]
    rows: int
    prefixes_checked: int
    perturbations_checked: int
    differences: tuple[LookaheadDifference, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when no recomputation changed a past signal or indicator."""
        return not self.differences

    @property
    def first(self) -> LookaheadDifference | None:
        """The difference at the earliest timestamp (ties: the first check run)."""
        return min(self.differences, key=lambda d: d.row) if self.differences else None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column that changed in some recomputation, in order of first appearance."""
        seen: dict[str, None] = {}
        for d in self.differences:
            seen.update(dict.fromkeys(d.columns))
        return tuple(seen)

    def summary(self) -> str:
        """A readable, multi-line report (what the CLI prints)."""
        head = (
            f"strategy {self.strategy} {dict(self.params)}: {self.rows} candles, "
            f"{self.prefixes_checked} prefixes and {self.perturbations_checked} perturbed futures checked"
        )
        if self.ok:
            return f"{head}\nOK: no look-ahead detected"
        first = self.first
        assert first is not None
        lines = [
            head,
            f"LOOK-AHEAD: {len(self.differences)} recomputation(s) changed past values in column(s) {list(self.columns)}",
            f"first: {first.describe()}",
        ]
        lines += [f"  - {d.describe()}" for d in self.differences[:10]]
        if len(self.differences) > 10:
            lines.append(f"  ... and {len(self.differences) - 10} more")
        return "\n".join(lines)

    def raise_for_lookahead(self) -> None:
        """Raise :class:`StrategyError` with :meth:`summary` if look-ahead was found."""
        if not self.ok:
            raise StrategyError(self.summary())


def cut_points(n: int, prefixes: int | Literal["all"] | Sequence[int]) -> list[int]:
    """Prefix lengths to check for a frame of ``n`` candles (each in ``[1, n - 1]``).

    An int asks for about that many: evenly spread, plus the last :data:`_TAIL` lengths.
    """
    if n < 2:
        return []
    if isinstance(prefixes, str):
        if prefixes != "all":
            raise ConfigurationError(f"prefixes must be an int, 'all' or a list of lengths, got {prefixes!r}")
        return list(range(1, n))
    if isinstance(prefixes, (int, np.integer)) and not isinstance(prefixes, bool):
        if prefixes < 1:
            raise ConfigurationError(f"prefixes must be >= 1, got {prefixes}")
        spread = np.linspace(1, n - 1, num=max(prefixes - _TAIL, 1)).round().astype(int).tolist()
        return sorted({*spread, *range(max(1, n - _TAIL), n)})
    points = sorted({int(k) for k in prefixes})
    if points and not 1 <= points[0] <= points[-1] <= n - 1:
        raise ConfigurationError(f"prefix lengths must be in [1, {n - 1}], got {points[0]}..{points[-1]}")
    return points


def perturb_future(candles: pl.DataFrame, start: int, rng: np.random.Generator) -> pl.DataFrame:
    """``candles`` with rows ``>= start`` replaced by a different, still valid, future.

    OHLC of each future row are scaled by one factor from a random walk (so high >= open/close
    >= low still holds and trends change); other numeric columns get independent noise.
    """
    m = candles.height - start
    if m <= 0:
        return candles
    walk = np.exp(np.cumsum(rng.normal(0.0, 0.02, m)) + rng.normal(0.0, 0.05))
    factor = np.concatenate([np.ones(start), walk])
    noise = np.concatenate([np.ones(start), np.exp(rng.normal(0.0, 0.5, m))])
    updates = []
    for name, dtype in candles.schema.items():
        if name == "ts" or not dtype.is_numeric():
            continue
        scale = factor if name in _OHLC else noise
        col = candles[name].cast(pl.Float64) * pl.Series(scale)
        updates.append((col.round(0) if dtype.is_integer() else col).cast(dtype).alias(name))
    return candles.with_columns(updates)


def _differs(a: pl.Expr, b: pl.Expr, is_float: bool, rtol: float, atol: float) -> pl.Expr:
    same = a.eq_missing(b)
    if is_float:
        close = ((a - b).abs() <= atol + rtol * b.abs()).fill_null(False)
        same = same | close | (a.is_nan() & b.is_nan()).fill_null(False)
    return ~same


def first_difference(
    expected: pl.DataFrame, actual: pl.DataFrame, *, check: CheckKind, cut: int, rtol: float = 1e-9, atol: float = 1e-12
) -> LookaheadDifference | None:
    """Earliest disagreement between two output frames over ``expected``'s rows, or None."""
    rows = expected.height
    actual = actual.head(rows)
    shared = [c for c in expected.columns if c in actual.columns and actual[c].dtype == expected[c].dtype]
    changed = [c for c in expected.columns if c not in shared] + [c for c in actual.columns if c not in expected.columns]
    best: tuple[int, str] | None = (0, changed[0]) if changed else None
    if shared and rows:
        # one query for all columns: the first differing row of each (null when none differs)
        pairs = pl.concat(
            [
                expected.select([pl.col(c).alias(f"a{i}") for i, c in enumerate(shared)]),
                actual.select([pl.col(c).alias(f"b{i}") for i, c in enumerate(shared)]),
            ],
            how="horizontal",
        )
        firsts = pairs.select(
            pl.arg_where(
                _differs(pl.col(f"a{i}"), pl.col(f"b{i}"), expected[c].dtype.is_float(), rtol, atol)
            ).first().alias(f"a{i}")
            for i, c in enumerate(shared)
        ).row(0)
        for c, row in zip(shared, firsts, strict=True):
            if row is not None:
                changed.append(c)
                if best is None or row < best[0]:
                    best = (int(row), c)
    if best is None:
        return None
    row, column = best
    ts = expected["ts"][row] if rows else None
    full = expected[column][row] if column in expected.columns and rows else "<missing column>"
    other = actual[column][row] if column in actual.columns and rows else "<missing column>"
    order = {c: i for i, c in enumerate([*expected.columns, *actual.columns])}
    return LookaheadDifference(check, cut, row, ts, column, full, other, tuple(sorted(set(changed), key=order.get)))


def check_lookahead(
    strategy: Strategy,
    candles: pl.DataFrame,
    *,
    prefixes: int | Literal["all"] | Sequence[int] = 50,
    perturb: bool = True,
    perturbations: int = 5,
    seed: int = 0,
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> LookaheadReport:
    """Check that ``strategy``'s output on every row depends on that row and earlier ones only.

    Parameters
    ----------
    strategy
        A built strategy instance (any :class:`Strategy`, registered or not).
    candles
        Closed candles, as for :meth:`Strategy.signals`; a few thousand are plenty.
    prefixes
        Number of prefix cut points (default 50), ``"all"`` for every prefix (O(n²): short
        frames only) or explicit prefix lengths.
    perturb
        Also recompute with the future perturbed after random cut points.
    perturbations
        Number of perturbed futures; the last one always perturbs only the final candle.
    seed
        Seed of the perturbation cut points and paths (the check is reproducible).
    rtol, atol
        Float tolerance; nulls and non-float values must match exactly.

    Returns
    -------
    LookaheadReport
        ``ok`` is False, with the first differing timestamp and column, if any past value
        changed. Errors of the strategy itself (e.g. on a short prefix) propagate.
    """
    if not isinstance(strategy, Strategy):
        raise ConfigurationError(f"check_lookahead needs a Strategy instance, got {type(strategy).__name__}")
    if perturbations < 0:
        raise ConfigurationError(f"perturbations must be >= 0, got {perturbations}")
    full = strategy.signals(candles)
    n = candles.height
    differences: list[LookaheadDifference] = []
    points = cut_points(n, prefixes)
    for k in points:
        diff = first_difference(full.head(k), strategy.signals(candles.head(k)), check="prefix", cut=k, rtol=rtol, atol=atol)
        if diff is not None:
            differences.append(diff)
    starts: list[int] = []
    if perturb and n >= 2 and perturbations:
        rng = np.random.default_rng(seed)
        starts = sorted({*rng.integers(1, n - 1, size=perturbations - 1, endpoint=True).tolist(), n - 1})
        for start in starts:
            other = strategy.signals(perturb_future(candles, start, rng))
            diff = first_difference(full.head(start), other, check="perturb", cut=start, rtol=rtol, atol=atol)
            if diff is not None:
                differences.append(diff)
    return LookaheadReport(strategy.name, strategy.params, n, len(points), len(starts), tuple(differences))
