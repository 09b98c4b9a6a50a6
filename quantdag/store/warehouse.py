"""The DuckDB file every stage reads and writes: schema from ``sql/``, idempotent partition writes.

Why a writer of our own instead of dagster-duckdb-polars: that IO manager cannot load inputs on
duckdb 2.0 and inserts positionally, swapping columns silently (see ``shared/notes/stack.md``).
Here every write replaces a *slice* (one or more markets over a time window) with a delete and an
``INSERT ... BY NAME`` inside one transaction, rows sorted by key, so a re-run gives the same
table and a failure leaves the previous contents untouched. Several tables can be replaced in one
transaction (candles together with their gaps).

DuckDB admits one writing process at a time: connections are opened per call and closed at
once (a long-lived writer such as the OMS store takes one from ``Warehouse.open`` and closes it
itself), a conflicting lock is retried with bounded back-off, and readers open ``read_only``.
Writes outside ``replace`` go through ``Warehouse.insert`` / ``Warehouse.update``, which name
every column, never through a positional ``VALUES``.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from quantdag.errors import ConfigurationError, DataError, QuantdagError
from quantdag.store import parquet

log = logging.getLogger(__name__)
#: held while a thread opens a connection: two threads attaching one file at once fail ("Unique file handle conflict")
_CONNECTING = threading.Lock()

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


class WarehouseError(QuantdagError):
    """The DuckDB file cannot be used: the message names the file and says what to do."""


class WarehouseLocked(WarehouseError):
    """Another process held the DuckDB file's write lock for longer than the retry budget (transient)."""


class WarehouseCorrupt(WarehouseError):
    """The DuckDB file is damaged (not a database, truncated, or a block fails its checksum)."""


_CORRUPT_HINT = "restore it from a backup, or move it aside and re-run the pipeline (make demo) to rebuild it from the exchange"


def _typed(path: Path, exc: duckdb.Error) -> BaseException:
    """A storage failure as :class:`WarehouseError`; any other database error (bad SQL, a constraint) unchanged."""
    low = str(exc).lower()
    storage = isinstance(exc, duckdb.IOException) or "corrupt" in low or "permission denied" in low
    return storage_error(path, exc) if storage else exc


def storage_error(path: Path, exc: BaseException) -> WarehouseError:
    """The typed error for a failure to open or use ``path``, with what to do about it."""
    text = str(exc)
    low = text.lower()
    if "not a valid duckdb database" in low or "corrupt" in low or "could not read enough bytes" in low:
        return WarehouseCorrupt(f"the warehouse {path} is damaged ({text}); {_CORRUPT_HINT}")
    if "is a directory" in low:
        return WarehouseError(f"the warehouse path {path} is a directory, not a DuckDB file; point data_dir elsewhere")
    if "permission denied" in low or "read-only file system" in low or isinstance(exc, PermissionError):
        return WarehouseError(
            f"cannot write the warehouse {path}: {text}; make its folder writable or set QUANTDAG_DATA_DIR (or "
            "data_dir in quantdag.yaml) to a writable folder"
        )
    return WarehouseError(f"cannot use the warehouse {path}: {text}")


def load_sql(name: str) -> str:
    """Text of ``sql/<name>.sql``.

    Raises
    ------
    ConfigurationError
        If no such file exists.
    """
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise ConfigurationError(f"no SQL file named {name!r} in {SQL_DIR}")
    return path.read_text()


def ddl_names() -> list[str]:
    """Every ``create_*`` file, schemas first, so a fresh file gets the whole schema."""
    names = sorted(p.stem for p in SQL_DIR.glob("create_*.sql"))
    names.remove("create_schemas")
    return ["create_schemas", *names]


def _utc(value: datetime | int) -> datetime:
    """A tz-aware UTC datetime from a datetime (naive means UTC) or epoch milliseconds."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)


@dataclass(frozen=True)
class Slice:
    """Rows of a table: equal on ``where`` columns and with ``time_column`` in ``[start, end)``.

    ``start``/``end`` are datetimes (naive means UTC) or epoch milliseconds; a table whose time
    column is an epoch-ms BIGINT (``raw.candles``) sets ``epoch_ms=True``.
    """

    where: Mapping[str, Any] = field(default_factory=dict)
    time_column: str | None = "ts"
    start: datetime | int | None = None
    end: datetime | int | None = None
    epoch_ms: bool = False

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE clause (without the keyword) and its parameters."""
        clauses, params = [], []
        for column, value in sorted(self.where.items()):
            _check_ident(column)
            clauses.append(f'"{column}" = ?')
            params.append(value)
        if self.time_column is not None:
            _check_ident(self.time_column)
            for op, bound in ((">=", self.start), ("<", self.end)):
                if bound is None:
                    continue
                clauses.append(f'"{self.time_column}" {op} ?')
                if self.epoch_ms:
                    params.append(int(_utc(bound).timestamp() * 1000) if isinstance(bound, datetime) else int(bound))
                else:
                    params.append(_utc(bound))
        return (" AND ".join(clauses) or "TRUE"), params


