"""Sensors: an alert for every failed run (log, and a webhook when one is configured)."""

from __future__ import annotations

import logging

import dagster as dg

from assets.partitions import param_sets
from quantdag.tracking import send_alert
from quantdag.exchange import scrub
from quantdag.strategies.keys import default_param_sets

log = logging.getLogger(__name__)


def alert_text(run_id: str, job_name: str, message: str) -> str:
    """One line an operator can act on; secrets scrubbed."""
    return scrub(f"ALERT run {run_id} of job {job_name} failed: {message}")


@dg.run_failure_sensor(name="run_failure_alert", monitor_all_code_locations=False, minimum_interval_seconds=30)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    """Log an alert for a failed run and POST it to the configured webhook."""
    run = context.dagster_run
    text = alert_text(run.run_id, run.job_name, context.failure_event.message or "")
    context.log.error(text)
    send_alert(text.removeprefix("ALERT "), context={"run_id": run.run_id, "job": run.job_name})


@dg.sensor(name="register_param_sets", minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.RUNNING)
def register_param_sets(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Every registered strategy gets a parameter set at its defaults: a new strategy needs no edit here."""
    known = set(context.instance.get_dynamic_partitions(param_sets.name))
    missing = [k for k in default_param_sets() if k not in known]
    return dg.SensorResult(
        dynamic_partitions_requests=[param_sets.build_add_request(missing)] if missing else [],
    )


#: A sweep's best parameters are promoted only if they are unlikely to be luck.
PROMOTE_MAX_PBO = 0.5
PROMOTE_MIN_DSR = 0.5


def promotion_decision(metadata: dict) -> tuple[str | None, str]:
    """The parameter set to promote from an ``optimization`` materialization, or None and why not."""
    def value(name: str) -> float | None:
        v = metadata.get(name)
        v = getattr(v, "value", v)
        return None if v is None or v != v else float(v)

    key = getattr(metadata.get("best_param_set"), "value", metadata.get("best_param_set"))
    pbo, dsr = value("pbo"), value("dsr")
    if not key:
        return None, "no best_param_set in the materialization"
    if pbo is None or pbo > PROMOTE_MAX_PBO:
        return None, f"PBO {pbo} > {PROMOTE_MAX_PBO}: the best is likely overfit"
    if dsr is None or dsr < PROMOTE_MIN_DSR:
        return None, f"deflated Sharpe {dsr} < {PROMOTE_MIN_DSR}: the best is likely luck"
    return str(key), f"promoted (PBO {pbo:.2f}, DSR {dsr:.2f})"


@dg.asset_sensor(asset_key=dg.AssetKey("optimization"), job_name="backtest_job", name="promote_best_params",
                 default_status=dg.DefaultSensorStatus.RUNNING)
def promote_best_params(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """Add a sweep's best parameters as a parameter set (so the daily backtest runs it) and backtest it now."""
    mat = asset_event.asset_materialization
    key, why = promotion_decision(dict(mat.metadata) if mat else {})
    if key is None:
        return dg.SkipReason(why)
    context.log.info(why)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"promote|{key}|{asset_event.timestamp}", partition_key=key)],
        dynamic_partitions_requests=[param_sets.build_add_request([key])],
    )


#: Strategies whose parameter sets trade on paper when their signals change.
PAPER_STRATEGIES = frozenset({"sma_cross", "regime_ma", "consensus"})


@dg.asset_sensor(asset_key=dg.AssetKey("signals"), job_name="paper_trade_job", name="paper_on_new_signals",
                 default_status=dg.DefaultSensorStatus.RUNNING)
def paper_on_new_signals(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """New signals of a paper-enabled parameter set → one paper-trading step for it."""
    mat = asset_event.asset_materialization
    key = mat.partition if mat else None
    if not key or key.split(" ", 1)[0] not in PAPER_STRATEGIES:
        return dg.SkipReason(f"{key!r} is not enabled for paper trading")
    return dg.RunRequest(run_key=f"paper|{key}|{asset_event.timestamp}", partition_key=key)


ALL_SENSORS = [run_failure_alert, register_param_sets, promote_best_params, paper_on_new_signals]
