"""``quantdag download``, ``demo``, ``ui`` and ``doctor``: the data, the pipeline, and the environment.

``demo`` and ``ui`` run the repository's ``make demo`` / ``make ui`` (the engine never imports
Dagster; make writes the Dagster instance settings and picks the data dir exactly as documented).
``doctor`` checks what most often goes wrong and says what to do, exit 1 if something is wrong.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from quantdag.cli.common import DB_FILE, CheckFailed, InputError, load_project, parse_day, reports_errors, resolve_market

ROOT = Path(__file__).resolve().parents[2]


@click.command()
@click.option("--market", "market_keys", multiple=True, metavar="SYMBOL:TF", help="a market (repeatable); default every configured market")
@click.option("--from", "start", metavar="YYYY-MM-DD", help="first day (UTC); default the universe's start_date")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="last day, inclusive (UTC); default today")
@reports_errors
def download(market_keys: tuple[str, ...], start: str | None, end: str | None) -> None:
    """Download and clean the candles not stored yet, into the data dir's DuckDB file.

    Uses the pipeline's ingest and cleaning stages against the configured exchange (the
    simulator offline): only days without stored candles are fetched, so re-running is cheap.
    """
    from quantdag.cli.candles import ensure_stored

    config = load_project(register=False)
    today = datetime.now(timezone.utc).date()
    d0 = parse_day(start, "--from") or config.universe.start(today)
    d1 = parse_day(end, "--to") or today
    if d1 < d0:
        raise InputError(f"--to {d1} is before --from {d0}")
    markets = [resolve_market(config, k) for k in market_keys] or list(config.markets)
    total = 0
    for m in markets:
        got = ensure_stored(config, m, d0, d1)
        total += got["downloaded_days"]
        click.echo(f"{m.key}: {got['downloaded_days']} of {got['days']} day(s) downloaded")
    click.echo(f"{total} market-day(s) downloaded into {config.data_path / DB_FILE}")


def _make(target: str, *variables: str) -> None:
    if not (ROOT / "Makefile").is_file() or shutil.which("make") is None:
        raise InputError(f"`quantdag {target}` runs `make {target}` in the repository, but {ROOT} has no Makefile "
                         "(or make is not installed): run it from a checkout of the project")  # fmt: skip
    code = subprocess.call(["make", "-C", str(ROOT), target, *variables])
    if code:
        raise SystemExit(code)


@click.command()
def demo() -> None:
    """Run the demo (`make demo`): the pipeline offline over the last 90 days, then what it found."""
    _make("demo")


@click.command()
@click.option("--port", type=int, default=3000, show_default=True, help="the UI's port on 127.0.0.1")
def ui(port: int) -> None:
    """Start Dagster's UI and daemon (`make ui`) on http://127.0.0.1:PORT until Ctrl-C."""
    _make("ui", f"UI_PORT={port}")


