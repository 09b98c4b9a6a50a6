"""Paper trading: a parameter set's latest signals become orders through risk checks and the OMS."""

import dataclasses

import dagster as dg

from assets.common import DUCKDB_POOL
from assets.partitions import Partitions
from quantdag.config import ProjectConfig
from quantdag.stages.paper import Execution, PaperAccount, drift_step, paper_step
from resources import ExchangeResource, WarehouseResource


def build(config: ProjectConfig, parts: Partitions) -> list[dg.AssetsDefinition]:
    """``paper_trades`` and ``paper_drift_check``; account and kill switches from ``paper``/``risk``."""
    paper, risk = config.paper, config.risk
    config_, rules = config, config.risk.rules()
    ex = config.portfolio.execution
    execution = Execution(algo=ex.algo, above_notional=ex.above_notional, slices=ex.slices, duration_s=ex.duration_s)
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
            cash_buffer=paper.cash_buffer, execution=execution, min_notional=config_.portfolio.min_notional,
            rules=dataclasses.replace(rules, max_drawdown=config.max_drawdown, daily_loss=config.daily_loss_limit),
        )  # fmt: skip
        markets = [m.on(exchange.venue) for m in research]
        summary = paper_step(warehouse.get(), context.partition_key, markets, exchange.client(), account, webhook_env=webhook_env)
        if "alert" in summary:  # a kill switch tripped: a human has been told
            context.log.error(str(summary["alert"]))
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
        drift, alert = drift_step(warehouse.get(), context.partition_key, markets, tolerance_bps=paper.drift_tolerance_bps,
                                  webhook_env=webhook_env)
        counts = {s: int(n) for s, n in drift.group_by("status").len().iter_rows()}
        if alert:
            context.log.error(alert)
        mean = drift["drift_bps"].drop_nulls().mean()
        return dg.MaterializeResult(metadata={
            "fills": len(drift), "by_status": dg.MetadataValue.json(counts),
            "mean_drift_bps": dg.MetadataValue.float(float(mean) if mean is not None else float("nan")),
        })

    research = config.research_markets
    return [paper_trades, paper_drift_check]
