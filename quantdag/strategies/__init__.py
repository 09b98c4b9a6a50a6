"""Trading strategies: typed parameters, vectorised signals, a registry and look-ahead checks.

Importing this package registers the built-in strategies:

=============  =====================================================================
name           what it does
=============  =====================================================================
``sma_cross``  fast/slow moving-average crossover, SMA by default (``ma_type``)
``ema_cross``  the same with EMA by default
``rsi``        RSI leaves oversold -> enter; crosses overbought (or mid) -> exit
``macd``       MACD/signal-line crossover with an optional histogram band
``regime_ma``  MA crossover gated and sized by the trend/volatility regime
``sentiment``  news/social sentiment past a threshold, or faded when extreme (contrarian)
``consensus``  majority / weighted / unanimous vote of registered strategies
``ml_model``   a registered ML model's P(up) above a threshold (see quantdag.ml)
=============  =====================================================================

Typical use::

    from quantdag.strategies import get_strategy, check_lookahead
    strategy = get_strategy("sma_cross")(fast=10, slow=50)   # validated now
    frame = strategy.signals(candles)                        # ts, entry, exit, fast_ma, slow_ma
    assert check_lookahead(strategy, candles).ok

Writing one (register it, and the pipeline and the look-ahead test pick it up)::

    @register
    class Breakout(Strategy):
        # Enter on a close above the previous ``window``-candle high.

        name = "breakout"
        required_columns = ("high", "close")
        window = IntParam(20, low=2, high=500, step=5, search=(10, 60), description="lookback (candles)")

        @property
        def startup_candles(self) -> int:
            return self.window + 1

        def compute_indicators(self, candles):
            prior_high = pl.col("high").shift(1).rolling_max(self.window)  # candles < t only
            return candles.with_columns(prior_high=prior_high)

        def compute_signals(self, frame):
            return frame.with_columns(
                entry=crossed_above(pl.col("close"), pl.col("prior_high")),
                exit=crossed_below(pl.col("close"), pl.col("prior_high")),
            )
"""

from quantdag.strategies.base import (
    RESERVED_COLUMNS,
    SIGNAL_COLUMNS,
    TARGET_COLUMN,
    Strategy,
    check_candles,
    create_strategy,
    crossed_above,
    crossed_below,
    get_strategy,
    list_strategies,
    position_state,
    register,
    unregister,
)
from quantdag.strategies.params import (
    BoolParam,
    ChoiceParam,
    Constraint,
    FloatParam,
    IntParam,
    ObjectParam,
    Param,
    ParamDim,
    ParamSpace,
    less_than,
)

# Built-in strategies register themselves on import; order matters only for consensus defaults.
from quantdag.strategies.ma_cross import EmaCross, SmaCross  # noqa: E402
from quantdag.strategies.rsi import RsiReversion  # noqa: E402
from quantdag.strategies.macd import MacdCross  # noqa: E402
from quantdag.strategies.regime import REGIMES, RegimeClassifier, RegimeMaCross, classify_regime  # noqa: E402
from quantdag.strategies.sentiment import SentimentStrategy  # noqa: E402
from quantdag.strategies.consensus import Consensus, MemberSpec  # noqa: E402
from quantdag.strategies.ml_model import MlModel  # noqa: E402
from quantdag.strategies.lookahead import LookaheadDifference, LookaheadReport, check_lookahead  # noqa: E402

__all__ = [
    "REGIMES",
    "RESERVED_COLUMNS",
    "SIGNAL_COLUMNS",
    "TARGET_COLUMN",
    "BoolParam",
    "ChoiceParam",
    "Consensus",
    "Constraint",
    "EmaCross",
    "FloatParam",
    "IntParam",
    "LookaheadDifference",
    "LookaheadReport",
    "MacdCross",
    "MemberSpec",
    "MlModel",
    "ObjectParam",
    "Param",
    "ParamDim",
    "ParamSpace",
    "RegimeClassifier",
    "RegimeMaCross",
    "RsiReversion",
    "SentimentStrategy",
    "SmaCross",
    "Strategy",
    "check_candles",
    "check_lookahead",
    "classify_regime",
    "create_strategy",
    "crossed_above",
    "crossed_below",
    "get_strategy",
    "less_than",
    "list_strategies",
    "position_state",
    "register",
    "unregister",
]
