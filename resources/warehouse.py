"""The DuckDB warehouse as a Dagster resource: a path, and short connections opened on demand."""

from __future__ import annotations

import dagster as dg

from quantdag.store import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The project's DuckDB file. Connections open inside asset bodies only, never at import."""

    path: str
    lock_timeout: float = 100.0
    #: the heavy outputs' Parquet folder (``warehouse.outputs: parquet``), else None
    parquet_dir: str | None = None

    def get(self, *, read_only: bool = False) -> Warehouse:
        return Warehouse(self.path, read_only=read_only, lock_timeout=self.lock_timeout, parquet_dir=self.parquet_dir)
