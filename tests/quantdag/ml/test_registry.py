"""The MLflow model registry in a real sqlite store: runs, versions, champion/challenger, reproducibility."""

from __future__ import annotations

import json
import os

import mlflow
import polars as pl
import pytest

from quantdag.errors import DataError
from quantdag.ml.features import compute_features
from quantdag.ml.labels import LabelConfig, compute_labels
from quantdag.ml.registry import (
    CHALLENGER,
    CHAMPION,
    load_version,
    log_training,
    model_info,
    promote,
    resolve,
    use_store,
)
from quantdag.ml.training import TrainingConfig, oos_backtest, predict_frame, train

from .simdata import fresh_store

CFG = TrainingConfig(params={"n_estimators": 40}, labels=LabelConfig(kind="fixed", horizon=12))


@pytest.fixture(scope="module")
def module_store(tmp_path_factory):
    """One store for the module (creating one costs seconds); each test uses its own model name."""
    folder = tmp_path_factory.mktemp("mlflow")
    with fresh_store(folder) as exp:
        return f"sqlite:///{folder / 'mlflow.db'}", exp


@pytest.fixture
def store(module_store):
    uri, exp = module_store
    before = os.environ.pop("MLFLOW_TRACKING_URI", None)
    use_store(uri)
    yield exp
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if before is not None:
        os.environ["MLFLOW_TRACKING_URI"] = before
    mlflow.set_tracking_uri("")


def _train_and_register(candles, exp, days, name="test_model"):
    c = candles.filter(pl.col("ts") < pl.col("ts").min() + pl.duration(days=days))
    feats, labels = compute_features(c, CFG.features), compute_labels(c, CFG.labels)
    result = train(feats, labels, CFG)
    with mlflow.start_run(experiment_id=exp):
        info = log_training(result, oos_backtest(c, result.oos, CFG), model_name=name)
    return info, promote(info, result.oos, c, labels), result


def test_training_is_a_run_with_params_metrics_features_and_a_registered_model(candles, store):
    info, promo, result = _train_and_register(candles, store, 60)
    assert (info.version, promo.alias) == ("1", CHAMPION)
    run = mlflow.MlflowClient().get_run(info.run_id)
    assert run.data.params["label.kind"] == "fixed" and run.data.params["model"] == "lightgbm"
    assert {"cv_auc", "cv_log_loss", "oos_sharpe", "oos_dsr", "oos_pbo"} <= set(run.data.metrics)
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(info.run_id)}
    assert {"features.json", "oos_predictions.parquet", "oos_backtest.json"} <= arts
    assert info.feature_names == result.feature_names and info.features == CFG.features
    # the registered model predicts exactly what the trained one does
    feats = compute_features(candles, CFG.features)
    assert predict_frame(load_version(info), feats, info.feature_names).equals(predict_frame(result.model, feats, result.feature_names))


def test_retrain_becomes_champion_only_if_it_beats_the_champion_out_of_sample(candles, store):
    _train_and_register(candles, store, 45, "retrained")
    _, second, _ = _train_and_register(candles, store, 90, "retrained")
    champ = resolve("retrained", CHAMPION)
    if second.alias == CHAMPION:
        assert second.candidate_loss < second.champion_loss and champ.version == "2"
    else:
        assert second.candidate_loss >= second.champion_loss and champ.version == "1"
        assert resolve("retrained", CHALLENGER).version == "2"
    assert second.compared_rows > 500  # the rows after the first model's data, out of sample for both


def test_an_equal_retrain_stays_challenger(candles, store):
    _train_and_register(candles, store, 45, "equal")
    _, second, _ = _train_and_register(candles, store, 45, "equal")  # same data, same seed: the same model again
    # the champion's data ends where the candidate's does: nothing is out of sample for both
    assert second.alias == CHALLENGER and second.compared_rows == 0
    assert resolve("equal", CHAMPION).version == "1" and resolve("equal", CHALLENGER).version == "2"


def _registry_contents() -> dict:
    client = mlflow.MlflowClient()
    rm = client.get_registered_model("test_model")
    versions = sorted(client.search_model_versions("name='test_model'"), key=lambda v: int(v.version))
    out = {"aliases": {k: str(v) for k, v in rm.aliases.items()}, "versions": []}
    for v in versions:
        run = client.get_run(v.run_id)
        out["versions"].append({"version": v.version, "tags": dict(v.tags), "params": run.data.params, "metrics": run.data.metrics})
    return out


