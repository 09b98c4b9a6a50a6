"""The dashboard's two controls, each through the one function the rest of the project uses:
halt/resume a risk account (``quantdag.portfolio.risk_store``, as its CLI) and switch a strategy's
paper trading (``quantdag.stages.paper.switch_paper``, read by the paper sensor and schedules).

A control is a write: it waits for the file (a writer may hold it) up to ``WRITE_TIMEOUT`` seconds,
off the event loop, and reports what happened in a line the page shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from quantdag.dashboard.reader import FileGate
from quantdag.errors import ConfigurationError
from quantdag.portfolio import risk_store
from quantdag.stages.paper import paper_strategies, switch_paper
from quantdag.store import Warehouse, WarehouseError

if TYPE_CHECKING:
    from quantdag.dashboard.app import DashboardContext

log = logging.getLogger(__name__)

WRITE_TIMEOUT = 15.0


def _write(ctx: DashboardContext, gate: FileGate, fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
    """``fn(warehouse, *args)`` once this process's own readers are out (DuckDB: no read-write
    connection beside read-only ones in one process); the file lock of other processes is waited
    for by the Warehouse itself."""
    with gate.write(WRITE_TIMEOUT):
        fn(Warehouse(ctx.warehouse, lock_timeout=WRITE_TIMEOUT, parquet_dir=ctx.parquet_dir), *args, **kw)


async def risk_action(ctx: DashboardContext, gate: FileGate, account: str, action: str, user: str) -> str:
    """Halt or resume ``account``; stored in ``risk.state``/``risk.events`` and alerted by risk_store."""
    if action not in ("halt", "resume"):
        return f"unknown action {action[:20]!r}"
    fn = risk_store.halt if action == "halt" else risk_store.resume
    reason = f"{action} from the dashboard by {user}"
    try:
        await asyncio.to_thread(_write, ctx, gate, fn, account, reason, webhook_env=ctx.webhook_env)
    except (ConfigurationError, WarehouseError) as exc:
        return f"{action} {account}: not done ({exc})"
    log.warning("dashboard: %s", reason + f" ({account})")
    return f"{account}: {action} stored; its next cycle acts on it"


async def paper_action(ctx: DashboardContext, gate: FileGate, strategy: str, enabled: str, user: str) -> str:
    """Switch ``strategy``'s paper trading on ("1") or off ("0"), appended to ``paper.switches``."""
    if strategy not in ctx.paper_choices:
        return f"unknown strategy {strategy[:40]!r}"
    on = enabled == "1"
    try:
        await asyncio.to_thread(_write, ctx, gate, switch_paper, strategy, on, user, "from the dashboard")
    except WarehouseError as exc:
        return f"paper {strategy}: not switched ({exc})"
    return f"paper trading of {strategy} switched {'on' if on else 'off'}"


def paper_view(overrides: dict[str, bool], configured: list[str], choices: list[str]) -> list[dict[str, Any]]:
    """Each strategy with its configured and effective paper state (the switches as the page read them)."""
    effective = paper_strategies(configured, overrides)
    return [{"strategy": s, "configured": s in configured, "override": overrides.get(s), "enabled": s in effective}
            for s in choices]  # fmt: skip
