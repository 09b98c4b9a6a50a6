"""What every command shares: exit codes, error reporting, the configuration, strategies, markets.

Exit codes (scripts rely on them): 0 ok; 1 a check failed or a difference was found; 2 a usage or
input error (a bad option, a missing file, an unknown strategy or market, an invalid
configuration), reported in one line that says what to do, never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from quantdag.errors import QuantdagError

if TYPE_CHECKING:
    from quantdag.config import ProjectConfig
    from quantdag.markets import Market
    from quantdag.store import Warehouse
    from quantdag.strategies import Strategy

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: The DuckDB file in the data dir (the pipeline's resources use the same name).
DB_FILE = "quantdag.duckdb"

F = TypeVar("F", bound=Callable[..., Any])


class InputError(click.ClickException):
    """A usage or input error: exit 2, the message on stderr."""

    exit_code = EXIT_USAGE


class CheckFailed(click.ClickException):
    """A check failed or a difference was found: exit 1 (the report is already printed)."""

    exit_code = EXIT_FAILED


def reports_errors(fn: F) -> F:
    """The project's typed errors become exit 2 with their message (they name the value and the fix)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except QuantdagError as exc:
            raise InputError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def load_project(*, register: bool = True) -> ProjectConfig:
    """The configuration (``$QUANTDAG_CONFIG`` or the repository's file), its strategy files
    registered unless ``register`` is false."""
    from quantdag.config import load_config
    from quantdag.strategies.loader import load_user_strategies

    config = load_config()
    if register:
        load_user_strategies(config.strategy_folders)
    return config


def open_warehouse(config: ProjectConfig, *, read_only: bool = False) -> Warehouse:
    """The data dir's DuckDB file (``$QUANTDAG_DATA_DIR`` or the configuration's ``data_dir``)."""
    from quantdag.store import Warehouse

    return Warehouse(config.data_path / DB_FILE, read_only=read_only, parquet_dir=config.parquet_path, lock_timeout=10.0)


def exchange_client(config: ProjectConfig) -> Any:
    """The configured exchange's client: the simulator offline (``exchange.simulator.url``, or one
    started in this process, as the pipeline does), else the live venue through ccxt."""
    from quantdag.exchange import ExchangeClient, ExchangeConfig, RetryPolicy

    ex = config.exchange
    api_url = None
    if ex.mode == "simulated":
        if ex.simulator.url:
            api_url = f"{ex.simulator.url.rstrip('/')}/api/v3"
        else:
            from quantdag.exchange.simulated import in_process_sim_url

            api_url = f"{in_process_sim_url(ex.simulator.seed).rstrip('/')}/api/v3"
    return ExchangeClient(ExchangeConfig(
        exchange_id=ex.id, venue=config.venue, api_url=api_url, sandbox=ex.sandbox if ex.mode == "live" else False,
        timeout_ms=ex.timeout_ms, retry=RetryPolicy(max_retries=ex.max_retries, max_ban_wait=ex.max_ban_wait),
    ))  # fmt: skip


def resolve_market(config: ProjectConfig, key: str) -> Market:
    """``SYMBOL:TF`` as a market of the configured venue: the universe's own entry when listed
    (a resampled one keeps its source), else a downloaded market of that symbol and timeframe."""
    from quantdag.markets import Market

    symbol, sep, tf = key.rpartition(":")
    if not sep or not symbol:
        raise InputError(f"--market {key!r}: expected SYMBOL:TF, e.g. BTC/USDT:1h")
    for m in config.markets:
        if m.key == key:
            return m
    return Market(config.venue, symbol, tf)


def build_strategy(spec: str, params: dict[str, Any]) -> Strategy:
    """A strategy instance from a registered name, ``path/file.py:Class`` or ``module:Class``."""
    from quantdag.strategies.cli import resolve_strategy

    return resolve_strategy(spec).from_params(params)


def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """``k=v`` pairs; values are read as YAML scalars (``10`` int, ``0.5`` float, ``true`` bool, else text)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            raise InputError(f"--param {pair!r}: expected NAME=VALUE, e.g. --param fast=10")
        out[k.strip()] = yaml.safe_load(v) if v.strip() else v
    return out


def parse_day(text: str | None, option: str) -> date | None:
    """A ``YYYY-MM-DD`` option value (UTC day), or None."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} {text!r}: expected a date YYYY-MM-DD") from None


def utc_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def existing_file(path: str, option: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"{option} {path!r}: no such file")
    return p.resolve()
