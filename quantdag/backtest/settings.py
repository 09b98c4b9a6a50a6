"""Every knob of a backtest in one frozen, validated dataclass.

The defaults are the honest ones: fills at the next candle's open, 10 bps fee per side and
5 bps slippage against every order, long-only, all-in. The pipeline logs
:meth:`BacktestSettings.as_dict` to MLflow so each run says exactly how it was costed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from quantdag.backtest.enums import DIRECTIONS, FILLS
from quantdag.errors import ConfigurationError
from quantdag.timeframes import timeframe_ms

SIZINGS = ("all_in", "fixed_fraction", "fixed_notional", "atr_risk", "target_vol")
SLIPPAGE_MODELS = ("fixed", "volatility")


def _number(name: str, value: Any) -> float:
    if type(value) is float:  # the usual case, checked first: settings are built on every run()
        if value != value:
            raise ConfigurationError(f"{name} must not be NaN")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ConfigurationError(f"{name} must not be NaN")
    return value


def _in_range(
    name: str, value: Any, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> float:
    v = _number(name, value)
    below = v <= low if low_open else v < low
    above = v >= high if high_open else v > high
    if below or above:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise ConfigurationError(f"{name} must be in {lo}{low}, {high}{hi}, got {value!r}")
    return v


def _optional_fraction(name: str, value: Any) -> None:
    if value is not None:
        _in_range(name, value, 0.0, 1.0, low_open=True, high_open=True)


@dataclass(frozen=True)
class BacktestSettings:
    """How a backtest fills, costs, sizes and stops; validated on construction.

    Parameters
    ----------
    fill
        ``"next_open"`` (default): a signal on candle ``t`` (known at its close) fills at the open
        of ``t + 1``; a signal on the last candle never fills. ``"close"``: fills at the signal
        candle's own close, the convention of vectorbt's default and backtesting.py's
        ``trade_on_close`` -- useful to compare with them, optimistic for live trading.
    fee
        Fee as a fraction of traded value, charged on every fill (per side). 0.001 = 10 bps.
    slippage
        Fraction the fill price moves against every order (buys higher, sells lower).
    slippage_model
        ``"fixed"``: every fill slips by ``slippage``. ``"volatility"``: a fill inside candle ``i``
        slips by ``slippage + slippage_vol_factor * (high[i] - low[i]) / close[i]``.
    slippage_vol_factor
        Share of the candle's relative range added to the slippage in the volatility model.
    max_volume_share
        If set, at most this share of a candle's volume (base units) fills in that candle,
        over all fills in it. An entry or increase cut by the cap keeps the smaller size (the
        rest is cancelled); an exit cut by it leaves the rest open and keeps closing it at each
        following fill point, and no new entry happens until the position is flat. Cut fills
        and refused attempts are counted in the metrics (``n_capped_fills``,
        ``rejected_volume_cap``).
    init_cash
        Starting cash in quote currency.
    direction
        ``"long"``, ``"short"`` (``entries``/``exits`` then open/close shorts) or ``"both"``
        (``entries``/``exits`` for longs, ``short_entries``/``short_exits`` for shorts; an entry
        of the other side reverses the position at the same fill).
    sizing
        ``"all_in"``: all equity after the entry fee. ``"fixed_fraction"``: ``size`` of equity.
        ``"fixed_notional"``: ``size`` quote currency. ``"atr_risk"``: units such that a move of
        ``atr_mult * ATR(atr_period)`` costs ``risk_per_trade`` of equity. ``"target_vol"``:
        a fraction ``target_vol / realised_vol`` of equity, realised vol being the annualised
        standard deviation of the last ``vol_window`` log returns. ATR and volatility are read
        on the signal candle; while they are undefined (warm-up) no position opens (counted as
        ``rejected_size_zero``). Every mode is capped at ``max_leverage`` times equity. Target
        runs size by the target instead.
    size
        The fraction (``fixed_fraction``) or quote amount (``fixed_notional``); else unset.
    risk_per_trade, atr_period, atr_mult
        ATR risk sizing.
    target_vol, vol_window
        Volatility-target sizing: annualised target (e.g. 0.5 = 50 %) and look-back in candles.
    max_leverage
        Largest position notional as a multiple of equity; 1.0 means no borrowing. No margin
        calls are modelled: a short or leveraged account can end below zero.
    stop_loss, take_profit, trailing_stop
        Fractions from the average entry fill price (trailing: from the best price since entry)
        at which the position is closed intrabar; ``None`` = off. See :mod:`quantdag.backtest.nb`.
    timeframe
        Candle interval used to annualise metrics, e.g. ``"1h"``; ``None`` infers it from the
        median spacing of ``ts``.

    Raises
    ------
    ConfigurationError
        Naming the setting and value: unknown choice, out-of-range number, or a combination
        that cannot work (e.g. ``size`` without a sizing that reads it).
    """

    fill: str = "next_open"
    fee: float = 0.001
    slippage: float = 0.0005
    slippage_model: str = "fixed"
    slippage_vol_factor: float = 0.1
    max_volume_share: float | None = None
    init_cash: float = 10_000.0
    direction: str = "long"
    sizing: str = "all_in"
    size: float | None = None
    risk_per_trade: float = 0.01
    atr_period: int = 14
    atr_mult: float = 2.0
    target_vol: float | None = None
    vol_window: int = 30
    max_leverage: float = 1.0
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    timeframe: str | None = None

    def __post_init__(self) -> None:
        # a choice must be a str first: an unhashable value (a list) would make `in` raise TypeError
        for name, choices in (("fill", FILLS), ("direction", DIRECTIONS), ("sizing", SIZINGS),
                              ("slippage_model", SLIPPAGE_MODELS)):  # fmt: skip
            value = getattr(self, name)
            if not (isinstance(value, str) and value in choices):
                raise ConfigurationError(f"{name} must be one of {sorted(choices)}, got {value!r}")
        _in_range("fee", self.fee, 0.0, 1.0, high_open=True)
        _in_range("slippage", self.slippage, 0.0, 1.0, high_open=True)
        _in_range("slippage_vol_factor", self.slippage_vol_factor, 0.0, 1.0)
        if self.max_volume_share is not None:
            _in_range("max_volume_share", self.max_volume_share, 0.0, 1.0, low_open=True)
        init_cash = _number("init_cash", self.init_cash)
        if not (init_cash > 0.0 and math.isfinite(init_cash)):
            raise ConfigurationError(f"init_cash must be a finite number > 0, got {self.init_cash!r}")
        lev = _number("max_leverage", self.max_leverage)
        if not (lev > 0.0 and math.isfinite(lev)):
            raise ConfigurationError(f"max_leverage must be a finite number > 0, got {self.max_leverage!r}")
        self._check_sizing(lev)
        _optional_fraction("stop_loss", self.stop_loss)
        _optional_fraction("trailing_stop", self.trailing_stop)
        if self.take_profit is not None:
            tp = _number("take_profit", self.take_profit)
            if not (tp > 0.0 and math.isfinite(tp)):
                raise ConfigurationError(f"take_profit must be a finite number > 0, got {self.take_profit!r}")
        if self.timeframe is not None:
            timeframe_ms(self.timeframe)

    def _check_sizing(self, lev: float) -> None:
        if self.sizing in ("fixed_fraction", "fixed_notional"):
            if self.size is None:
                raise ConfigurationError(f"sizing={self.sizing!r} needs size (got None)")
            size = _number("size", self.size)
            if self.sizing == "fixed_fraction" and not 0.0 < size <= lev:
                raise ConfigurationError(
                    f"size for fixed_fraction must be in (0, max_leverage={lev}], got {self.size!r}"
                )
            if self.sizing == "fixed_notional" and not (size > 0.0 and math.isfinite(size)):
                raise ConfigurationError(f"size for fixed_notional must be a finite amount > 0, got {self.size!r}")
        elif self.size is not None:
            raise ConfigurationError(
                f"size={self.size!r} is only read by fixed_fraction/fixed_notional sizing, not {self.sizing!r}"
            )
        _in_range("risk_per_trade", self.risk_per_trade, 0.0, 1.0, low_open=True)
        for name in ("atr_period", "vol_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ConfigurationError(f"{name} must be an integer >= 2, got {value!r}")
        mult = _number("atr_mult", self.atr_mult)
        if not (mult > 0.0 and math.isfinite(mult)):
            raise ConfigurationError(f"atr_mult must be a finite number > 0, got {self.atr_mult!r}")
        if self.sizing == "target_vol":
            if self.target_vol is None:
                raise ConfigurationError("sizing='target_vol' needs target_vol (annualised, e.g. 0.5), got None")
        if self.target_vol is not None:
            tv = _number("target_vol", self.target_vol)
            if not (tv > 0.0 and math.isfinite(tv)):
                raise ConfigurationError(f"target_vol must be a finite number > 0, got {self.target_vol!r}")

    def as_dict(self) -> dict[str, Any]:
        """Every setting by name (``None`` for an unset option), e.g. for ``mlflow.log_params``."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> BacktestSettings:
        """A copy with ``changes`` applied and validated.

        Raises
        ------
        ConfigurationError
            If a name is not a setting, or the result is invalid.
        """
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigurationError(
                f"unknown backtest setting(s) {unknown}; known: {[f.name for f in dataclasses.fields(self)]}"
            )
        return dataclasses.replace(self, **changes)
