"""Trainings as MLflow runs, models as registered versions with ``champion``/``challenger`` aliases.

The lifecycle users of FreqAI found confusing (#8409) is explicit here:

1. every training is one MLflow run: its parameters (features, labels, model, validation), its
   cross-validation and out-of-sample backtest metrics, the feature list and the model;
2. the model is registered as a new version of ``<name>`` and tagged with what a consumer needs
   to use it (feature settings, feature names, the trading rule, the end of its training data);
3. :func:`promote` makes the new version ``champion`` only if it beats the current champion
   **out of sample**: on the candles after the champion's training data ended, which neither
   model learned from (the candidate's walk-forward predictions there versus the champion's
   predictions), by log loss. Otherwise it is the ``challenger``.

Consumers (the ``ml_model`` strategy, the predictions stage) load ``models:/<name>@<alias>``
through :func:`load_version`; a version's tags are enough to rebuild its features.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantdag.data.frames import CANDLE_KEY, utc_ms
from quantdag.errors import ConfigurationError, DataError
from quantdag.ml.features import FeatureConfig, compute_features
from quantdag.ml.labels import LabelConfig
from quantdag.ml.models import log_loss
from quantdag.ml.training import OosBacktest, TrainingResult, predict_frame

CHAMPION, CHALLENGER = "champion", "challenger"
ALIASES = (CHAMPION, CHALLENGER)
#: Out-of-sample rows after the champion's data that a comparison needs, else no promotion.
MIN_COMPARE_ROWS = 100


@dataclass(frozen=True)
class ModelInfo:
    """What a registered version says about itself (from its tags)."""

    name: str
    version: str
    features: FeatureConfig
    feature_names: tuple[str, ...]
    threshold: float
    long_short: bool
    train_end_ms: int
    run_id: str
    labels: LabelConfig = field(default_factory=LabelConfig)
    #: the timeframes of the markets it was trained on (its features mean something only there)
    timeframes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Promotion:
    """Outcome of :func:`promote`."""

    version: str
    alias: str  # champion or challenger
    reason: str
    candidate_loss: float = math.nan
    champion_loss: float = math.nan
    compared_rows: int = 0


def _client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def use_store(tracking_uri: str) -> None:
    """Point model look-ups (the ``ml_model`` strategy) at ``tracking_uri`` (the pipeline's store).

    Also exported as ``MLFLOW_TRACKING_URI`` so that worker processes a sweep spawns find the
    same models (a spawned worker that found none would silently trade nothing).
    """
    import mlflow

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    mlflow.set_tracking_uri(tracking_uri)


def store() -> str | None:
    """The MLflow store models are looked up in, or None when none was configured.

    Only an explicitly set tracking URI counts (:func:`use_store`, ``mlflow.set_tracking_uri`` or
    ``MLFLOW_TRACKING_URI``): MLflow's default would create ``./mlflow.db`` in the working
    directory on the first look-up. A sqlite store whose file does not exist holds no model.
    """
    import mlflow

    if not mlflow.is_tracking_uri_set():
        return None
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    return uri


def log_training(result: TrainingResult, backtest: OosBacktest | None, *, model_name: str) -> ModelInfo:
    """Log ``result`` into the active MLflow run and register its model as a new version of ``model_name``.

    Raises
    ------
    ConfigurationError
        If no MLflow run is active.
    """
    import lightgbm
    import mlflow
    import sklearn

    run = mlflow.active_run()
    if run is None:
        raise ConfigurationError("log_training needs an active MLflow run (open one with the MLflow resource)")
    cfg = result.config
    metrics = {**result.metrics, **(backtest.metrics() if backtest else {})}
    mlflow.log_params(cfg.as_params())
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)})
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "features.json").write_text(json.dumps({"config": cfg.features.as_dict(), "names": list(result.feature_names)}, indent=1))
        result.oos.write_parquet(d / "oos_predictions.parquet")
        if backtest is not None:
            (d / "oos_backtest.json").write_text(json.dumps(backtest.per_market, indent=1, default=str))
        mlflow.log_artifacts(str(d))
    tags = {
        "features": json.dumps(cfg.features.as_dict(), sort_keys=True),
        "feature_names": json.dumps(list(result.feature_names)),
        "threshold": str(cfg.threshold),
        "long_short": str(cfg.long_short),
        "train_end_ms": str(result.train_end_ms),
        "labels": json.dumps(cfg.labels.as_dict(), sort_keys=True),
        "timeframes": json.dumps(sorted(result.oos["timeframe"].unique().to_list())),
        # informational: the fitted rule itself is part of the logged model (quantdag.ml.outliers)
        "outliers": json.dumps(cfg.outliers.as_dict(), sort_keys=True),
    }
    info = mlflow.sklearn.log_model(
        result.model, name="model", registered_model_name=model_name, skops_trusted_types=_own_types(result.model),
        pip_requirements=[f"lightgbm=={lightgbm.__version__}", f"scikit-learn=={sklearn.__version__}"],
    )  # fmt: skip
    client = _client()
    version = str(info.registered_model_version)
    for k, v in tags.items():
        client.set_model_version_tag(model_name, version, k, v)
    return model_info(model_name, version)


def _own_types(model: Any) -> list[str]:
    # MLflow saves with skops, which refuses types it does not know (LightGBM's Booster): these
    # are the types of the model we just trained ourselves, so they are trusted.
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def model_info(name: str, version: str) -> ModelInfo:
    """A registered version's settings, from its tags."""
    mv = _client().get_model_version(name, version)
    t = mv.tags
    try:
        return ModelInfo(
            name, str(mv.version), FeatureConfig.from_mapping(json.loads(t["features"])), tuple(json.loads(t["feature_names"])),
            float(t["threshold"]), t["long_short"] == "True", int(t["train_end_ms"]), mv.run_id,
            LabelConfig(**json.loads(t.get("labels", "{}"))), tuple(json.loads(t.get("timeframes", "[]"))),
        )  # fmt: skip
    except KeyError as exc:
        raise DataError(f"model {name} version {version} lacks tag {exc}: it was not registered by quantdag.ml") from None


def resolve(name: str, alias_or_version: str) -> ModelInfo | None:
    """The version an alias (``champion``) or a version number points at; None if the alias is
    unset or no store is configured (:func:`store`)."""
    from mlflow.exceptions import MlflowException

    if store() is None:
        return None
    client = _client()
    try:
        if alias_or_version.isdigit():
            return model_info(name, alias_or_version)
        mv = client.get_model_version_by_alias(name, alias_or_version)
    except MlflowException:
        return None
    return model_info(name, str(mv.version))


_LOADED: dict[tuple[str, str, str], Any] = {}


def load_version(info: ModelInfo) -> Any:
    """The fitted model of a version (cached per tracking store, name and version: versions never change)."""
    import mlflow
    import mlflow.sklearn

    key = (mlflow.get_tracking_uri(), info.name, info.version)
    if key not in _LOADED:
        _LOADED[key] = mlflow.sklearn.load_model(f"models:/{info.name}/{info.version}")
    return _LOADED[key]


def promote(new: ModelInfo, oos: pl.DataFrame, candles: pl.DataFrame, labels: pl.DataFrame,
            *, features: pl.DataFrame | None = None, min_rows: int = MIN_COMPARE_ROWS) -> Promotion:  # fmt: skip
    """Make ``new`` the champion if it beats the current one out of sample, else the challenger.

    ``oos`` is the new model's walk-forward predictions (candle key + ``p_up``); ``candles`` and
    ``labels`` those it was trained on; ``features`` the stored feature rows (``ml.features``),
    from which the champion predicts when they hold its columns (else they are computed from
    ``candles``, which works for features of candles alone). The comparison uses the labelled
    rows after the champion's ``train_end_ms`` -- out of sample for both models.
    """
    from mlflow.exceptions import MlflowException

    client = _client()
    champ = resolve(new.name, CHAMPION)
    if champ is None:
        client.set_registered_model_alias(new.name, CHAMPION, new.version)
        return Promotion(new.version, CHAMPION, "no champion yet")
    if champ.version == new.version:
        return Promotion(new.version, CHAMPION, "already champion")
    lab = labels.with_columns(utc_ms(labels, "ts")).filter(pl.col("ts").dt.epoch("ms") > champ.train_end_ms)
    rows = oos.with_columns(utc_ms(oos, "ts")).join(lab.select(*CANDLE_KEY, "y"), on=list(CANDLE_KEY), how="inner")
    if rows.height < min_rows:
        client.set_registered_model_alias(new.name, CHALLENGER, new.version)
        return Promotion(new.version, CHALLENGER, f"only {rows.height} out-of-sample rows after the champion's data (< {min_rows})",
                         compared_rows=rows.height)  # fmt: skip
    if features is not None and all(c in features.columns for c in champ.feature_names):
        feats = features
    else:
        try:
            feats = compute_features(candles, champ.features)
        except DataError as exc:  # its inputs (other tables, peers) are not at hand: no fair comparison
            client.set_registered_model_alias(new.name, CHALLENGER, new.version)
            return Promotion(new.version, CHALLENGER, f"champion v{champ.version}'s features cannot be rebuilt to compare: {exc}")
    champ_p = predict_frame(load_version(champ), feats, champ.feature_names)
    both = rows.join(champ_p.rename({"p_up": "p_champ"}), on=list(CANDLE_KEY), how="inner")
    y = both["y"].to_numpy()
    new_loss = log_loss(y, both["p_up"].to_numpy())
    old_loss = log_loss(y, both["p_champ"].fill_null(np.nan).to_numpy())
    if new_loss < old_loss:
        client.set_registered_model_alias(new.name, CHAMPION, new.version)
        try:
            if client.get_model_version_by_alias(new.name, CHALLENGER).version == new.version:
                client.delete_registered_model_alias(new.name, CHALLENGER)
        except MlflowException:  # no challenger alias set
            pass
        return Promotion(new.version, CHAMPION, f"log loss {new_loss:.5f} < champion v{champ.version}'s {old_loss:.5f}",
                         new_loss, old_loss, both.height)  # fmt: skip
    client.set_registered_model_alias(new.name, CHALLENGER, new.version)
    return Promotion(new.version, CHALLENGER, f"log loss {new_loss:.5f} >= champion v{champ.version}'s {old_loss:.5f}",
                     new_loss, old_loss, both.height)  # fmt: skip