def _check_ident(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigurationError(f"not a plain column name: {name!r}")


def _check_table(table: str) -> None:
    if not _IDENT.match(table):
        raise ConfigurationError(f"table must be 'schema.table' in lower case, got {table!r}")


class Warehouse:
    """One DuckDB file.

    Parameters
    ----------
    path:
        The database file. Its stem must differ from every schema name (DuckDB cannot tell a
        catalog from a schema of the same name).
    read_only:
        Open every connection read-only (dashboards, sensors): many readers may coexist.
    lock_timeout:
        Seconds to keep retrying a conflicting lock before :class:`WarehouseLocked`.
    """

    SCHEMAS = ("raw", "market", "features", "signals", "backtest", "optimize", "paper", "portfolio", "risk", "sentiment", "ml")

    def __init__(
        self, path: str | Path, *, read_only: bool = False, lock_timeout: float = 60.0, parquet_dir: str | Path | None = None
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        if self.path.stem in self.SCHEMAS:
            raise ConfigurationError(
                f"database file stem {self.path.stem!r} equals a schema name; rename {self.path.name}"
            )
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        self._schema_ready = False
        self._held: duckdb.DuckDBPyConnection | None = None
        #: where the heavy outputs live as Parquet (``quantdag.store.parquet``); None: in the DuckDB file
        self.parquet_dir = Path(parquet_dir).resolve() if parquet_dir is not None else None

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r}, read_only={self.read_only})"

    # ---- connections -----------------------------------------------------------------------

    def _dial(self) -> duckdb.DuckDBPyConnection:
        """A bare connection (UTC session), retrying a conflicting lock with bounded back-off."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                if not self.read_only:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                elif not self.path.exists():
                    raise ConfigurationError(f"database {self.path} does not exist (opened read-only)")
                with _CONNECTING:  # DuckDB's instance cache races when two threads open one file at once
                    con = duckdb.connect(str(self.path), read_only=self.read_only)
                con.execute("SET TimeZone = 'UTC'")
                return con
            except OSError as exc:  # the folder cannot be created
                raise storage_error(self.path.parent, exc) from exc
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise storage_error(self.path, exc) from exc
                if time.monotonic() >= deadline:
                    raise WarehouseLocked(
                        f"{self.path} stayed locked by another process for {self.lock_timeout:.0f}s: {exc}"
                    ) from exc
                log.info("warehouse %s is locked, retrying in %.2fs", self.path.name, delay)
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 2.0)
            except duckdb.Error as exc:  # e.g. a block failing its checksum while the file is opened
                raise _typed(self.path, exc) from exc

    def open(self) -> duckdb.DuckDBPyConnection:
        """A connection with the schema in place, owned by the caller, who must ``close()`` it.

        For long-lived writers (the OMS store keeps one open, since opening the file costs tens of
        milliseconds); the file stays locked against other processes until it is closed. Prefer
        :meth:`connect` or :meth:`transaction` everywhere else.

        Raises
        ------
        WarehouseLocked
            If another process held the write lock for longer than ``lock_timeout``.
        """
        con = self._dial()
        try:
            if not self.read_only and not self._schema_ready:
                self._create_schema(con)
        except duckdb.Error as exc:
            con.close()
            raise _typed(self.path, exc) from exc
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection with the schema in place; closed on exit (inside
        :meth:`session`, the session's connection, left open)."""
        held = self._held
        con = held if held is not None else self.open()
        try:
            yield con
        except duckdb.Error as exc:  # a damaged block surfaces only when read
            raise _typed(self.path, exc) from exc
        finally:
            if held is None:
                con.close()

    @contextmanager
    def session(self) -> Iterator[Warehouse]:
        """Hold one connection for every call inside the block (reads, writes, transactions).

        Opening the file costs ~20 ms; a stage that makes dozens of calls (a batch of parameter
        sets: a hundred backtests read candles, signals and verdicts, write and check) pays it
        once. The file stays locked against other processes until the block ends, so hold a
        session only where the caller holds the write slot anyway (the ``duckdb`` pool). Nested
        sessions share the outer one; one thread only, as DuckDB connections are.
        """
        if self._held is not None:
            yield self
            return
        self._held = self.open()
        try:
            yield self
        finally:
            con, self._held = self._held, None
            con.close()

    def _create_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        for name in ddl_names():
            con.execute(load_sql(name))
        ddl = {t: load_sql("create_" + t.replace(".", "_")) for t in parquet.PARQUET_TABLES}
        with begin(con):  # tables into Parquet views (or back), rows along, in one transaction
            parquet.attach(con, self.parquet_dir, ddl)
        self._schema_ready = True

    def ensure_schema(self) -> None:
        """Create every schema and table that does not exist yet."""
        with self.connect():
            pass

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside BEGIN ... COMMIT; any exception rolls everything back."""
        if self.read_only:
            raise ConfigurationError(f"{self!r} is read-only; cannot write")
        with self.connect() as con, begin(con):
            yield con

    # ---- writes ----------------------------------------------------------------------------

    @staticmethod
    def replace(
        con: duckdb.DuckDBPyConnection,
        table: str,
        frame: pl.DataFrame,
        slices: Sequence[Slice],
        *,
        order_by: Sequence[str] = (),
    ) -> int:
        """Delete ``slices`` of ``table`` and insert ``frame`` (by column name) on ``con``.

        Call inside :meth:`transaction`. Every row of ``frame`` must fall inside one of the
        slices, otherwise a re-run could not remove it and the write would not be idempotent.

        Raises
        ------
        DataError
            If ``frame`` has a row outside the slices, or a column the table lacks.
        """
        _check_table(table)
        if not slices:
            raise ConfigurationError(f"replace into {table} needs at least one slice")
        if frame.height:
            outside = _outside(frame, slices)
            if outside.height:
                raise DataError(
                    f"{outside.height} row(s) for {table} fall outside the slice being replaced, "
                    f"first: {outside.row(0, named=True)}"
                )
        files = parquet.dir_of(con, table) if table in parquet.PARQUET_TABLES else None
        if files is not None:
            return parquet.replace(con, table, files, frame, slices, order_by)
        clauses = [s.sql() for s in slices]  # one DELETE: a batch of 300 slices is one scan, not 300
        con.execute(
            f"DELETE FROM {table} WHERE " + " OR ".join(f"({where})" for where, _ in clauses),
            [p for _, params in clauses for p in params],
        )
        if frame.height and order_by:
            frame = frame.sort(list(order_by))
        return Warehouse.insert(con, table, frame)

    @staticmethod
    def insert(
        con: duckdb.DuckDBPyConnection,
        table: str,
        rows: pl.DataFrame | Sequence[Mapping[str, Any]],
    ) -> int:
        """Insert ``rows`` into ``table`` on ``con``, each value into the column of its name.

        Never by position: a positional ``INSERT ... VALUES`` swaps values silently once the table's
        column order differs from the tuple's (a column added to the DDL in the middle). ``rows`` is a
        polars frame (``INSERT ... BY NAME``) or mappings that all have the same keys, whose values
        are bound as parameters. Columns the rows omit take their default. Call inside
        :meth:`transaction` (or :func:`begin`) when it must commit with other writes; returns the
        number of rows.

        Raises
        ------
        ConfigurationError
            If ``table`` or a column is not a plain name.
        DataError
            If the rows name a column the table lacks, or the mappings' keys differ.
        """
        _check_table(table)
        if isinstance(rows, pl.DataFrame):
            if not rows.height:
                return 0
            view = f"_in_{table.replace('.', '_')}"
            con.register(view, rows)
            try:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {view}")
            except duckdb.BinderException as exc:
                raise DataError(f"frame does not fit {table}: {exc}") from exc
            finally:
                try:
                    con.unregister(view)
                except duckdb.TransactionException:
                    pass  # the failed insert aborted the transaction; the view dies with it
            return rows.height
        if not rows:
            return 0
        columns = list(rows[0])
        if not columns:
            raise DataError(f"rows for {table} name no column")
        for column in columns:
            _check_ident(column)
        params = []
        for row in rows:
            if set(row) != set(columns):
                raise DataError(f"rows for {table} differ in columns: {sorted(row)} vs {sorted(columns)}")
            params.append([row[c] for c in columns])
        names = ", ".join(f'"{c}"' for c in columns)
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
        try:
            for p in params:
                con.execute(sql, p)
        except duckdb.BinderException as exc:
            raise DataError(f"rows do not fit {table}: {exc}") from exc
        return len(params)

    @staticmethod
    def update(
        con: duckdb.DuckDBPyConnection,
        table: str,
        values: Mapping[str, Any],
        where: Mapping[str, Any],
    ) -> int:
        """Set the named columns of ``table`` to ``values`` in the rows equal to ``where``; returns rows changed.

        Both sides name their columns, so the update means the same whatever the column order.

        Raises
        ------
        ConfigurationError
            If ``table`` or a column is not a plain name, or ``values``/``where`` is empty (an
            unconditional update is never what a caller means).
        DataError
            If a column is missing from the table.
        """
        _check_table(table)
        if not values or not where:
            raise ConfigurationError(f"update of {table} needs values and a where clause")
        for column in (*values, *where):
            _check_ident(column)
        sets = ", ".join(f'"{c}" = ?' for c in values)
        conds = " AND ".join(f'"{c}" = ?' for c in where)
        try:
            result = con.execute(f"UPDATE {table} SET {sets} WHERE {conds}", [*values.values(), *where.values()])
        except duckdb.BinderException as exc:
            raise DataError(f"update does not fit {table}: {exc}") from exc
        changed = result.fetchone()
        return int(changed[0]) if changed else 0

    def replace_slices(
        self,
        table: str,
        frame: pl.DataFrame,
        slices: Sequence[Slice],
        *,
        order_by: Sequence[str] = (),
    ) -> int:
        """:meth:`replace` in a transaction of its own; returns the rows written."""
        with self.transaction() as con:
            return self.replace(con, table, frame, slices, order_by=order_by)

    # ---- reads -----------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """A query's result as polars, with timestamps as UTC datetime[ms]."""
        with self.connect() as con:
            df = con.sql(sql, params=list(params or [])).pl()
        return _ms(df)

    def read(self, table: str, slices: Sequence[Slice] = (), *, order_by: Sequence[str] = ()) -> pl.DataFrame:
        """Rows of ``table`` inside any of ``slices`` (all rows when none), sorted by ``order_by``."""
        _check_table(table)
        params: list[Any] = []
        if slices:
            parts = []
            for s in slices:
                where, p = s.sql()
                parts.append(f"({where})")
                params.extend(p)
            cond = " OR ".join(parts)
        else:
            cond = "TRUE"
        order = f" ORDER BY {', '.join(order_by)}" if order_by else ""
        for column in order_by:
            _check_ident(column)
        with self.connect() as con:
            df = con.sql(f"SELECT * FROM {table} WHERE {cond}{order}", params=params).pl()
        return _ms(df)

    def table_hash(self, table: str, order_by: Sequence[str]) -> str:
        """A content hash of ``table`` in key order: equal hashes mean identical tables."""
        _check_table(table)
        for column in order_by:
            _check_ident(column)
        with self.connect() as con:
            n, h = con.execute(
                f"SELECT count(*), coalesce(bit_xor(hash(t)), 0) FROM "
                f"(SELECT *, row_number() OVER (ORDER BY {', '.join(order_by)}) AS rn FROM {table}) t"
            ).fetchall()[0]
        return f"{n}:{h:x}"


