"""Paper trading: a parameter set's latest signals become orders through risk checks and the OMS."""

import dagster as dg

from assets.common import DUCKDB_POOL
from assets.partitions import param_sets
from assets.signals import research_markets, signals
from quantdag.tracking import send_alert
from quantdag.execution import ticker_source
from quantdag.stages.paper import PaperAccount, paper_cycle, paper_drift
from resources import ExchangeResource, WarehouseResource


class PaperConfig(dg.Config):
    """The paper account: capital in the quote currency and its kill switches."""

    capital: float = 10_000.0
    max_drawdown: float = 0.2
    daily_loss_limit: float = 0.05


@dg.asset(
    partitions_def=param_sets,
    group_name="paper",
    pool=DUCKDB_POOL,
    deps=[signals],
    kinds={"duckdb", "ccxt"},
    metadata={"table": "paper.orders", "also_writes": "paper.fills, paper.positions, paper.balances"},
)
def paper_trades(
    context: dg.AssetExecutionContext, config: PaperConfig, warehouse: WarehouseResource, exchange: ExchangeResource
) -> dg.MaterializeResult:
    """Orders, fills and positions of the parameter set's paper account at live (simulated) prices."""
    account = PaperAccount(capital=config.capital, max_drawdown=config.max_drawdown, daily_loss_limit=config.daily_loss_limit)
    summary = paper_cycle(
        warehouse.get(), context.partition_key, research_markets(exchange.venue),
        price_source=ticker_source(exchange.client()), account=account,
    )
    if str(summary["risk_state"]).lower() != "active":  # a kill switch tripped: tell a human
        context.log.error(send_alert(f"paper account {context.partition_key}: risk state {summary['risk_state']}",
                                     context={"param_set": context.partition_key}))
    return dg.MaterializeResult(metadata={k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in summary.items()})


@dg.asset(
    partitions_def=param_sets,
    group_name="paper",
    pool=DUCKDB_POOL,
    deps=[paper_trades],
    kinds={"duckdb"},
    metadata={"table": "paper.drift"},
)
def paper_drift_check(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
    """Each paper fill beside the backtest's fill for the same decision; an alert when they diverge."""
    drift = paper_drift(warehouse.get(), context.partition_key, research_markets(exchange.venue))
    counts = {s: int(n) for s, n in drift.group_by("status").len().iter_rows()}
    diverged = drift.filter(drift["status"] == "diverged")
    if diverged.height:
        worst = float(diverged["drift_bps"].abs().max())
        context.log.error(send_alert(
            f"paper account {context.partition_key}: {diverged.height} fill(s) diverge from the backtest, worst {worst:.1f} bps",
            context={"param_set": context.partition_key},
        ))
    mean = drift["drift_bps"].drop_nulls().mean()
    return dg.MaterializeResult(metadata={
        "fills": len(drift), "by_status": dg.MetadataValue.json(counts),
        "mean_drift_bps": dg.MetadataValue.float(float(mean) if mean is not None else float("nan")),
    })
