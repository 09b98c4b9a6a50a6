"""``ml_model``: a registered model's probabilities as a strategy (backtests, sweeps, portfolios, paper).

The strategy predicts causally from the candles it is given: it rebuilds the features the model
version was trained on (its tags say which, :mod:`quantdag.ml.registry`), asks the model for
``P(up)`` and trades the probability threshold -- long while ``p > threshold``, and with
``long_short`` short while ``p < 1 - threshold``. So it passes the same look-ahead check as any
rule strategy, and a candle's probability depends only on the fixed window of candles before it
(:meth:`startup_candles`): identical whichever backtest window or history start contains it.
Candles still inside that window get no probability (null) and no position, and so do the
candles the model was trained on (before its ``train_end``, the close of the last outcome it
learned from): a backtest of ``ml_model`` is always out of sample, never the model replaying
what it memorised. (The walk-forward out-of-sample predictions of the training period are in
``ml.predictions`` and the training's MLflow run.)

The model is looked up in the MLflow registry of the current tracking URI
(``mlflow.get_tracking_uri()``, set by the pipeline's MLflow resource or ``MLFLOW_TRACKING_URI``)
by name and alias (``champion``, ``challenger``) or version number. With no store configured, or
no such model yet, the strategy has no view and gives no signal (a fresh pipeline backtests it
flat until a model is trained). An alias moves when a model
is retrained and promoted, so a parameter set naming an alias trades the current model; name a
version to pin one.

A cross-market model (the ``markets`` feature group) asks for its peers' closes
(:attr:`frame_peers`: the pipeline adds them to the frame); a model trained on one timeframe
has no view on another (its features would mean something else). A **meta** model (labels of
kind ``meta``) gates its rule strategy: it enters on the rule's entries the model takes
(``p > threshold``) and exits on the rule's exits.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np
import polars as pl

from quantdag.errors import ConfigurationError, StrategyError
from quantdag.strategies.base import Strategy, register
from quantdag.strategies.params import BoolParam, FloatParam, ObjectParam

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _model_name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigurationError(f"model_name must be a registered model name (letters, digits, _ . -), got {value!r}")
    return value


def _alias(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if not isinstance(value, str) or not (value in ("champion", "challenger") or value.isdigit()):
        raise ConfigurationError(f"alias must be 'champion', 'challenger' or a version number, got {value!r}")
    return value


@register
class MlModel(Strategy):
    """Trade a registered model's ``P(up)``: long above ``threshold`` (short below ``1 - threshold``).

    Output columns: ``entry``, ``exit`` (and ``short_entry``, ``short_exit`` with ``long_short``),
    ``p_up`` (null while the features warm up), ``model_version``.
    """

    name = "ml_model"
    required_columns = ("open", "high", "low", "close", "volume")
    model_name = ObjectParam("quantdag_ml", normalize=_model_name, description="registered MLflow model name")
    alias = ObjectParam("champion", normalize=_alias, description="'champion', 'challenger' or a version number")
    threshold = FloatParam(0.55, low=0.5, high=0.95, step=0.025, search=(0.5, 0.65),
                           description="probability above which to be long (below 1 - it: short)")  # fmt: skip
    long_short = BoolParam(False, description="also go short when P(up) < 1 - threshold")

    def _info(self) -> Any:
        """The model version to use, or None when the registry has none (no view: no position)."""
        from quantdag.ml.registry import resolve

        info = resolve(self.model_name, self.alias)
        if info is None:
            log.info("ml_model: no model %r with alias %r in the MLflow registry; no signals", self.model_name, self.alias)
            return None
        if not info.features.frame_ready:
            raise StrategyError(f"ml_model: model {self.model_name!r} v{info.version} needs tables {list(info.features.inputs)} "
                                "a strategy's frame does not carry; use ml.predictions")  # fmt: skip
        return info

    def _rule(self, info: Any) -> Strategy | None:
        """A meta model's rule strategy (None for a model that trades its probability alone)."""
        return info.labels.rule_strategy() if info is not None and info.labels.kind == "meta" else None

    @property
    def frame_peers(self) -> tuple[str, ...]:
        info = self._info()
        rule = self._rule(info)
        return tuple(dict.fromkeys((*info.features.peers, *(rule.frame_peers if rule else ())))) if info is not None else ()

    @property
    def startup_candles(self) -> int:
        info = self._info()
        if info is None:
            return 0
        rule = self._rule(info)
        features = max(info.features.warmup(tf) for tf in info.timeframes or ("1h",))
        return max(features, rule.startup_candles if rule else 0)

    def emits_shorts(self) -> bool:
        return bool(self.long_short)  # fixed by the parameters, never by the registry (a meta model's shorts stay flat)

    def compute_indicators(self, candles: pl.DataFrame) -> pl.DataFrame:
        from quantdag.ml.features import ohlcv_features
        from quantdag.ml.models import predict_up
        from quantdag.ml.registry import load_version

        info = self._info()
        tf = _timeframe_of(candles)
        if info is not None and info.timeframes and tf not in info.timeframes:
            log.warning("ml_model: model %r v%s was trained on %s candles, not %s: no view", self.model_name, info.version,
                        "/".join(info.timeframes), tf)  # fmt: skip
            info = None
        out = candles
        rule = self._rule(info)
        if rule is not None:
            sig = rule.signals(candles)
            out = out.with_columns(rule_entry=sig["entry"].fill_null(False), rule_exit=sig["exit"].fill_null(False))
        if info is None:
            return out.with_columns(p_up=pl.lit(None, dtype=pl.Float64), model_version=pl.lit(None, dtype=pl.Int32))
        feats = ohlcv_features(candles, info.features, timeframe=tf)
        p = predict_up(load_version(info), feats.select(info.feature_names).to_numpy()) if candles.height else np.empty(0)
        p[: min(info.features.warmup(tf), p.shape[0])] = np.nan
        ts = candles["ts"]
        ms = (ts.dt.epoch("ms") if isinstance(ts.dtype, pl.Datetime) else ts.cast(pl.Int64)).to_numpy()
        p[ms < info.train_end_ms] = np.nan  # in sample: the model learned from outcomes up to train_end
        return out.with_columns(
            pl.Series("p_up", p, dtype=pl.Float64).fill_nan(None), pl.lit(int(info.version), dtype=pl.Int32).alias("model_version")
        )

    def compute_signals(self, frame: pl.DataFrame) -> pl.DataFrame:
        from quantdag.ml.models import meta_entries

        p = pl.col("p_up")
        if "rule_entry" in frame.columns:  # a meta model: the rule's (long) entries it takes, the rule's exits
            taken = meta_entries(frame["rule_entry"].to_numpy(), frame["p_up"].fill_null(np.nan).to_numpy(), self.threshold)
            out = frame.with_columns(entry=pl.Series(taken, dtype=pl.Boolean), exit=pl.col("rule_exit"))
            return out.with_columns(short_entry=pl.lit(False), short_exit=pl.lit(True)) if self.long_short else out
        out = frame.with_columns(entry=(p > self.threshold).fill_null(False), exit=(p <= self.threshold).fill_null(True))
        if self.long_short:
            low = 1.0 - self.threshold
            out = out.with_columns(short_entry=(p < low).fill_null(False), short_exit=(p >= low).fill_null(True))
        return out


def _timeframe_of(candles: pl.DataFrame) -> str:
    from quantdag.ml.features import timeframe_name

    if candles.height < 2:
        return "1h"
    ts = candles["ts"]
    ms = ts.dt.epoch("ms") if isinstance(ts.dtype, pl.Datetime) else ts.cast(pl.Int64)
    return timeframe_name(int(ms.diff().min()))  # type: ignore[arg-type]
