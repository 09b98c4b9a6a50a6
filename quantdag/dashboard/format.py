"""How values show on the pages, and which columns link to their lineage (MLflow run, Dagster run,
parameter set): one place, so every table links the same way."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from markupsafe import Markup, escape

if TYPE_CHECKING:
    import jinja2

    from quantdag.dashboard.app import DashboardContext

PCT = {"total_return", "max_drawdown", "win_rate", "cagr", "drawdown", "weight", "trade_return"}


def fmt(value: Any, col: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        if col in PCT:
            return f"{value * 100:.2f}%"
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4g}"
    return str(value)


def age(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def install_filters(env: jinja2.Environment, ctx: DashboardContext) -> None:
    mlflow = ctx.mlflow_url.rstrip("/")
    dagster = ctx.dagster_url.rstrip("/")

    def link(col: str, value: Any) -> Markup:
        """A table cell: lineage columns become links, the rest formatted text."""
        text = escape(fmt(value, col))
        if value is None or value == "":
            return Markup(text)
        v = quote(str(value), safe="")
        if col == "mlflow_run_id":
            return Markup(f'<a href="{mlflow}/#/runs/{v}" title="MLflow run" target="_blank" rel="noopener">{text[:8]}</a>')
        if col == "dagster_run_id":
            return Markup(f'<a href="{dagster}/runs/{v}" title="Dagster run" target="_blank" rel="noopener">{text[:8]}</a>')
        if col in ("param_set", "best_param_set"):
            return Markup(f'<a href="/strategies/{v}">{text}</a>')
        return Markup(text)

    env.filters["fmt"] = fmt
    env.filters["age"] = age
    env.globals["cell"] = link
    env.globals["dagster_url"] = dagster
    env.globals["mlflow_url"] = mlflow