@pytest.mark.slow
def test_identical_runs_give_identical_registry_contents(candles, tmp_path):
    contents = []
    for k in range(2):
        (tmp_path / str(k)).mkdir()
        with fresh_store(tmp_path / str(k)) as exp:
            _train_and_register(candles, exp, 45)
            _train_and_register(candles, exp, 90)
            contents.append(_registry_contents())
    assert contents[0] == contents[1]
    assert json.loads(contents[0]["versions"][0]["tags"]["feature_names"])
    assert contents[0]["aliases"][CHAMPION] in ("1", "2")


def test_model_info_of_a_foreign_version_names_the_missing_tag(candles, store):
    info, _, _ = _train_and_register(candles, store, 45, "foreign")
    mlflow.MlflowClient().delete_model_version_tag("foreign", info.version, "features")
    with pytest.raises(DataError, match="features"):
        model_info("foreign", info.version)


def test_registered_model_keeps_its_outlier_gate_after_reload(candles, store):
    import mlflow.sklearn
    import numpy as np

    from quantdag.ml.outliers import OutlierGatedClassifier

    info, _, result = _train_and_register(candles, store, 45, "gated")
    run = mlflow.MlflowClient().get_run(info.run_id)
    assert {"outliers_train_frac", "outliers_oos_frac", "outliers_final_train_frac"} <= set(run.data.metrics)
    assert run.data.params["outliers.method"] == "di" and json.loads(mlflow.MlflowClient().get_model_version("gated", info.version).tags["outliers"])
    reloaded = mlflow.sklearn.load_model(f"models:/gated/{info.version}")  # from the store, not load_version's cache
    assert isinstance(reloaded, OutlierGatedClassifier) and reloaded is not result.model
    feats = compute_features(candles, CFG.features)
    spike = feats.with_columns([pl.when(pl.int_range(pl.len()) == 1500).then(pl.col(c) * 100 + 50).otherwise(pl.col(c)).alias(c)
                                for c in result.feature_names])  # fmt: skip
    a = predict_frame(reloaded, spike, info.feature_names)["p_up"].to_numpy()
    np.testing.assert_array_equal(a, predict_frame(result.model, spike, result.feature_names)["p_up"].to_numpy())  # NaN where NaN
    assert np.isnan(a[1500]) and np.isfinite(a).mean() > 0.9
    np.testing.assert_array_equal(reloaded.reference_, result.model.reference_)


def test_a_champion_with_table_features_is_compared_on_the_stored_features(candles, store):
    """A champion whose features read another table (sentiment.bars) cannot be rebuilt from candles: the
    retraining compares on the stored feature rows; without them it stays challenger, saying why."""
    import numpy as np

    from quantdag.ml.features import FeatureConfig

    cfg = TrainingConfig(params={"n_estimators": 20}, labels=CFG.labels, features=FeatureConfig(groups=("returns", "sentiment")))
    rng = np.random.default_rng(5)
    bars = candles.select("exchange", "symbol", "timeframe", "ts").with_columns(
        sent_count=pl.Series(rng.integers(0, 3, candles.height), dtype=pl.Int32), sent_mean=pl.Series(rng.normal(0, 0.3, candles.height)),
        sent_dispersion=pl.Series(rng.random(candles.height)), sent_decayed=pl.Series(rng.normal(0, 0.2, candles.height)))
    stored = compute_features(candles, cfg.features, extra={"sentiment.bars": bars})  # what ml.features holds
    promotions = []
    for days, features in ((45, stored), (90, stored), (90, None)):
        c = candles.filter(pl.col("ts") < pl.col("ts").min() + pl.duration(days=days))
        labels = compute_labels(c, cfg.labels)
        result = train(stored.join(c.select("exchange", "symbol", "timeframe", "ts"), on=["exchange", "symbol", "timeframe", "ts"]),
                       labels, cfg)
        with mlflow.start_run(experiment_id=store):
            info = log_training(result, None, model_name="with_news")
        promotions.append(promote(info, result.oos, c, labels, features=features))
    first, compared, blind = promotions
    assert first.alias == CHAMPION and compared.compared_rows > 500  # compared on the stored rows
    assert blind.alias == CHALLENGER and "cannot be rebuilt" in blind.reason
