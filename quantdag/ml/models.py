"""Models: scikit-learn-compatible classifiers, deterministic, and their out-of-sample predictions.

LightGBM is the default (``make_model("lightgbm")``); any scikit-learn classifier with
``predict_proba`` works (``"logistic"`` is shipped as a linear baseline). Determinism is part of
the contract (freqtrade #9306: irreproducible runs): seeds are pinned, LightGBM runs with one
thread, ``deterministic=True`` and row-wise histograms, so identical inputs give bit-identical
models and predictions on any machine with the same library versions.

Out-of-sample predictions come from :func:`oos_predict` over a list of purged splits
(:mod:`quantdag.ml.validation`): each test row is predicted by a model that never saw a label
overlapping it. :func:`probabilities_to_target` is the one mapping from a probability to a
position, shared by the ``ml_model`` strategy and the out-of-sample backtest.

With an outlier rule (:mod:`quantdag.ml.outliers`, on by default) every fit -- each fold's and
the final one -- learns the rule from its own training rows only, leaves their outliers out,
and predicts NaN (no position) for an outlier row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from quantdag.errors import ConfigurationError, DataError
from quantdag.ml.outliers import OutlierConfig
from quantdag.ml.validation import Split

MODEL_KINDS = ("lightgbm", "logistic")

#: LightGBM defaults: small, regularised trees (financial labels are mostly noise).
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 100,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


def make_model(kind: str = "lightgbm", *, seed: int = 0, **params: Any) -> Any:
    """A fresh, seeded, deterministic classifier.

    Raises
    ------
    ConfigurationError
        On an unknown ``kind`` or a parameter the model refuses.
    """
    if kind == "lightgbm":
        from lightgbm import LGBMClassifier

        pinned = {"random_state": seed, "n_jobs": 1, "deterministic": True, "force_row_wise": True, "verbose": -1}
        clash = sorted(set(params) & set(pinned))
        if clash:
            raise ConfigurationError(f"model parameter(s) {clash} are pinned for reproducibility")
        return LGBMClassifier(**{**LIGHTGBM_DEFAULTS, **params, **pinned})
    if kind == "logistic":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        try:
            clf = LogisticRegression(random_state=seed, max_iter=500, **params)
        except TypeError as exc:
            raise ConfigurationError(f"logistic model: {exc}") from exc
        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), clf)
    raise ConfigurationError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")


def fit(model: Any, X: np.ndarray, y: np.ndarray) -> Any:
    """Fit ``model`` on rows with a label; NaN features are fine for LightGBM (missing values)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.shape[0] != y.shape[0] or X.ndim != 2:
        raise DataError(f"X must be (rows, features) with one label per row, got {X.shape} and {y.shape}")
    if np.unique(y).shape[0] < 2:
        raise DataError(f"training labels have a single class ({np.unique(y).tolist()}): nothing to learn")
    return model.fit(X, y)


def fit_new(kind: str, params: Mapping[str, Any], X: np.ndarray, y: np.ndarray, *, seed: int = 0,
            outliers: OutlierConfig | None = None) -> Any:  # fmt: skip
    """A fresh model of ``kind`` fit on ``X``, ``y`` -- behind ``outliers``' gate when one is set."""
    model = make_model(kind, seed=seed, **params)
    return fit(outliers.wrap(model) if outliers is not None else model, X, y)


def train_outlier_frac(model: Any) -> float:
    """Fraction of its training rows a gated model left out as outliers (0 for an ungated one)."""
    n = getattr(model, "n_train_", 0)
    return getattr(model, "n_train_outliers_", 0) / n if n else 0.0


def predict_up(model: Any, X: np.ndarray) -> np.ndarray:
    """Probability of class 1 for each row."""
    proba = model.predict_proba(np.asarray(X, dtype=np.float64))
    classes = list(model.classes_)
    return proba[:, classes.index(1)] if 1 in classes else np.zeros(proba.shape[0])


