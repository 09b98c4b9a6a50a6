"""Portfolio: the members' signals → weights → one shared-cash backtest (MLflow) → its paper account and drift."""

import dagster as dg

from assets.common import DUCKDB_POOL, metrics_table, mlflow_run_link
from quantdag.config import ProjectConfig
from quantdag.stages.portfolio import (
    Execution,
    attribution_summary,
    backtest_portfolio,
    build_weights,
    make_broker,
    paper_portfolio_step,
    portfolio_drift,
    spec_of,
)
from quantdag.strategies import Strategy
from resources import ExchangeResource, MlflowResource, WarehouseResource

EXPERIMENT = "quantdag-portfolios"


def build(config: ProjectConfig, configured: dict[str, Strategy]) -> list[dg.AssetsDefinition]:
    """``portfolio_weights``, ``portfolio_backtest``, ``portfolio_paper`` and ``portfolio_drift_check``."""
    spec = spec_of(config)
    ex = config.portfolio.execution
    execution = Execution(algo=ex.algo, above_notional=ex.above_notional, slices=ex.slices, duration_s=ex.duration_s)
    research = config.research_markets
    webhook_env = config.alerts.webhook_env

    @dg.asset(group_name="portfolio", pool=DUCKDB_POOL, deps=["signals"], kinds={"duckdb", "polars"},
              metadata={"table": "portfolio.weights", "portfolio": spec.name})  # fmt: skip
    def portfolio_weights(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
        """Each member's target weights: its signal's position fraction x the allocation's weight of the market."""
        markets = [m.on(exchange.venue) for m in research]
        weights = build_weights(warehouse.get(), spec, markets, configured)
        per = weights.group_by("strategy").len().sort("strategy")
        return dg.MaterializeResult(metadata={
            "rows": len(weights), "allocation": spec.allocation,
            "decisions_per_member": dg.MetadataValue.json({r[0]: int(r[1]) for r in per.iter_rows()}),
        })  # fmt: skip

    @dg.asset(group_name="portfolio", pool=DUCKDB_POOL, deps=[portfolio_weights], kinds={"duckdb", "mlflow", "numba"},
              metadata={"table": "portfolio.equity", "also_writes": "portfolio.trades, portfolio.attribution, "
                        "portfolio.strategy_equity, portfolio.runs, risk.events"})  # fmt: skip
    def portfolio_backtest(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource,
                           mlflow: MlflowResource) -> dg.MaterializeResult:  # fmt: skip
        """The members in one account: shared cash, sub-ledgers, rebalancing and risk rules, costs on."""
        markets = [m.on(exchange.venue) for m in research]
        wh = warehouse.get()
        done = backtest_portfolio(wh, spec, markets, configured=configured,
                                  start_run=lambda name, tags: mlflow.start_run(context, EXPERIMENT, run_name=name, tags=tags))  # fmt: skip
        r = done.result
        attribution = {row["strategy"]: {k: row[k] for k in ("trading_pnl", "fees", "slippage", "net_pnl")}
                       for row in attribution_summary(wh, spec.name).iter_rows(named=True)}  # fmt: skip
        meta = {
            "final_equity": dg.MetadataValue.float(r.final_equity),
            "metrics": metrics_table({spec.name: r.metrics}, ("total_return", "sharpe", "max_drawdown", "turnover", "n_trades",
                                                             "fees_paid", "n_risk_events", "n_risk_limited")),
            "attribution": metrics_table(attribution, ("trading_pnl", "fees", "slippage", "net_pnl")),
            "members": dg.MetadataValue.json(done.members),
        }  # fmt: skip
        if done.mlflow_run_id:
            meta["mlflow_run"] = mlflow_run_link(mlflow.experiment_id(EXPERIMENT), done.mlflow_run_id)
        return dg.MaterializeResult(metadata=meta)

    @dg.asset(group_name="portfolio_paper", pool=DUCKDB_POOL, deps=[portfolio_backtest], kinds={"duckdb", "ccxt"},
              metadata={"table": "paper.orders", "also_writes": "paper.fills, paper.tca, paper.equity, risk.state, risk.events"})  # fmt: skip
    def portfolio_paper(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
        """The portfolio's paper account at live (simulated) prices: the backtest's targets, sizing and risk rules."""
        markets = [m.on(exchange.venue) for m in research]
        broker = make_broker(config.portfolio.broker, spec, exchange.client(), capital=config.paper.capital,
                             quote=config.paper.quote, fee=spec.fee, slippage=spec.slippage)  # fmt: skip
        summary = paper_portfolio_step(warehouse.get(), spec, markets, broker, quote=config.paper.quote, execution=execution,
                                       configured=configured, webhook_env=webhook_env)  # fmt: skip
        if summary["risk_state"] != "active":
            context.log.error(f"portfolio {spec.name}: risk state {summary['risk_state']} {summary['risk_events']}")
        return dg.MaterializeResult(metadata={k: dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v
                                              for k, v in summary.items()})  # fmt: skip

    @dg.asset(group_name="portfolio_paper", pool=DUCKDB_POOL, deps=[portfolio_paper], kinds={"duckdb"},
              metadata={"table": "portfolio.drift"})  # fmt: skip
    def portfolio_drift_check(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource) -> dg.MaterializeResult:
        """Paper vs backtest: positions, traded quantities and P&L over the paper period."""
        markets = [m.on(exchange.venue) for m in research]
        drift = portfolio_drift(warehouse.get(), spec, markets, spec.paper_account, configured=configured)
        counts = {s: int(n) for s, n in drift.group_by("status").len().iter_rows()}
        if counts.get("diverged"):
            context.log.warning(f"portfolio {spec.name}: {counts['diverged']} paper-vs-backtest row(s) diverged")
        return dg.MaterializeResult(metadata={"rows": len(drift), "by_status": dg.MetadataValue.json(counts)})

    return [portfolio_weights, portfolio_backtest, portfolio_paper, portfolio_drift_check]
