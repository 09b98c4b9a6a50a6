"""The Dagster instance's settings (``$DAGSTER_HOME/dagster.yaml``), made from the configuration.

One home for them: ``pipelines/dagster.yaml`` is the template (pools, run monitoring, telemetry, the
SQLite event log), and the configuration's ``instance`` section picks the storage:

* ``storage: sqlite`` (default): the template as it is, files in the Dagster home;
* ``storage: postgres``: the same settings with runs, events, schedules and pool slots on the
  PostgreSQL server of ``instance.postgres`` (``dagster-postgres``). The password is written as an
  environment reference (``{env: QUANTDAG_PG_PASSWORD}``), never as a value. The event log is
  :class:`PoolSafePostgresEventLogStorage`: dagster-postgres 0.29.27 claims pool slots in autocommit
  statements, so steps claiming at the same moment can all get the ``duckdb`` pool's one slot.

``python -m pipelines.instance [--home DIR]`` writes the file (``make demo``, ``make ui`` and the
test targets do); a file with the same content is left untouched. On PostgreSQL it then prepares
the instance (:func:`prepare_instance`); ``--prepare`` does only that, for a home whose file is
written elsewhere (``deploy/``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from quantdag.config import PG_PASSWORD_ENV, ProjectConfig, load_config

#: The template: the SQLite instance, and every setting the PostgreSQL one shares with it.
TEMPLATE = Path(__file__).with_name("dagster.yaml")
#: SQLAlchemy's name of the driver dagster-postgres brings (psycopg2-binary).
PG_SCHEME = "postgresql+psycopg2"
HEADER = (
    "# Written by `python -m pipelines.instance` from the configuration's `instance` section and\n"
    "# pipelines/dagster.yaml: change those, not this file (it is rewritten).\n"
)


def template() -> dict[str, Any]:
    """The template's settings."""
    return yaml.safe_load(TEMPLATE.read_text())


def postgres_db(config: ProjectConfig) -> dict[str, Any]:
    """The ``postgres_db`` connection block of a PostgreSQL instance (password by environment reference only).

    The driver is named: SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3, while
    dagster-postgres installs psycopg2.
    """
    pg = config.instance.postgres
    return {"hostname": pg.host, "port": pg.port, "db_name": pg.db, "username": pg.user,
            "password": {"env": PG_PASSWORD_ENV}, "scheme": PG_SCHEME}


#: The three storages of a PostgreSQL instance: Dagster's runs and schedules, and our event log.
PG_STORAGES = {
    "run_storage": ("dagster_postgres.run_storage", "PostgresRunStorage"),
    "event_log_storage": ("pipelines.instance", "PoolSafePostgresEventLogStorage"),
    "schedule_storage": ("dagster_postgres.schedule_storage", "PostgresScheduleStorage"),
}


def postgres_storages(config: ProjectConfig) -> dict[str, Any]:
    """``run_storage``, ``event_log_storage`` and ``schedule_storage`` of a PostgreSQL instance.

    Three blocks rather than Dagster's ``storage: postgres`` shorthand, which cannot name another
    event log class.
    """
    return {key: {"module": module, "class": cls, "config": {"postgres_db": postgres_db(config)}}
            for key, (module, cls) in PG_STORAGES.items()}


#: The PostgreSQL advisory lock every pool claim and release of the instance takes (any constant will do).
POOL_LOCK_KEY = 0x71_64_61_67  # "qdag"


def _pool_safe_event_log_storage() -> type:
    """:class:`PoolSafePostgresEventLogStorage`, made on first use (see the module's ``__getattr__``)."""
    from contextlib import contextmanager

    import sqlalchemy as sa
    from dagster_postgres.event_log import PostgresEventLogStorage
    from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

    class PoolSafePostgresEventLogStorage(PostgresEventLogStorage):
        """dagster-postgres' event log with pool claims and releases one at a time across the instance.

        In dagster-postgres 0.29.27 a claim checks for a free slot, queues the step as assigned and
        takes the slot in separate autocommit statements (its ``SELECT ... FOR UPDATE`` lock ends
        with the statement), so steps claiming at once can all hold a pool's single slot: two DuckDB
        writers at once. A first claim of a pool also inserts its row, and a second concurrent one
        fails on the unique key (dagster-io/dagster#33552). Here each claim, release and pool
        initialisation holds one PostgreSQL advisory lock (a session lock on its own connection, so a
        killed process releases it with its connection). Everything else is Dagster's.
        """

        @classmethod
        def from_config_value(cls, inst_data, config_value):  # the parent's builds its own class by name
            return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                       should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                       token_provider=get_token_provider_from_config(config_value))

        @contextmanager
        def _pools_locked(self):
            with self.index_connection() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": POOL_LOCK_KEY})
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": POOL_LOCK_KEY})

        def claim_concurrency_slot(self, concurrency_key, run_id, step_key, priority=None):
            with self._pools_locked():
                return super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)

        def free_concurrency_slot_for_step(self, run_id, step_key):
            with self._pools_locked():
                return super().free_concurrency_slot_for_step(run_id, step_key)

        def free_concurrency_slots_for_run(self, run_id):
            with self._pools_locked():
                return super().free_concurrency_slots_for_run(run_id)

        def initialize_concurrency_limit_to_default(self, concurrency_key):
            with self._pools_locked():
                limit = self._instance.global_op_concurrency_default_limit if self.has_instance else None
                if limit is not None and any(p.name == concurrency_key and p.from_default and p.limit == limit
                                             for p in self.get_pool_limits()):
                    return True  # another process made it while this one waited for the lock
                return super().initialize_concurrency_limit_to_default(concurrency_key)

    PoolSafePostgresEventLogStorage.__module__ = __name__
    return PoolSafePostgresEventLogStorage


