"""Paper trading: a parameter set's latest signals become orders through risk checks and the OMS."""

import dagster as dg

from assets.common import DUCKDB_POOL
from assets.partitions import Partitions
from quantdag.config import ProjectConfig
from quantdag.execution import ticker_source
from quantdag.stages.paper import PaperAccount, paper_cycle, paper_drift
from quantdag.tracking import send_alert
from resources import ExchangeResource, WarehouseResource


def build(config: ProjectConfig, parts: Partitions) -> list[dg.AssetsDefinition]:
    """``paper_trades`` and ``paper_drift_check``; account and kill switches from ``paper``/``risk``."""
    paper, risk = config.paper, config.risk
    webhook_env = config.alerts.webhook_env

    class PaperConfig(dg.Config):
        """The paper account: capital in the quote currency and its kill switches (file defaults)."""

        capital: float = paper.capital
        max_drawdown: float = risk.max_drawdown
        daily_loss_limit: float = risk.daily_loss_limit

    @dg.asset(
        partitions_def=parts.param_sets,
        group_name="paper",
        pool=DUCKDB_POOL,
        deps=["signals"],
        kinds={"duckdb", "ccxt"},
        metadata={"table": "paper.orders", "also_writes": "paper.fills, paper.positions, paper.balances"},
    )
    def paper_trades(
        context: dg.AssetExecutionContext, config: PaperConfig, warehouse: WarehouseResource, exchange: ExchangeResource
    ) -> dg.MaterializeResult:
        """Orders, fills and positions of the parameter set's paper account at live (simulated) prices."""
        account = PaperAccount(
            capital=config.capital, quote=paper.quote, max_drawdown=config.max_drawdown,
            daily_loss_limit=config.daily_loss_limit, max_orders_per_cycle=risk.max_orders_per_cycle,
            cash_buffer=paper.cash_buffer,
        )  # fmt: skip
        markets = [m.on(exchange.venue) for m in research]
        summary = paper_cycle(
            warehouse.get(), context.partition_key, markets, price_source=ticker_source(exchange.client()), account=account
        )
        if str(summary["risk_state"]).lower() != "active":  # a kill switch tripped: tell a human
            context.log.error(send_alert(f"paper account {context.partition_key}: risk state {summary['risk_state']}",
                                         context={"param_set": context.partition_key}, webhook_env=webhook_env))
        return dg.MaterializeResult(metadata={k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in summary.items()})

    @dg.asset(
        partitions_def=parts.param_sets,
        group_name="paper",
        pool=DUCKDB_POOL,
        deps=[paper_trades],
        kinds={"duckdb"},
        metadata={"table": "paper.drift"},
    )
    def paper_drift_check(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
        """Each paper fill beside the backtest's fill for the same decision; an alert when they diverge."""
        markets = [m.on(exchange.venue) for m in research]
        drift = paper_drift(warehouse.get(), context.partition_key, markets, tolerance_bps=paper.drift_tolerance_bps)
        counts = {s: int(n) for s, n in drift.group_by("status").len().iter_rows()}
        diverged = drift.filter(drift["status"] == "diverged")
        if diverged.height:
            worst = float(diverged["drift_bps"].abs().max())
            context.log.error(send_alert(
                f"paper account {context.partition_key}: {diverged.height} fill(s) diverge from the backtest, worst {worst:.1f} bps",
                context={"param_set": context.partition_key}, webhook_env=webhook_env,
            ))
        mean = drift["drift_bps"].drop_nulls().mean()
        return dg.MaterializeResult(metadata={
            "fills": len(drift), "by_status": dg.MetadataValue.json(counts),
            "mean_drift_bps": dg.MetadataValue.float(float(mean) if mean is not None else float("nan")),
        })

    research = config.research_markets
    return [paper_trades, paper_drift_check]
