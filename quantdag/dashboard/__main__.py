"""``python -m quantdag.dashboard``: serve the dashboard on 127.0.0.1:$QUANTDAG_DASHBOARD_PORT (8050).

Refuses to start without ``QUANTDAG_DASHBOARD_PASSWORD``. Everything else comes from the
configuration (``dashboard`` section, data dir, markets, strategies).
"""

from __future__ import annotations

import logging
import os
import sys

from typing import TYPE_CHECKING

from quantdag.dashboard.auth import Credentials, session_secret
from quantdag.errors import ConfigurationError

if TYPE_CHECKING:
    from quantdag.config import ProjectConfig
    from quantdag.dashboard.app import DashboardContext

PORT_ENV = "QUANTDAG_DASHBOARD_PORT"
HOST = "127.0.0.1"


def context_from(config: ProjectConfig, credentials: Credentials) -> DashboardContext:
    """The app's context from the configuration (user strategies registered, as the pipeline does)."""
    from quantdag.dashboard.app import DashboardContext
    from quantdag.strategies import list_strategies
    from quantdag.strategies.loader import load_user_strategies

    load_user_strategies(config.strategy_folders)
    d = config.dashboard
    return DashboardContext(
        warehouse=config.data_path / "quantdag.duckdb", credentials=credentials, secret=session_secret(),
        dagster_url=d.dagster_url, mlflow_url=d.mlflow_url, lock_timeout=d.lock_timeout, poll_interval=d.poll_interval,
        login_attempts=d.login_attempts, min_trades=config.leaderboard.min_trades, capital=config.paper.capital, webhook_env=config.alerts.webhook_env,
        markets=list(config.markets), stream_symbols=config.stream_symbols["ohlcv"] if config.exchange.enable_ws else [],
        paper_strategies=list(config.strategies.paper), paper_choices=sorted(list_strategies()),
        parquet_dir=config.parquet_path,
    )  # fmt: skip


def port_from_env() -> int:
    raw = os.environ.get(PORT_ENV, "8050")
    try:
        port = int(raw)
    except ValueError:
        raise ConfigurationError(f"{PORT_ENV}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ConfigurationError(f"{PORT_ENV}={port} is outside 1..65535")
    return port


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:  # the password first: without it nothing else is even imported
        credentials = Credentials.from_env()
        port = port_from_env()
        from quantdag.config import load_config

        ctx = context_from(load_config(), credentials)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from quantdag.dashboard.app import create_app

    print(f"quantdag dashboard: http://{HOST}:{port}/ (user {credentials.user!r}; warehouse {ctx.warehouse})", flush=True)
    uvicorn.run(create_app(ctx), host=HOST, port=port, log_level="info", timeout_graceful_shutdown=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
