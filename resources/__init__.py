"""Configured clients the assets ask for: the DuckDB warehouse, the exchange, MLflow."""

from resources.exchange import ExchangeResource
from resources.mlflow import MlflowResource
from resources.warehouse import WarehouseResource
from resources.factory import PROJECT_ROOT, DEFAULT_DATA_DIR, make_resources

__all__ = [
    "DEFAULT_DATA_DIR",
    "PROJECT_ROOT",
    "ExchangeResource",
    "MlflowResource",
    "WarehouseResource",
    "make_resources",
]
