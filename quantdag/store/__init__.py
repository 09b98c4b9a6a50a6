"""The DuckDB warehouse: one file, DDL from ``sql/``, idempotent slice writes."""

from quantdag.store.warehouse import Slice, Warehouse, WarehouseLocked, begin, ddl_names, load_sql

__all__ = ["Slice", "Warehouse", "WarehouseLocked", "begin", "ddl_names", "load_sql"]
