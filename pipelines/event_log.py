"""A faster SQLite event log for the Dagster instance (``dagster.yaml`` names it).

Dagster's ``SqliteEventLogStorage`` builds a new SQLAlchemy engine for every write and disposes of
it, so no compiled statement is ever reused (about 1 ms of SQL compilation per statement, 3-4
statements per event), and it stores a batch of events one transaction at a time. A year of 10
markets is 3,650 day-market partitions per asset: at ~16 ms per event the run spent minutes
writing its own bookkeeping. This subclass keeps one engine per shard (a few recent run shards
and the index) and writes a batch of asset events (a single-run backfill's materializations and
planned events, which Dagster hands over together when ``DAGSTER_EVENT_BATCH_SIZE`` is set) in one
transaction per shard. What is stored is exactly what the stock class stores, row for row.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dagster import Field, StringSource
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, EVENT_TYPE_TO_PIPELINE_RUN_STATUS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from quantdag.errors import ConfigurationError

#: Events per batch Dagster hands to ``store_event_batch`` (read by Dagster at every event; 0 turns
#: batching off). Set here because every process that opens the instance (webserver, daemon, run
#: workers, ``make demo``) loads this module from ``dagster.yaml``.
BATCH_SIZE = "1000"
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", BATCH_SIZE)

_OPEN_SHARDS = 8  # engines kept: the index plus the few runs being written


class FastSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with cached engines and one transaction per batch and shard."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        if not base_dir:  # a class named in dagster.yaml is never told its instance's home
            raise ConfigurationError(
                "FastSqliteEventLogStorage needs config.base_dir in dagster.yaml (pipelines/dagster.yaml is a "
                "template: write the home's file with `python -m pipelines.instance --home DIR`)"
            )
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict) -> FastSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard), poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
        )
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > _OPEN_SHARDS:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:  # type: ignore[override]
        with self._db_lock:
            engine = self._engine(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store ``events`` as ``store_event`` would one by one, in one transaction per shard.

        Dagster batches a step's partition materializations and a run's planned events (asset
        checks' among them). The asset-key row is overwritten by each event, so only the last event
        of each (asset, event type) is applied to it, in the batch's order: the same final row.
        """
        if not events or any(e.run_id != events[0].run_id for e in events):
            for event in events:
                self.store_event(event)
            return
        statements = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        kind = lambda e: e.dagster_event_type if e.is_dagster_event else None  # noqa: E731
        asset = [(e, s) for e, s in zip(events, statements) if kind(e) in ASSET_EVENTS]
        if asset:
            with self.index_transaction() as conn:
                ids = [conn.execute(s).inserted_primary_key[0] for _, s in asset]
                self._store_asset_event_tags(conn, [e for e, _ in asset], ids)
                last: dict[tuple, tuple[int, EventLogEntry, int]] = {}
                for i, ((event, _), event_id) in enumerate(zip(asset, ids)):
                    last[(event.dagster_event.asset_key, kind(event))] = (i, event, event_id)
                for _, event, event_id in sorted(last.values(), key=lambda t: t[0]):
                    self._store_asset_event(conn, event, event_id)
        for event, statement in zip(events, statements):
            if kind(event) in ASSET_CHECK_EVENTS:
                with self.index_connection() as conn:
                    event_id = conn.execute(statement).inserted_primary_key[0]
                self.store_asset_check_event(event, event_id)
            elif kind(event) in EVENT_TYPE_TO_PIPELINE_RUN_STATUS:
                with self.index_connection() as conn:
                    conn.execute(statement)

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        super().dispose()
