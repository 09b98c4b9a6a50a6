"""Configured clients the assets ask for: the DuckDB warehouse, the exchange, MLflow, news feeds."""

from resources.exchange import ExchangeResource, LiveExchangeResource, SimulatedExchangeResource
from resources.factory import PROJECT_ROOT, make_exchange, make_news, make_resources
from resources.mlflow import MlflowResource
from resources.news import LiveNewsResource, NewsResource, SimulatedNewsResource
from resources.warehouse import WarehouseResource

__all__ = [
    "PROJECT_ROOT",
    "ExchangeResource",
    "LiveExchangeResource",
    "LiveNewsResource",
    "MlflowResource",
    "NewsResource",
    "SimulatedExchangeResource",
    "SimulatedNewsResource",
    "WarehouseResource",
    "make_exchange",
    "make_news",
    "make_resources",
]
