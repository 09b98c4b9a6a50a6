"""Configured clients the assets ask for: the DuckDB warehouse, the exchange, MLflow."""

from resources.exchange import ExchangeResource, LiveExchangeResource, SimulatedExchangeResource
from resources.factory import PROJECT_ROOT, make_exchange, make_resources
from resources.mlflow import MlflowResource
from resources.warehouse import WarehouseResource

__all__ = [
    "PROJECT_ROOT",
    "ExchangeResource",
    "LiveExchangeResource",
    "MlflowResource",
    "SimulatedExchangeResource",
    "WarehouseResource",
    "make_exchange",
    "make_resources",
]
