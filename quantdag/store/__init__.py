"""The DuckDB warehouse: one file, DDL from ``sql/``, idempotent slice writes."""

from quantdag.store.warehouse import (
    Slice,
    Warehouse,
    WarehouseCorrupt,
    WarehouseError,
    WarehouseLocked,
    begin,
    ddl_names,
    load_sql,
)

__all__ = [
    "Slice", "Warehouse", "WarehouseCorrupt", "WarehouseError", "WarehouseLocked", "begin", "ddl_names", "load_sql",
]
