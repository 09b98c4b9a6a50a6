"""Outlier removal (FreqAI's dissimilarity index): out of each fold's fit, no prediction for an outlier row.

The gate travelling with a registered model: test_registry.py; the ml_model strategy: test_ml_model_strategy.py."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipeline_helpers import config_with
from quantdag.errors import ConfigurationError
from quantdag.ml.features import compute_features
from quantdag.ml.labels import LabelConfig, compute_labels
from quantdag.ml.models import make_model, oos_predict, predict_up, probabilities_to_target
from quantdag.ml.outliers import OutlierConfig, OutlierGatedClassifier, mean_pairwise_distance, nearest_distance
from quantdag.ml.training import TrainingConfig, make_dataset, predict_frame, train
from quantdag.ml.validation import walk_forward

CFG = TrainingConfig(params={"n_estimators": 30}, labels=LabelConfig(kind="fixed", horizon=12))


def _blobs(n: int = 1500, d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + rng.normal(size=n) > 0).astype(np.int64)
    return X, y


def test_planted_outlier_row_is_left_out_of_the_fit_and_gets_no_prediction():
    X, y = _blobs()
    X[700, :4] = 40.0  # far from every other row
    gated = OutlierGatedClassifier(make_model("lightgbm", n_estimators=20), threshold=1.0, reference_rows=300).fit(X, y)
    assert gated.n_train_outliers_ == 1 and gated.is_outlier(X).nonzero()[0].tolist() == [700]
    # the classifier inside is exactly the one fit without the planted row
    without = make_model("lightgbm", n_estimators=20).fit(np.delete(X, 700, axis=0), np.delete(y, 700))
    assert gated.estimator_.booster_.model_to_string() == without.booster_.model_to_string()
    p = predict_up(gated, X)
    assert np.isnan(p[700]) and np.isfinite(np.delete(p, 700)).all()
    assert probabilities_to_target(p, 0.5, True)[700] == 0.0  # no view, no position
    np.testing.assert_array_equal(np.delete(p, 700), predict_up(without, np.delete(X, 700, axis=0)))


def test_dissimilarity_index_matches_its_plain_numpy_definition():
    X, _ = _blobs(400, 5)
    R = X[::7]
    brute = np.min(np.linalg.norm(X[:, None, :] - R[None, :, :], axis=2), axis=1)
    np.testing.assert_allclose(nearest_distance(X, R), brute, rtol=1e-9, atol=1e-6)  # sqrt of a rounding error at 0
    pair = np.linalg.norm(R[:, None, :] - R[None, :, :], axis=2)
    assert mean_pairwise_distance(R) == pytest.approx(pair.sum() / (len(R) * (len(R) - 1)), rel=1e-9)


def test_the_rule_comes_from_the_training_fold_only(candles):
    """Turning half of the last test block into outliers changes nothing else: not the other blocks'
    predictions, not the rows each fold removed, not the untouched rows of that block."""
    feats, labels = compute_features(candles, CFG.features), compute_labels(candles, CFG.labels)
    ds = make_dataset(feats, labels)
    splits = walk_forward(ds.ts_ms, ds.known_ms, 3, min_train_blocks=2)
    last = splits[-1].test
    planted = last[::2]
    X2 = ds.X.copy()
    X2[planted] = X2[planted] * 50.0 + 1e3
    runs = []
    for X in (ds.X, X2):
        removed: list[float] = []
        p = oos_predict(CFG.model, CFG.params, X, ds.y, splits, seed=0, outliers=CFG.outliers, removed=removed)
        runs.append((p, removed))
    (p1, r1), (p2, r2) = runs
    assert r1 == r2
    untouched = np.setdiff1d(np.arange(len(p1)), planted)
    np.testing.assert_array_equal(p1[untouched], p2[untouched])  # NaN where NaN, bit-identical elsewhere
    assert np.isnan(p2[planted]).all() and np.isfinite(p1[planted]).mean() > 0.8


def test_training_reports_outliers_and_the_final_model_gates(candles):
    feats, labels = compute_features(candles, CFG.features), compute_labels(candles, CFG.labels)
    r = train(feats, labels, CFG)
    assert isinstance(r.model, OutlierGatedClassifier)
    m = r.metrics
    assert 0.0 <= m["outliers_train_frac"] < 0.05 and 0.0 <= m["outliers_oos_frac"] < 0.2 and "outliers_fold0_train_frac" in m
    assert m["oos_rows"] == r.oos.height and r.oos["p_up"].is_finite().all()  # gated rows are not out-of-sample predictions
    spike = feats.with_columns([pl.when(pl.int_range(pl.len()) == 100).then(pl.col(c) * 100 + 50).otherwise(pl.col(c)).alias(c)
                                for c in r.feature_names])  # fmt: skip
    p = predict_frame(r.model, spike, r.feature_names)["p_up"].to_numpy()
    plain = predict_frame(r.model, feats, r.feature_names)["p_up"].to_numpy()
    assert np.isnan(p[100]) and not np.isnan(plain[100])
    np.testing.assert_array_equal(np.delete(p, 100), np.delete(plain, 100))


def test_method_none_trains_the_plain_model(candles):
    import dataclasses

    cfg = dataclasses.replace(CFG, outliers=OutlierConfig(method="none"))
    r = train(compute_features(candles, cfg.features), compute_labels(candles, cfg.labels), cfg)
    assert not isinstance(r.model, OutlierGatedClassifier)
    assert not any(k.startswith("outliers_") for k in r.metrics)


def test_outlier_setting_round_trips_through_the_config():
    default = config_with().ml.training_config()
    assert default.outliers == OutlierConfig(method="di", threshold=1.0, reference_rows=1000)
    cfg = config_with(ml={"outliers": {"method": "di", "threshold": 1.5, "reference_rows": 400}}).ml.training_config()
    assert cfg.outliers == OutlierConfig("di", 1.5, 400)
    assert cfg.as_params()["outliers.threshold"] == "1.5"
    assert not config_with(ml={"outliers": {"method": "none"}}).ml.training_config().outliers.enabled


@pytest.mark.parametrize(("outliers", "match"), [({"method": "svm"}, "svm"), ({"threshold": 0}, "threshold"),
                                                 ({"reference_rows": 1}, "reference_rows"), ({"typo": 1}, "typo")])  # fmt: skip
def test_bad_outlier_setting_is_named(outliers, match):
    with pytest.raises(ConfigurationError, match=match):
        config_with(ml={"outliers": outliers})
