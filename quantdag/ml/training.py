"""One training: features + labels -> purged walk-forward predictions -> out-of-sample backtest -> final model.

:func:`train` is engine code (frames in, a :class:`TrainingResult` out); MLflow logging and the
model registry live in :mod:`quantdag.ml.registry`. The out-of-sample backtest is judged like a
parameter sweep (:mod:`quantdag.optimize.robustness`): the probability thresholds are the
trials, the configured one is the selection, and the report carries its deflated Sharpe ratio
and the probability of backtest overfitting -- so skill found in noise shows as noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from quantdag.backtest import BacktestSettings, run
from quantdag.backtest.metrics import returns as equity_returns
from quantdag.data.frames import CANDLE_KEY, MARKET_KEY, utc_ms
from quantdag.errors import ConfigurationError, DataError
from quantdag.ml.features import FeatureConfig
from quantdag.ml.labels import LabelConfig
from quantdag.ml.models import (
    MODEL_KINDS,
    auc,
    cpcv_path_predict,
    fit_new,
    log_loss,
    meta_entries,
    oos_predict,
    predict_up,
    probabilities_to_target,
    train_outlier_frac,
)
from quantdag.ml.outliers import OutlierConfig
from quantdag.ml.validation import Split, combinatorial_purged, cpcv_path_assignment, time_blocks, walk_forward
from quantdag.optimize.robustness import deflated_sharpe_from_returns, pbo_cscv

#: Columns and types of ``ml.predictions`` besides the candle key.
PREDICTION_COLUMNS = ("model", "version", "p_up")


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides a model: features, labels, model, validation and the trading rule."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    model: str = "lightgbm"
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    n_splits: int = 4
    min_train_blocks: int = 2
    threshold: float = 0.55
    long_short: bool = False
    #: the trials of the out-of-sample backtest (the configured threshold must be one of them)
    thresholds: tuple[float, ...] = (0.5, 0.525, 0.55, 0.575, 0.6)
    pbo_blocks: int = 8
    #: ``(n_folds, n_test_folds)``: also score combinatorial purged CV's paths (``cpcv_auc_*``
    #: metrics: C(n, k) more fits, so off by default)
    cpcv: tuple[int, int] | None = None
    #: labelled rows below which the pipeline skips a training (a sparse meta rule may need fewer)
    min_rows: int = 500
    #: the outlier rule every fit learns from its training rows (FreqAI's dissimilarity index by default)
    outliers: OutlierConfig = field(default_factory=OutlierConfig)

    def __post_init__(self) -> None:
        if self.model not in MODEL_KINDS:
            raise ConfigurationError(f"model must be one of {MODEL_KINDS}, got {self.model!r}")
        if self.threshold not in self.thresholds or len(self.thresholds) < 2:
            raise ConfigurationError(f"threshold {self.threshold} must be one of >= 2 trial thresholds {list(self.thresholds)}")
        for t in self.thresholds:
            probabilities_to_target(np.zeros(1), t, False)  # validates the range

    def as_params(self) -> dict[str, str]:
        """Flat MLflow parameters."""
        out = {f"feature.{k}": str(v) for k, v in self.features.as_dict().items()}
        out |= {f"label.{k}": str(v) for k, v in self.labels.as_dict().items()}
        out |= {f"model.{k}": str(v) for k, v in self.params.items()}
        out |= {f"outliers.{k}": str(v) for k, v in self.outliers.as_dict().items()}
        out |= {"model": self.model, "seed": str(self.seed), "cv.n_splits": str(self.n_splits),
                "cv.min_train_blocks": str(self.min_train_blocks), "threshold": str(self.threshold),
                "long_short": str(self.long_short), "thresholds": str(list(self.thresholds)), "cv.cpcv": str(self.cpcv)}  # fmt: skip
        return out


@dataclass(frozen=True)
class Dataset:
    """Aligned training rows: key frame, feature matrix, labels and their times."""

    keys: pl.DataFrame  # candle key, sorted by (ts, market)
    X: np.ndarray
    y: np.ndarray
    ts_ms: np.ndarray
    known_ms: np.ndarray
    feature_names: tuple[str, ...]


def make_dataset(features: pl.DataFrame, labels: pl.DataFrame) -> Dataset:
    """Rows that have both features and a known label, sorted by time then market.

    Raises
    ------
    DataError
        If no row has both.
    """
    names = tuple(c for c in features.columns if c not in CANDLE_KEY)
    lab = labels.select(*CANDLE_KEY, "y", "known_at").with_columns(utc_ms(labels, "ts"))
    rows = features.with_columns(utc_ms(features, "ts")).join(lab, on=list(CANDLE_KEY), how="inner").sort("ts", *MARKET_KEY)
    if rows.height == 0:
        raise DataError("no candle has both features and a known label; nothing to train on")
    return Dataset(
        keys=rows.select(CANDLE_KEY),
        X=rows.select(names).cast(pl.Float64).to_numpy(),  # null -> NaN: LightGBM's missing value
        y=rows["y"].cast(pl.Int64).to_numpy(),
        ts_ms=rows["ts"].dt.epoch("ms").to_numpy(),
        known_ms=rows["known_at"].dt.epoch("ms").to_numpy(),
        feature_names=names,
    )


@dataclass
class OosBacktest:
    """Out-of-sample backtest of the predictions: per market, and the overfitting statistics."""

    per_market: dict[str, dict[str, Any]]
    sharpe: float  # per period, the configured threshold, markets equally weighted
    dsr: float
    pbo: float
    n_obs: int
    returns: np.ndarray  # (T, trials) of the equally weighted markets

    def metrics(self) -> dict[str, float]:
        return {"oos_sharpe": self.sharpe, "oos_dsr": self.dsr, "oos_pbo": self.pbo, "oos_periods": float(self.n_obs)}


@dataclass
class TrainingResult:
    """The final model (fit on every labelled row), its out-of-sample evidence and metrics."""

    config: TrainingConfig
    model: Any
    feature_names: tuple[str, ...]
    oos: pl.DataFrame  # candle key + p_up, the walk-forward predictions
    metrics: dict[str, float]
    train_end_ms: int  # the latest known_at the final model learned from
    backtest: OosBacktest | None = None


def train(features: pl.DataFrame, labels: pl.DataFrame, cfg: TrainingConfig) -> TrainingResult:
    """Walk-forward out-of-sample predictions (purged by each label's ``known_at``), their scores,
    and the final model fit on every row."""
    ds = make_dataset(features, labels)
    splits = walk_forward(ds.ts_ms, ds.known_ms, cfg.n_splits, min_train_blocks=cfg.min_train_blocks)
    removed: list[float] = []
    p = oos_predict(cfg.model, cfg.params, ds.X, ds.y, splits, seed=cfg.seed, outliers=cfg.outliers, removed=removed)
    tested = np.isfinite(p)
    metrics = {
        "cv_log_loss": log_loss(ds.y, p),
        "cv_auc": auc(ds.y, p),
        "cv_base_rate": float(ds.y[tested].mean()) if tested.any() else math.nan,
        "rows": float(ds.y.shape[0]),
        "oos_rows": float(tested.sum()),
        "features": float(len(ds.feature_names)),
    }
    for i, s in enumerate(splits):
        metrics[f"cv_fold{i}_auc"] = auc(ds.y[s.test], p[s.test])
    if cfg.cpcv is not None:
        metrics.update(cpcv_scores(ds, cfg))
    model = fit_new(cfg.model, cfg.params, ds.X, ds.y, seed=cfg.seed, outliers=cfg.outliers)
    if cfg.outliers.enabled:
        metrics.update(outlier_metrics(splits, removed, p, train_outlier_frac(model)))
    oos = ds.keys.with_columns(p_up=pl.Series(p)).filter(pl.col("p_up").is_not_nan())
    return TrainingResult(cfg, model, ds.feature_names, oos, metrics, int(ds.known_ms.max()))


def outlier_metrics(splits: list[Split], removed: list[float], p: np.ndarray, final_frac: float) -> dict[str, float]:
    """How much the outlier rule removed: training rows per fold and overall, out-of-sample rows
    gated (a test row with no prediction), and the final model's training rows."""
    fitted = [s for s in splits if s.train.size and s.test.size]
    out = {f"outliers_fold{i}_train_frac": f for i, f in enumerate(removed)}
    n_train = sum(s.train.size for s in fitted)
    n_test = sum(s.test.size for s in fitted)
    gated = sum(int(np.isnan(p[s.test]).sum()) for s in fitted)
    out["outliers_train_frac"] = sum(f * s.train.size for f, s in zip(removed, fitted, strict=True)) / n_train if n_train else math.nan
    out["outliers_oos_frac"] = gated / n_test if n_test else math.nan
    out["outliers_final_train_frac"] = final_frac
    return out


def cpcv_scores(ds: Dataset, cfg: TrainingConfig) -> dict[str, float]:
    """AUC of each combinatorial purged CV path (embargo: the longest label horizon): its spread
    says how much the score depends on which history the model happened to train on."""
    assert cfg.cpcv is not None
    n_folds, n_test = cfg.cpcv
    embargo = int((ds.known_ms - ds.ts_ms).max())
    splits = combinatorial_purged(ds.ts_ms, ds.known_ms, n_folds, n_test, embargo=embargo)
    paths = cpcv_path_predict(cfg.model, cfg.params, ds.X, ds.y, splits, cpcv_path_assignment(n_folds, n_test),
                              time_blocks(ds.ts_ms, n_folds), seed=cfg.seed, outliers=cfg.outliers)  # fmt: skip
    aucs = np.array([auc(ds.y, paths[:, k]) for k in range(paths.shape[1])])
    return {"cpcv_paths": float(paths.shape[1]), "cpcv_auc_mean": float(np.nanmean(aucs)), "cpcv_auc_min": float(np.nanmin(aucs)),
            "cpcv_auc_max": float(np.nanmax(aucs))}  # fmt: skip


def predict_frame(model: Any, features: pl.DataFrame, feature_names: tuple[str, ...] | list[str]) -> pl.DataFrame:
    """Candle key + ``p_up`` of every feature row (rows still warming up are predicted too; the
    model treats missing values as LightGBM does); null where the model has no view (an outlier)."""
    missing = [c for c in feature_names if c not in features.columns]
    if missing:
        raise DataError(f"the model needs feature column(s) {missing}, which the feature frame lacks")
    X = features.select(feature_names).cast(pl.Float64).to_numpy()
    p = predict_up(model, X) if features.height else np.empty(0)
    return features.select(CANDLE_KEY).with_columns(p_up=pl.Series(p, dtype=pl.Float64).fill_nan(None))  # no view (an outlier): null


def oos_backtest(
    candles: pl.DataFrame, predictions: pl.DataFrame, cfg: TrainingConfig, settings: BacktestSettings | None = None,
    rule: pl.DataFrame | None = None,
) -> OosBacktest:  # fmt: skip
    """Backtest the out-of-sample predictions per market (costs on) for every trial threshold,
    from each market's first prediction on; DSR and PBO over the trials.

    A meta model (``cfg.labels.kind == "meta"``) trades as its ``ml_model`` strategy does: the
    rule's entries it takes, the rule's exits; ``rule`` holds the rule's signals (candle key +
    ``entry``, ``exit``).

    Raises
    ------
    DataError
        If no market has predictions, or a meta model's rule signals are missing.
    """
    meta = cfg.labels.kind == "meta"
    if meta and rule is None:
        raise DataError("a meta model's out-of-sample backtest needs its rule's signals")
    settings = settings or BacktestSettings(direction="both" if cfg.long_short and not meta else "long")
    preds = predictions.with_columns(utc_ms(predictions, "ts"))
    frame = candles.with_columns(utc_ms(candles, "ts")).sort(CANDLE_KEY)
    per_market: dict[str, dict[str, Any]] = {}
    series: list[pl.DataFrame] = []
    for (ex, sym, tf), rows in frame.group_by(MARKET_KEY, maintain_order=True):
        mp = preds.filter((pl.col("exchange") == ex) & (pl.col("symbol") == sym) & (pl.col("timeframe") == tf))
        if mp.height == 0:
            continue
        span = rows.filter(pl.col("ts") >= mp["ts"].min()).join(mp.select("ts", "p_up"), on="ts", how="left")
        p = span["p_up"].fill_null(np.nan).to_numpy()
        if meta:
            assert rule is not None
            rs = span.select("ts").join(
                rule.with_columns(utc_ms(rule, "ts")).filter((pl.col("exchange") == ex) & (pl.col("symbol") == sym)
                                                             & (pl.col("timeframe") == tf)).select("ts", "entry", "exit"),
                on="ts", how="left", maintain_order="left",
            )  # fmt: skip
            rule_entry, rule_exit = rs["entry"].fill_null(False).to_numpy(), rs["exit"].fill_null(False).to_numpy()
        cols = {}
        for i, thr in enumerate(cfg.thresholds):
            if meta:
                res = run(span.drop("p_up"), meta_entries(rule_entry, p, thr), rule_exit, settings=settings)
            else:
                res = run(span.drop("p_up"), target=probabilities_to_target(p, thr, cfg.long_short), settings=settings)
            cols[f"t{i}"] = equity_returns(res.equity_array, settings.init_cash)
            if thr == cfg.threshold:
                m = res.metrics
                per_market[f"{sym}:{tf}"] = {k: m.get(k) for k in ("total_return", "sharpe", "max_drawdown", "n_trades", "exposure")}
        series.append(pl.DataFrame({"ts": span["ts"], **cols}))
    if not series:
        raise DataError("no market has out-of-sample predictions to backtest")
    trials = [f"t{i}" for i in range(len(cfg.thresholds))]
    joined = pl.concat(series).group_by("ts").agg(pl.col(trials).mean()).sort("ts")
    R = np.nan_to_num(joined.select(trials).to_numpy())
    sel = cfg.thresholds.index(cfg.threshold)
    sd = R.std(axis=0, ddof=1)
    trial_sharpes = np.where(sd > 0, R.mean(axis=0) / np.where(sd > 0, sd, 1.0), 0.0)
    dsr = deflated_sharpe_from_returns(R[:, sel], len(trials), trial_sharpes)
    blocks = cfg.pbo_blocks
    pbo = pbo_cscv(R, n_blocks=blocks).pbo if R.shape[0] >= 2 * blocks else math.nan
    return OosBacktest(per_market, float(trial_sharpes[sel]), float(dsr.dsr), float(pbo), int(R.shape[0]), R)
