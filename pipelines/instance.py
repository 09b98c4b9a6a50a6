"""The Dagster instance's settings (``$DAGSTER_HOME/dagster.yaml``), made from the configuration.

One home for them: ``pipelines/dagster.yaml`` is the template (pools, run monitoring, telemetry, the
SQLite event log), and the configuration's ``instance`` section picks the storage:

* ``storage: sqlite`` (default): the template as it is, files in the Dagster home;
* ``storage: postgres``: the same settings with runs, events, schedules and pool slots on the
  PostgreSQL server of ``instance.postgres`` (``dagster-postgres``). The password is written as an
  environment reference (``{env: QUANTDAG_PG_PASSWORD}``), never as a value.

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


def postgres_storage(config: ProjectConfig) -> dict[str, Any]:
    """The ``storage:`` block of a PostgreSQL instance (password by environment reference only).

    The driver is named: SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3, while
    dagster-postgres installs psycopg2.
    """
    pg = config.instance.postgres
    return {"postgres": {"postgres_db": {
        "hostname": pg.host, "port": pg.port, "db_name": pg.db, "username": pg.user, "password": {"env": PG_PASSWORD_ENV},
        "scheme": PG_SCHEME,
    }}}


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
        settings["storage"] = postgres_storage(config)
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