@contextmanager
def begin(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT on an open connection; any exception rolls everything back."""
    con.execute("BEGIN TRANSACTION")
    parquet.transaction_started(con)  # Parquet files written inside move into place only at COMMIT
    committed = False
    try:
        yield con
        con.execute("COMMIT")
        committed = True
    except BaseException:
        if not committed:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # a failed COMMIT already ended the transaction
        raise
    finally:
        parquet.transaction_ended(con, committed)


def _outside(frame: pl.DataFrame, slices: Sequence[Slice]) -> pl.DataFrame:
    """The rows of ``frame`` in none of ``slices``.

    Slices that are column values only (a batch of parameter sets × markets) are matched by an
    anti-join of the frame's distinct keys, not an expression of hundreds of ORs over every row.
    """
    names = {tuple(sorted(s.where)) for s in slices}
    if len(names) == 1 and all(s.time_column is None for s in slices):
        cols = list(next(iter(names)))
        if cols and set(cols) <= set(frame.columns):
            allowed = pl.DataFrame([{c: s.where[c] for c in cols} for s in slices]).cast(
                {c: frame.schema[c] for c in cols}
            )
            return frame.join(allowed, on=cols, how="anti", nulls_equal=False)
    inside = pl.lit(False)
    for s in slices:
        cond = pl.lit(True)
        for column, value in s.where.items():
            cond = cond & (pl.col(column) == value)
        if s.time_column is not None:
            col = pl.col(s.time_column)
            if s.start is not None:
                cond = cond & (col >= _bound(s.start, frame.schema[s.time_column]))
            if s.end is not None:
                cond = cond & (col < _bound(s.end, frame.schema[s.time_column]))
        inside = inside | cond
    return frame.filter(~inside)


def _bound(value: datetime | int, dtype: pl.DataType) -> Any:
    if isinstance(dtype, pl.Datetime):
        return pl.lit(_utc(value)).cast(dtype)
    if isinstance(value, datetime):
        return int(_utc(value).timestamp() * 1000)
    return value


def _ms(df: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as datetime[ms, UTC], the one time type of the engine's frames."""
    casts = [
        pl.col(name).dt.cast_time_unit("ms").dt.convert_time_zone("UTC")
        if dtype.time_zone
        else pl.col(name).dt.cast_time_unit("ms").dt.replace_time_zone("UTC")
        for name, dtype in df.schema.items()
        if isinstance(dtype, pl.Datetime)
    ]
    return df.with_columns(casts) if casts else df
