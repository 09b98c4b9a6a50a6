"""Machine learning: ``ml.features`` (daily, like the indicators), ``ml.labels``, the registered model, ``ml.predictions``."""

from collections.abc import Iterator

import dagster as dg

from assets.common import DUCKDB_POOL, metrics_table, mlflow_run_link, report_metadata, retry_transient
from assets.partitions import SINGLE_RUN, Partitions
from quantdag.config import ProjectConfig
from quantdag.stages.ml import TrainingSkipped, build_features, build_labels, build_predictions, feature_lookback_days, train_model
from resources import ExchangeResource, MlflowResource, WarehouseResource

#: The MLflow experiment of the trainings.
EXPERIMENT = "ml"
#: Out-of-sample backtest figures shown per market.
OOS_METRICS = ("total_return", "sharpe", "max_drawdown", "n_trades", "exposure")


class TrainingRunConfig(dg.Config):
    """Run options of a training."""

    holdout_days: int = 0  # the last days kept out of the training: the ml_model strategy forward-tests on them


def build(config: ProjectConfig, parts: Partitions) -> list[dg.AssetsDefinition]:
    """The ML assets of ``config.ml`` (none when disabled)."""
    ml = config.ml
    if not ml.enabled:
        return []
    training = ml.training_config()
    markets = config.ml_markets
    lookback = dg.TimeWindowPartitionMapping(
        start_offset=-feature_lookback_days(markets, training.features), allow_nonexistent_upstream_partitions=True
    )

    @dg.asset(
        partitions_def=parts.daily,
        backfill_policy=SINGLE_RUN,
        group_name="ml_features",
        pool=DUCKDB_POOL,
        deps=[dg.AssetDep("candles", partition_mapping=lookback)]
        + ([dg.AssetDep("sentiment_bars", partition_mapping=lookback)] if "sentiment" in training.features.groups else [])
        + ([dg.AssetDep("market_events", partition_mapping=lookback)] if "market_events" in training.features.groups else []),
        kinds={"duckdb", "numba"},
        metadata={"table": "ml.features", "markets": ", ".join(m.key for m in markets)},
    )
    def ml_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
        """Model features per candle of the ML markets (quantdag.yaml: ml.features); NULL while warming up."""
        windows = {m.on(exchange.venue): parts.day_windows(context) for m in markets}
        with retry_transient():
            report = build_features(warehouse.get(), windows, training.features)
        return dg.MaterializeResult(metadata=report_metadata(report))

    @dg.asset(
        group_name="ml",
        pool=DUCKDB_POOL,
        deps=[dg.AssetDep("candles", partition_mapping=dg.AllPartitionMapping())],
        kinds={"duckdb", "numba"},
        metadata={"table": "ml.labels", "kind": training.labels.kind},
    )
    def ml_labels(warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
        """Labels of the ML markets, each with the time its outcome is known (known_at)."""
        with retry_transient():
            report = build_labels(warehouse.get(), [m.on(exchange.venue) for m in markets], training.labels)
        return dg.MaterializeResult(metadata=report_metadata(report))

    @dg.asset(
        group_name="ml",
        pool=DUCKDB_POOL,
        deps=[dg.AssetDep("ml_features", partition_mapping=dg.AllPartitionMapping()), "ml_labels"],
        kinds={"mlflow", "lightgbm"},
        metadata={"registered_model": ml.model_name, "model": ml.model},
        output_required=False,
    )
    def ml_model(context: dg.AssetExecutionContext, config: TrainingRunConfig, warehouse: WarehouseResource,
                 exchange: ExchangeResource, mlflow: MlflowResource) -> Iterator[dg.MaterializeResult]:  # fmt: skip
        """A purged walk-forward training, its out-of-sample backtest (DSR, PBO), a registered version; champion only if it beats the current one."""
        try:
            with retry_transient():
                r = train_model(
                    warehouse.get(), [m.on(exchange.venue) for m in markets], training, model_name=ml.model_name,
                    start_run=lambda experiment, **kw: mlflow.start_run(context, EXPERIMENT, **kw), holdout_days=config.holdout_days,
                )  # fmt: skip
        except TrainingSkipped as exc:  # too little history yet: no run, no version, the reason in the log
            context.log.warning(str(exc))
            return
        yield dg.MaterializeResult(metadata={
            "version": dg.MetadataValue.text(r.version),
            "holdout_days": dg.MetadataValue.int(config.holdout_days),
            "alias": dg.MetadataValue.text(r.promotion.alias),
            "promotion": dg.MetadataValue.text(r.promotion.reason),
            **{k: dg.MetadataValue.float(float(v)) for k, v in r.metrics.items() if k.startswith(("cv_", "oos_", "outliers_")) and "fold" not in k},
            "oos_backtest": metrics_table(r.per_market, OOS_METRICS),
            "mlflow_run": mlflow_run_link(r.experiment_id, r.run_id),
            "seconds": dg.MetadataValue.float(round(r.seconds, 3)),
        })  # fmt: skip

    @dg.asset(
        group_name="ml",
        pool=DUCKDB_POOL,
        deps=["ml_model"],
        kinds={"duckdb", "mlflow"},
        metadata={"table": "ml.predictions"},
    )
    def ml_predictions(warehouse: WarehouseResource, exchange: ExchangeResource, mlflow: MlflowResource) -> dg.MaterializeResult:
        """The champion's P(up) per candle, and its training's out-of-sample predictions (oos = true)."""
        mlflow.experiment_id(EXPERIMENT)  # points MLflow at the pipeline's store
        with retry_transient():
            report = build_predictions(warehouse.get(), [m.on(exchange.venue) for m in markets], ml.model_name)
        return dg.MaterializeResult(metadata=report_metadata(report))

    return [ml_features, ml_labels, ml_model, ml_predictions]
