"""Signals: one partition per strategy parameter set, over every research market's candles."""

import dagster as dg

from assets.common import DUCKDB_POOL, report_metadata
from assets.partitions import Partitions
from quantdag.config import ProjectConfig
from quantdag.stages.signals import SIGNAL_CHECKS, build_signals, check_signals
from quantdag.strategies import Strategy
from resources import ExchangeResource, WarehouseResource


def build(config: ProjectConfig, parts: Partitions, configured: dict[str, Strategy]) -> list[dg.AssetsDefinition]:
    """``signals`` of a parameter set on the configured research markets, gated by a look-ahead check."""

    @dg.asset(
        partitions_def=parts.param_sets,
        group_name="signals",
        pool=DUCKDB_POOL,
        deps=[dg.AssetDep("candles", partition_mapping=dg.AllPartitionMapping())],
        kinds={"duckdb", "polars"},
        metadata={"table": "signals.signals", "also_writes": "signals.param_sets, signals.lookahead"},
        check_specs=[
            dg.AssetCheckSpec(
                "no_lookahead", asset="signals", blocking=True,
                description="the strategy's signals and indicators on a candle depend on that candle and earlier ones only",
            ),
            *(dg.AssetCheckSpec(name, asset="signals", description=desc, blocking=True) for name, desc in SIGNAL_CHECKS.items()),
        ],
    )
    def signals(context: dg.AssetExecutionContext, warehouse: WarehouseResource, exchange: ExchangeResource):
        """Entry/exit (and target) signals of one parameter set, computed on closed candles only."""
        markets = [m.on(exchange.venue) for m in config.research_markets]
        report = build_signals(warehouse.get(), context.partition_key, markets, configured=configured)
        verdict = report.lookahead
        yield dg.MaterializeResult(metadata=report_metadata(report))
        withheld = verdict is not None and not verdict.ok
        for name, v in check_signals(warehouse.get(), context.partition_key, markets, signals_withheld=withheld).items():
            yield dg.AssetCheckResult(check_name=name, passed=v.passed, severity=dg.AssetCheckSeverity.ERROR, metadata=v.metadata)
        if verdict is None:  # no candles yet: nothing was checked, nothing can be backtested
            yield dg.AssetCheckResult(check_name="no_lookahead", passed=True, metadata={"checked": False})
            return
        meta = {"market": verdict.market, "candles_checked": verdict.n_candles, "reused_verdict": verdict.cached}
        if not verdict.ok:
            meta.update({"column": verdict.column, "candle": str(verdict.candle_ts),
                         "detail": dg.MetadataValue.md(f"```\n{verdict.detail}\n```")})
            context.log.error(f"{context.partition_key} looks ahead: column {verdict.column!r} at candle {verdict.candle_ts}")
        yield dg.AssetCheckResult(check_name="no_lookahead", passed=verdict.ok, severity=dg.AssetCheckSeverity.ERROR, metadata=meta)

    return [signals]
