"""Market regimes (trend vs range, high vs low volatility) and a regime-aware MA crossover.

The classifier labels each closed candle with one of :data:`REGIMES`:

* **trend vs range** from ADX (trend strength, not direction): ``adx >= adx_threshold`` is trend;
* **high vs low volatility** from realised volatility (rolling standard deviation of log returns)
  ranked against its own trailing ``rank_window`` values: above the ``vol_split`` percentile is
  high. A percentile over the *whole sample* would be look-ahead (the median of March decides a
  label in January), so the rank only ever looks back.

Each candle's label therefore uses candles ``<= t`` only, is null until every input is warm, and
:meth:`RegimeClassifier.classify` returns it as a table of its own (``ts``, ``adx``,
``realized_vol``, ``vol_pct``, ``regime``) for storage and inspection.

Realised volatility is computed here rather than in :mod:`quantdag.indicators`, which has no
such function yet; it is a plain rolling statistic, not a TA-Lib indicator.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from quantdag import indicators as ind
from quantdag.errors import ConfigurationError
from quantdag.strategies.base import Strategy, crossed_above, crossed_below, position_state, register
from quantdag.strategies.ma_cross import MA_TYPES, average_settle, moving_average
from quantdag.strategies.params import BoolParam, ChoiceParam, FloatParam, IntParam, less_than

#: Every label the classifier emits; null means "not yet known" (warm-up).
REGIMES = ("trend_high_vol", "trend_low_vol", "range_high_vol", "range_low_vol")


def realized_volatility(close: pl.Expr, window: int) -> pl.Expr:
    """Per-candle (not annualised) sample std of log returns over the last ``window`` returns."""
    return close.log().diff().rolling_std(window_size=window, min_samples=window)


def trailing_percentile(values: pl.Expr, window: int) -> pl.Expr:
    """Mid-rank percentile in (0, 1) of each value among the last ``window`` values (itself included).

    Ties take their average rank; null until ``window`` non-null values are available.
    """
    return (values.rolling_rank(window_size=window, method="average", min_samples=window) - 0.5) / window


@dataclass(frozen=True)
class RegimeClassifier:
    """Settings of the regime classifier, validated on construction.

    Parameters
    ----------
    adx_period
        ADX period in candles.
    adx_threshold
        ADX at or above which the market is trending (25 is Wilder's usual line).
    vol_window
        Log returns per realised-volatility estimate.
    rank_window
        Trailing realised-volatility values each one is ranked against.
    vol_split
        Percentile in [0, 1] above which volatility counts as high (0.5 = above trailing median).
    """

    adx_period: int = 14
    adx_threshold: float = 25.0
    vol_window: int = 24
    rank_window: int = 250
    vol_split: float = 0.5

    def __post_init__(self) -> None:
        checks = {
            "adx_period": isinstance(self.adx_period, int) and self.adx_period >= 2,
            "adx_threshold": isinstance(self.adx_threshold, (int, float)) and 0.0 <= self.adx_threshold <= 100.0,
            "vol_window": isinstance(self.vol_window, int) and self.vol_window >= 2,
            "rank_window": isinstance(self.rank_window, int) and self.rank_window >= 2,
            "vol_split": isinstance(self.vol_split, (int, float)) and 0.0 <= self.vol_split <= 1.0,
        }
        for name, ok in checks.items():
            if not ok or isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"regime classifier: invalid {name} = {getattr(self, name)!r}")

    @property
    def warmup(self) -> int:
        """Index of the first candle that can get a label (earlier ones are null)."""
        return max(2 * self.adx_period - 1, self.vol_window + self.rank_window - 1)

    @property
    def settled(self) -> int:
        """Index from which a label no longer depends on where the history starts: the rolling
        volatility rank is a fixed window, but ADX is Wilder-smoothed twice (recursive)."""
        adx = ind.wilder_settle(self.adx_period, first=2 * self.adx_period - 1, stages=2)
        return max(adx, self.vol_window + self.rank_window - 1)

    def columns(self, candles: pl.DataFrame) -> list[pl.Series]:
        """``adx``, ``realized_vol``, ``vol_pct`` and ``regime`` Series for ``candles``."""
        adx = ind.to_series("adx", ind.adx(candles["high"], candles["low"], candles["close"], self.adx_period))
        vol = candles.select(
            realized_vol=realized_volatility(pl.col("close"), self.vol_window)
        ).with_columns(vol_pct=trailing_percentile(pl.col("realized_vol"), self.rank_window))
        trend = pl.when(pl.col("adx") >= self.adx_threshold).then(pl.lit("trend")).otherwise(pl.lit("range"))
        level = pl.when(pl.col("vol_pct") > self.vol_split).then(pl.lit("_high_vol")).otherwise(pl.lit("_low_vol"))
        labelled = vol.with_columns(adx).select(
            "adx",
            "realized_vol",
            "vol_pct",
            # a null input leaves the label null: the concatenation propagates it
            regime=pl.when(pl.col("adx").is_not_null() & pl.col("vol_pct").is_not_null()).then(trend + level),
        )
        return labelled.get_columns()

    def classify(self, candles: pl.DataFrame) -> pl.DataFrame:
        """The regime table: ``ts``, ``adx``, ``realized_vol``, ``vol_pct``, ``regime`` (String).

        ``candles`` needs ``ts``, ``high``, ``low`` and ``close``.
        """
        return pl.DataFrame([candles["ts"], *self.columns(candles)])


def classify_regime(candles: pl.DataFrame, **settings: float) -> pl.DataFrame:
    """Shortcut for ``RegimeClassifier(**settings).classify(candles)``."""
    return RegimeClassifier(**settings).classify(candles)  # type: ignore[arg-type]


@register
class RegimeMaCross(Strategy):
    """MA crossover whose entries are gated, and whose size is scaled, by the market regime.

    Trend-following crossovers whipsaw in ranges, so by default entries are only taken in trend
    regimes (``trade_range=False``); ``trade_high_vol`` allows or forbids them in high
    volatility. Exits are never gated: a position is always closed on the cross down, or once it
    is ``max_hold`` candles old. While a position is held, ``target`` is 1.0 in low volatility
    and ``high_vol_size`` in high volatility, for the engine's target-position mode.

    Why ``max_hold``: whether a position is held depends on whether the crossover that opened it
    was in an allowed regime, and an up-trend can last any number of candles, so without a limit
    the position at ``t`` would hinge on a candle arbitrarily far back -- on where the history
    starts (a backtest from another date would hold different positions on the same candles).
    Re-deriving the position from the last ``max_hold`` candles (a time stop) bounds that: the
    signals are identical on every history longer than :attr:`startup_candles`. The default (500
    candles) is longer than any up-trend of the 10/50 crossover seen on BTC 5m and 1h candles.

    Output columns: ``entry``, ``exit``, ``target`` (in [0, 1]); ``raw_entry`` (the ungated
    crossover), ``size`` (regime scale), ``fast_ma``, ``slow_ma``, ``adx``, ``realized_vol``,
    ``vol_pct`` and ``regime`` (one of :data:`REGIMES`, null during warm-up; no entry then).
    """

    name = "regime_ma"
    required_columns = ("high", "low", "close")
    fast = IntParam(10, low=1, high=1000, step=5, search=(5, 50), description="fast moving-average period (candles)")
    slow = IntParam(50, low=2, high=5000, step=10, search=(20, 200), description="slow moving-average period (candles)")
    ma_type = ChoiceParam("sma", choices=MA_TYPES, description="kind of moving average: 'sma' or 'ema'")
    adx_period = IntParam(14, low=2, high=200, step=2, search=(10, 20), description="ADX period (candles)")
    adx_threshold = FloatParam(
        25.0, low=0.0, high=100.0, step=5.0, search=(15.0, 35.0), description="ADX at or above which the market trends"
    )
    vol_window = IntParam(24, low=2, high=5000, step=12, search=(12, 48), description="returns per realised-vol estimate")
    rank_window = IntParam(
        250, low=10, high=20000, step=100, search=(100, 500), description="trailing candles realised vol is ranked against"
    )
    vol_split = FloatParam(
        0.5, low=0.0, high=1.0, step=0.1, search=(0.3, 0.8), description="percentile above which volatility is high"
    )
    trade_range = BoolParam(False, description="allow entries in range (ADX below threshold) regimes")
    trade_high_vol = BoolParam(True, description="allow entries in high-volatility regimes")
    high_vol_size = FloatParam(
        0.5, low=0.0, high=1.0, step=0.25, search=(0.25, 1.0), description="target size while volatility is high"
    )
    max_hold = IntParam(
        500, low=1, high=100_000, step=100, optimize=False,
        description="candles after which a position is closed (bounds how far back a position's entry is looked for)",
    )  # fmt: skip
    constraints = (less_than("fast", "slow"),)

    @property
    def classifier(self) -> RegimeClassifier:
        """The regime classifier these parameters describe."""
        return RegimeClassifier(self.adx_period, self.adx_threshold, self.vol_window, self.rank_window, self.vol_split)

    @property
    def allowed_regimes(self) -> tuple[str, ...]:
        """Regimes in which entries are taken."""
        return tuple(
            r
            for r in REGIMES
            if (self.trade_range or r.startswith("trend")) and (self.trade_high_vol or r.endswith("low_vol"))
        )

    @property
    def startup_candles(self) -> int:
        # every event of the last max_hold candles on settled indicators (a cross needs one more)
        return max(average_settle(self.slow, self.ma_type) + 1, self.classifier.settled) + self.max_hold

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        close = candles["close"]
        return candles.with_columns(
            ind.to_series("fast_ma", moving_average(close, self.fast, self.ma_type)),
            ind.to_series("slow_ma", moving_average(close, self.slow, self.ma_type)),
            *self.classifier.columns(candles),
        )

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        fast, slow, regime = pl.col("fast_ma"), pl.col("slow_ma"), pl.col("regime")
        allowed = regime.is_in(list(self.allowed_regimes)).fill_null(False)
        size = (
            pl.when(regime.is_null())
            .then(pl.lit(0.0))
            .when(regime.str.ends_with("high_vol"))
            .then(pl.lit(self.high_vol_size))
            .otherwise(pl.lit(1.0))
        )
        held = position_state(pl.col("entry"), pl.col("cross_down"), within=self.max_hold)
        return (
            frame.with_columns(raw_entry=crossed_above(fast, slow), cross_down=crossed_below(fast, slow), size=size)
            .with_columns(entry=pl.col("raw_entry") & allowed)
            .with_columns(held_state=held)
            # the time stop closes a position without a cross: it is an exit too (signal mode agrees with target mode)
            .with_columns(exit=pl.col("cross_down") | ((pl.col("held_state") == 0) & (pl.col("held_state").shift(1) == 1)).fill_null(False))
            .with_columns(target=pl.col("held_state").cast(pl.Float64) * pl.col("size"))
            .drop("held_state", "cross_down")
        )
