"""Heavy outputs as Parquet files that DuckDB reads as views (``warehouse.outputs: parquet``).

DuckDB admits one writer process per file. Where several machines run backtests, the bulk of what
they write (every parameter set's signals, trades and equity curve) goes to one Parquet file per
slice instead, under a folder every worker sees (a local directory here, a mounted bucket in
deployment); the DuckDB file keeps the small tables and reads the files through views, so every
query, check and report reads them as before. ``meta.parquet_tables`` records which tables live
where, so ``Warehouse.replace`` needs nothing but its connection to route a write.

A slice's file is written next to its final name first and moved into place only after the
DuckDB transaction it belongs to commits (a rollback deletes it): the files and the small tables
change together, and a re-run replaces the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from quantdag.errors import ConfigurationError, DataError

#: Tables that can live in Parquet: each is replaced by column-only slices (a parameter set × market).
PARQUET_TABLES = ("signals.signals", "backtest.trades", "backtest.equity")
#: The columns a slice of each of them names, hence a file per distinct tuple of them.
SLICE_COLUMNS = ("strategy", "params_hash", "exchange", "symbol", "timeframe")
SCHEMA_FILE = "_schema.parquet"
_META = "CREATE TABLE IF NOT EXISTS meta.parquet_tables (table_name VARCHAR PRIMARY KEY, dir VARCHAR NOT NULL)"


@dataclass(frozen=True)
class _Move:
    """A finished file waiting for its transaction: ``tmp`` becomes ``final`` (or ``final`` goes)."""

    final: Path
    tmp: Path | None

    def apply(self) -> None:
        if self.tmp is None:
            self.final.unlink(missing_ok=True)
        else:
            os.replace(self.tmp, self.final)

    def discard(self) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


#: Moves waiting for the commit of the transaction open on a connection (``id(con)``).
_PENDING: dict[int, list[_Move]] = {}


def transaction_started(con: duckdb.DuckDBPyConnection) -> None:
    _PENDING[id(con)] = []


def transaction_ended(con: duckdb.DuckDBPyConnection, committed: bool) -> None:
    """Move a committed transaction's files into place, or delete a rolled-back one's."""
    for move in _PENDING.pop(id(con), []):
        move.apply() if committed else move.discard()


def table_dir(root: Path, table: str) -> Path:
    return root / Path(*table.split("."))


def slice_file(where: Mapping[str, Any]) -> str:
    """The file name of a slice: a digest of its column values (names and values may hold '/')."""
    return hashlib.sha256(json.dumps(sorted(where.items()), default=str).encode()).hexdigest()[:24] + ".parquet"


def dir_of(con: duckdb.DuckDBPyConnection, table: str) -> Path | None:
    """Where ``table``'s files are, if it lives in Parquet."""
    try:
        rows = con.execute("SELECT dir FROM meta.parquet_tables WHERE table_name = ?", [table]).fetchall()
    except duckdb.CatalogException:
        return None
    return Path(rows[0][0]) if rows else None


def _kind(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    schema, name = table.split(".")
    rows = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, name]
    ).fetchall()  # fetch to the end: DuckDB 2.0 refuses other work while a result is unfinished
    return rows[0][0] if rows else None


def _write(frame: pl.DataFrame, final: Path) -> Path:
    tmp = final.with_name(f"{final.name}.{uuid.uuid4().hex}.tmp")
    frame.write_parquet(tmp)
    return tmp


def attach(con: duckdb.DuckDBPyConnection, root: Path | None, ddl: Mapping[str, str]) -> None:
    """Put :data:`PARQUET_TABLES` under ``root`` (views over their files), or back into DuckDB
    tables when ``root`` is None; rows already stored move along. ``ddl``: table -> its CREATE."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(_META)
    for table in PARQUET_TABLES:
        kind = _kind(con, table)
        if root is not None:
            d = table_dir(root, table)
            d.mkdir(parents=True, exist_ok=True)
            if kind == "BASE TABLE":
                con.execute(f"COPY (SELECT * FROM {table} LIMIT 0) TO '{d / SCHEMA_FILE}' (FORMAT parquet)")
                rows = con.sql(f"SELECT * FROM {table}").pl()
                for key, part in (rows.partition_by(list(SLICE_COLUMNS), as_dict=True).items() if rows.height else []):
                    final = d / slice_file(dict(zip(SLICE_COLUMNS, key)))
                    os.replace(_write(part, final), final)
                con.execute(f"DROP TABLE {table}")
            glob = str(d / "*.parquet").replace("'", "''")
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{glob}', union_by_name = true)")
            con.execute("INSERT OR REPLACE INTO meta.parquet_tables VALUES (?, ?)", [table, str(d)])
        elif kind == "VIEW":
            rows = con.sql(f"SELECT * FROM {table}").pl()
            con.execute(f"DROP VIEW {table}")
            con.execute(ddl[table])
            if rows.height:
                con.register("_parquet_rows", rows)
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _parquet_rows")
                con.unregister("_parquet_rows")
            con.execute("DELETE FROM meta.parquet_tables WHERE table_name = ?", [table])


def replace(
    con: duckdb.DuckDBPyConnection, table: str, d: Path, frame: pl.DataFrame, slices: Sequence[Any], order_by: Sequence[str]
) -> int:
    """``Warehouse.replace`` for a table in Parquet: one file per slice, moved in at commit."""
    cols = sorted(slices[0].where)
    if any(s.time_column is not None or sorted(s.where) != cols for s in slices):
        raise ConfigurationError(f"{table} lives in Parquet: its slices must all be the same columns, no time window")
    schema = pl.read_parquet_schema(d / SCHEMA_FILE)
    extra = [c for c in frame.columns if c not in schema]
    if extra:
        raise DataError(f"frame does not fit {table}: no column(s) {extra}")
    parts: dict[tuple, pl.DataFrame] = {}
    if frame.height:
        aligned = frame.select(
            [pl.col(c).cast(t) if c in frame.columns else pl.lit(None, dtype=t).alias(c) for c, t in schema.items()]
        )
        if order_by:
            aligned = aligned.sort(list(order_by))
        parts = aligned.partition_by(cols, as_dict=True)
    moves = []
    for s in slices:
        final = d / slice_file(s.where)
        part = parts.get(tuple(s.where[c] for c in cols))
        moves.append(_Move(final, _write(part, final) if part is not None else None))
    pending = _PENDING.get(id(con))
    if pending is None:  # not inside Warehouse.transaction: nothing to wait for
        for move in moves:
            move.apply()
    else:
        pending.extend(moves)
    return frame.height