def _pinned(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not line.startswith((" ", "#")):
            pins[name.split("[")[0].lower()] = version.split(";")[0].strip()
    return pins


class Doctor:
    """Collects findings: ``ok``, ``warn`` (works, but worth knowing) or ``fail`` (what to do)."""

    def __init__(self) -> None:
        self.failed = 0

    def ok(self, what: str) -> None:
        click.echo(f"ok    {what}")

    def warn(self, what: str) -> None:
        click.echo(f"warn  {what}")

    def fail(self, what: str) -> None:
        self.failed += 1
        click.echo(f"FAIL  {what}")


def check_python(doc: Doctor) -> None:
    from importlib.metadata import PackageNotFoundError, version

    v = sys.version_info
    (doc.ok if (v.major, v.minor) == (3, 11) else doc.fail)(f"Python {v.major}.{v.minor}.{v.micro} ({sys.executable}); the project needs 3.11")
    if sys.prefix == sys.base_prefix:
        doc.warn("not running inside a virtual environment: `make setup` builds .venv with the pinned packages")
    else:
        doc.ok(f"virtual environment {sys.prefix}")
    lock = ROOT / "requirements.lock"
    if not lock.is_file():
        doc.warn(f"no {lock} to compare the installed packages with")
        return
    wrong = []
    for name, pinned in _pinned(lock).items():
        try:
            have = version(name)
        except PackageNotFoundError:
            wrong.append(f"{name} missing (pinned {pinned})")
            continue
        if have != pinned:
            wrong.append(f"{name} {have} (pinned {pinned})")
    if wrong:
        doc.fail(f"{len(wrong)} package(s) differ from requirements.lock: {', '.join(wrong[:8])}"
                 f"{' ...' if len(wrong) > 8 else ''}; run `make setup`")  # fmt: skip
    else:
        doc.ok("installed packages match requirements.lock")


def check_config(doc: Doctor):  # -> ProjectConfig | None
    from quantdag.config import config_path, load_config
    from quantdag.errors import QuantdagError
    from quantdag.strategies.loader import load_user_strategies

    try:
        config = load_config()
    except QuantdagError as exc:
        doc.fail(f"configuration: {exc}")
        return None
    doc.ok(f"configuration {config_path()} (data dir {config.data_path}, exchange {config.exchange.mode})")
    try:
        names = load_user_strategies(config.strategy_folders)
        doc.ok(f"strategy files: {len(names)} strategy(ies) registered from {[str(p) for p in config.strategy_folders] or 'no folder'}")
    except QuantdagError as exc:
        doc.fail(f"strategy files: {exc}")
    return config


def check_warehouse(doc: Doctor, data: Path) -> None:
    import duckdb

    from quantdag.store import Warehouse

    db = data / DB_FILE
    if not db.exists():
        doc.warn(f"no DuckDB file {db} yet: `quantdag download` or `make demo` creates it")
        return
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            doc.fail(f"{db} is locked by another process ({exc}); stop it (a `make ui` code server, a stream, a stuck run) and retry")
        else:
            doc.fail(f"{db} cannot be opened ({exc}); move it aside and re-run `make demo` to rebuild it")
        return
    except duckdb.Error as exc:
        doc.fail(f"{db} is damaged ({exc}); move it aside and re-run `make demo` to rebuild it")
        return
    try:
        have = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
        candles = con.execute("SELECT count(*) FROM market.candles").fetchall()[0][0] if "market" in have else 0
    finally:
        con.close()
    missing = [s for s in Warehouse.SCHEMAS if s not in have]
    if missing:
        doc.warn(f"{db}: schema(s) {missing} not created yet (the stages create them on first write)")
    else:
        doc.ok(f"{db}: opens, every schema present, not locked")
    doc.ok(f"{db}: {candles} stored candles")


def check_mlflow(doc: Doctor, data: Path) -> None:
    store = data / "mlflow.db"
    if not store.exists():
        doc.warn(f"no MLflow store {store} yet: the first backtest creates it")
        return
    try:
        import mlflow

        from quantdag.tracking.store import tracking_uri

        exps = mlflow.MlflowClient(tracking_uri(data)).search_experiments()
    except Exception as exc:  # noqa: BLE001 - any failure of the store is the finding
        doc.fail(f"MLflow store {store} cannot be read ({type(exc).__name__}: {exc}); move it aside (runs are lost) or "
                 "upgrade it with `mlflow db upgrade sqlite:///...`")  # fmt: skip
        return
    doc.ok(f"MLflow store {store}: {len(exps)} experiment(s)")
    artifacts = data / "mlartifacts"
    if artifacts.exists() and not os.access(artifacts, os.W_OK):
        doc.fail(f"{artifacts} is not writable: fix its permissions")


@click.command()
def doctor() -> None:
    """Check Python and the venv, the configuration, the DuckDB file and the MLflow store.

    Prints one line per check (ok / warn / FAIL with what to do). Exit 1 if any check fails.
    """
    doc = Doctor()
    check_python(doc)
    config = check_config(doc)
    if config is not None:
        data = config.data_path
        if data.exists() and not os.access(data, os.W_OK):
            doc.fail(f"data dir {data} is not writable: fix its permissions or set QUANTDAG_DATA_DIR")
        check_warehouse(doc, data)
        check_mlflow(doc, data)
    if doc.failed:
        raise CheckFailed(f"{doc.failed} check(s) failed")
    click.echo("everything needed is in place")