def oos_predict(kind: str, params: Mapping[str, Any], X: np.ndarray, y: np.ndarray, splits: Sequence[Split],
                *, seed: int = 0, outliers: OutlierConfig | None = None, removed: list[float] | None = None) -> np.ndarray:  # fmt: skip
    """Out-of-sample ``P(y=1)`` of every test row (NaN elsewhere, and on a test row the fold's
    outlier rule gates); a row in several splits' tests (CPCV) keeps the last one's -- use the
    walk-forward or k-fold splits for one prediction per row.

    A split whose training labels hold a single class predicts its base rate (no model).
    ``removed``, when given, receives each split's fraction of training rows left out as outliers.
    """
    out = np.full(X.shape[0], np.nan)
    for s in splits:
        if s.train.size == 0 or s.test.size == 0:
            continue
        yt = y[s.train]
        if np.unique(yt).shape[0] < 2:
            out[s.test] = float(yt.mean())
            if removed is not None:
                removed.append(0.0)
            continue
        model = fit_new(kind, params, X[s.train], yt, seed=seed, outliers=outliers)
        out[s.test] = predict_up(model, X[s.test])
        if removed is not None:
            removed.append(train_outlier_frac(model))
    return out


def cpcv_path_predict(kind: str, params: Mapping[str, Any], X: np.ndarray, y: np.ndarray, splits: Sequence[Split],
                      assignment: np.ndarray, blocks: np.ndarray, *, seed: int = 0,
                      outliers: OutlierConfig | None = None) -> np.ndarray:  # fmt: skip
    """``(rows, paths)`` out-of-sample ``P(y=1)`` of combinatorial purged CV: path ``p`` takes block
    ``b``'s predictions from split ``assignment[b, p]`` (:func:`~quantdag.ml.validation.cpcv_path_assignment`),
    so every path is a complete out-of-sample history built from different training sets."""
    per_split: list[np.ndarray] = []
    for s in splits:
        pred = np.full(X.shape[0], np.nan)
        yt = y[s.train]
        if s.train.size and np.unique(yt).shape[0] == 2:
            pred[s.test] = predict_up(fit_new(kind, params, X[s.train], yt, seed=seed, outliers=outliers), X[s.test])
        elif s.train.size:
            pred[s.test] = float(yt.mean())
        per_split.append(pred)
    out = np.full((X.shape[0], assignment.shape[1]), np.nan)
    for b in range(assignment.shape[0]):
        rows = blocks == b
        for p in range(assignment.shape[1]):
            out[rows, p] = per_split[assignment[b, p]][rows]
    return out


def probabilities_to_target(p: np.ndarray, threshold: float, long_short: bool) -> np.ndarray:
    """Target position per candle: +1 when ``p > threshold``, -1 when ``long_short`` and
    ``p < 1 - threshold``, else 0 (NaN probability -> 0: no view, no position)."""
    if not 0.5 <= threshold < 1.0:
        raise ConfigurationError(f"probability threshold must be in [0.5, 1), got {threshold!r}")
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        target = np.where(p > threshold, 1.0, 0.0)
        if long_short:
            target = np.where(p < 1.0 - threshold, -1.0, target)
    target[np.isnan(p)] = 0.0
    return target


def meta_entries(rule_entry: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    """A meta model's entries: the rule's entries the model takes (``p > threshold``; no
    probability: not taken). Exits are the rule's own; shared by the ``ml_model`` strategy and the
    out-of-sample backtest."""
    probabilities_to_target(np.zeros(1), threshold, False)  # validates the threshold
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray(rule_entry, dtype=bool) & (p > threshold)


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy of the rows with a prediction (lower is better)."""
    ok = np.isfinite(p)
    if not ok.any():
        return float("nan")
    q = np.clip(p[ok], 1e-12, 1 - 1e-12)
    t = np.asarray(y)[ok]
    return float(-np.mean(t * np.log(q) + (1 - t) * np.log(1 - q)))


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC of the rows with a prediction (0.5 = no skill); NaN with one class."""
    from sklearn.metrics import roc_auc_score

    ok = np.isfinite(p)
    t = np.asarray(y)[ok]
    if ok.sum() < 2 or np.unique(t).shape[0] < 2:
        return float("nan")
    return float(roc_auc_score(t, p[ok]))