def __getattr__(name: str) -> Any:
    """The storage class on first use, so writing the settings never imports Dagster (PEP 562)."""
    if name == "PoolSafePostgresEventLogStorage":
        cls = globals()[name] = _pool_safe_event_log_storage()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def event_log_dir(home: str | Path) -> str:
    """Where the SQLite event log of the instance in ``home`` lives (Dagster's default place)."""
    return str((Path(home) / "history" / "runs").resolve())


def instance_settings(config: ProjectConfig, home: str | Path | None = None) -> dict[str, Any]:
    """The instance's settings as a mapping: the template, with PostgreSQL storage when configured.

    On SQLite, ``home`` gives the event log its folder: a storage class named in ``dagster.yaml``
    is never told which home it belongs to, so the path is written into the file.
    """
    settings = template()
    if config.instance.storage == "postgres":
        settings.pop("event_log_storage", None)  # the SQLite event log; PostgreSQL stores everything
        settings.update(postgres_storages(config))
    elif home is not None:
        settings["event_log_storage"]["config"] = {"base_dir": event_log_dir(home)}
    return settings


def render(config: ProjectConfig, home: str | Path | None = None) -> str:
    """The text of ``dagster.yaml``: the template verbatim (comments kept) for SQLite, with the event
    log's folder under ``home`` filled in; else the mapping."""
    if config.instance.storage == "sqlite":
        text = TEMPLATE.read_text()
        if home is not None:
            text, n = re.subn(r"(?m)^(  class: FastSqliteEventLogStorage.*)$",
                              lambda m: f"{m.group(1)}\n  config:\n    base_dir: {json.dumps(event_log_dir(home))}", text)
            if n != 1:
                raise RuntimeError(f"{TEMPLATE}: no event_log_storage class line to give a base_dir")
        return HEADER + text
    return (HEADER + f"# Storage: PostgreSQL (dagster-postgres); the password is read from ${PG_PASSWORD_ENV} when the instance loads.\n"
            + yaml.safe_dump(instance_settings(config), sort_keys=False))


def write_instance_yaml(home: str | Path, config: ProjectConfig | None = None) -> Path:
    """Write ``home/dagster.yaml`` for ``config`` (default: the configuration file); unchanged content is not rewritten."""
    config = config or load_config()
    path = Path(home) / "dagster.yaml"
    text = render(config, home)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def prepare_instance(instance: Any) -> None:
    """Create the instance's tables and the ``duckdb`` pool's row before any run needs them (idempotent).

    Two runs that claim a slot of a pool nobody claimed before both insert its row, and on
    PostgreSQL the loser's step fails on the unique key (Dagster 1.13 checks, then inserts; SQLite
    writes one at a time). Opening the instance here also creates its schema once, not in racing
    run processes.
    """
    from assets.common import DUCKDB_POOL

    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits and instance.get_concurrency_config().pool_config.default_pool_limit:
        if DUCKDB_POOL not in {p.name for p in storage.get_pool_limits()}:
            storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)


def _prepare(home: str | Path) -> None:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        prepare_instance(instance)


def setup_home(home: str | Path, config: ProjectConfig | None = None) -> Path:
    """Write ``home/dagster.yaml`` for ``config`` and, on PostgreSQL, prepare the instance; the file's path."""
    config = config or load_config()
    path = write_instance_yaml(home, config)
    if config.instance.storage == "postgres":
        _prepare(home)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=None,
                        help="the Dagster home (default: $DAGSTER_HOME, else the data dir's dagster_home)")
    parser.add_argument("--print", action="store_true", help="print the settings instead of writing them")
    parser.add_argument("--prepare", action="store_true",
                        help="only prepare the home's instance as its dagster.yaml says (tables, pool rows); write nothing")
    args = parser.parse_args(argv)
    home = args.home or (Path(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") else None)
    if args.prepare:
        if home is None:
            raise SystemExit("--prepare: set --home or $DAGSTER_HOME")
        _prepare(home)
        return 0
    from quantdag.errors import ConfigurationError

    try:
        config = load_config()
    except ConfigurationError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    if args.print:
        sys.stdout.write(render(config))
        return 0
    setup_home(home or config.data_path / "dagster_home", config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
