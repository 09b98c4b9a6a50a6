"""Sensors: failure alerts, parameter-set registration, promotion of sweeps, paper trading on new signals."""

from __future__ import annotations

import logging
import os
from datetime import date, datetime, timedelta, timezone

from pathlib import Path

import dagster as dg

from assets.partitions import param_sets
from quantdag.config import ProjectConfig, PromotionSettings
from quantdag.exchange import scrub
from quantdag.tracking import send_alert

log = logging.getLogger(__name__)


def alert_text(run_id: str, job_name: str, message: str) -> str:
    """One line an operator can act on; secrets scrubbed."""
    return scrub(f"ALERT run {run_id} of job {job_name} failed: {message}")


def promotion_decision(metadata: dict, rule: PromotionSettings = PromotionSettings()) -> tuple[str | None, str]:
    """The parameter set to promote from an ``optimization`` materialization, or None and why not."""
    def value(name: str) -> float | None:
        v = metadata.get(name)
        v = getattr(v, "value", v)
        return None if v is None or v != v else float(v)

    key = getattr(metadata.get("best_param_set"), "value", metadata.get("best_param_set"))
    pbo, dsr = value("pbo"), value("dsr")
    if not key:
        return None, "no best_param_set in the materialization"
    if pbo is None or pbo > rule.max_pbo:
        return None, f"PBO {pbo} > {rule.max_pbo}: the best is likely overfit"
    if dsr is None or dsr < rule.min_dsr:
        return None, f"deflated Sharpe {dsr} < {rule.min_dsr}: the best is likely luck"
    return str(key), f"promoted (PBO {pbo:.2f}, DSR {dsr:.2f})"


def _status(on: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED


def build_sensors(config: ProjectConfig, param_set_keys: list[str], warehouse_path: str | None = None) -> list[dg.SensorDefinition]:
    """Sensors whose default status follows ``automation``; ``param_set_keys`` are the configured sets."""
    auto = config.automation
    paper = frozenset(config.strategies.paper)
    webhook_env = config.alerts.webhook_env
    rule = config.optimization.promotion

    @dg.run_failure_sensor(name="run_failure_alert", monitor_all_code_locations=False, minimum_interval_seconds=30,
                           default_status=_status(auto.run_failure_alert))
    def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
        """Log an alert for a failed run and POST it to the configured webhook."""
        run = context.dagster_run
        text = alert_text(run.run_id, run.job_name, context.failure_event.message or "")
        context.log.error(text)
        send_alert(text.removeprefix("ALERT "), event="run_failure", context={"run_id": run.run_id, "job": run.job_name}, webhook_env=webhook_env)

    @dg.sensor(name="register_param_sets", minimum_interval_seconds=3600, default_status=_status(auto.register_param_sets))
    def register_param_sets(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        """Every configured parameter set (and each strategy's defaults) gets a partition: no code edit."""
        known = set(context.instance.get_dynamic_partitions(param_sets.name))
        missing = [k for k in param_set_keys if k not in known]
        return dg.SensorResult(
            dynamic_partitions_requests=[param_sets.build_add_request(missing)] if missing else [],
        )

    @dg.asset_sensor(asset_key=dg.AssetKey("optimization"), job_name="backtest_job", name="promote_best_params",
                     default_status=_status(auto.promote_best_params))
    def promote_best_params(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
        """Add a sweep's best parameters as a parameter set (so the daily backtest runs it) and backtest it now."""
        mat = asset_event.asset_materialization
        key, why = promotion_decision(dict(mat.metadata) if mat else {}, rule)
        if key is None:
            return dg.SkipReason(why)
        context.log.info(why)
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"promote|{key}|{asset_event.timestamp}", partition_key=key)],
            dynamic_partitions_requests=[param_sets.build_add_request([key])],
        )

    @dg.sensor(job_name="paper_trade_job", name="paper_on_new_signals", minimum_interval_seconds=30,
               default_status=_status(auto.paper_trading))
    def paper_on_new_signals(context: dg.SensorEvaluationContext):
        """New signals of a paper-enabled parameter set → one paper-trading step for it.

        Every ``signals`` materialization since the cursor counts, not only the latest: one backtest
        run signals many parameter sets, each its own partition's materialization.
        """
        from quantdag.stages.paper import paper_enabled_now
        from quantdag.strategies.keys import strategy_name_of

        after = int(context.cursor) if context.cursor else None
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("signals"), after_storage_id=after), limit=1000, ascending=True
        ).records
        if not records:
            return dg.SkipReason("no new signals")
        enabled = paper_enabled_now(warehouse_path, sorted(paper))  # strategies.paper + the dashboard's switches
        if enabled is None:  # cursor kept: the next tick sees these signals again
            return dg.SkipReason("warehouse busy: paper switches unread, no paper step this tick")
        context.update_cursor(str(records[-1].storage_id))
        latest = {r.partition_key: r for r in records if r.partition_key and strategy_name_of(r.partition_key) in enabled}
        if not latest:
            return dg.SkipReason(f"no new signals of a paper-enabled strategy ({sorted(enabled)})")
        return [dg.RunRequest(run_key=f"paper|{key}|{r.timestamp}", partition_key=key) for key, r in latest.items()]

    @dg.sensor(name="recover_crashed_runs", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
    def recover_crashed_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        """Fail runs whose worker process died (kill -9, OOM) and free their duckdb pool slots.

        The default run launcher cannot tell Dagster's run monitoring that a worker died, so without
        this a crashed run would hold the pool's only slot and block every later run.
        """
        from pipelines.recovery import recover_orphaned_runs

        done = recover_orphaned_runs(context.instance)
        for r in done:
            context.log.warning(f"recovered run {r.run_id} of {r.job_name}: {r.reason}")
        return dg.SkipReason(f"recovered {len(done)} crashed run(s)" if done else "no crashed runs")

    @dg.sensor(name="heal_market_data", job_name="daily_data_job", minimum_interval_seconds=3600,
               default_status=_status(auto.daily_schedules))
    def heal_market_data(context: dg.SensorEvaluationContext):
        """Re-run the data job on days whose candles an exchange page left out (bounded by ``gap_refetches``)."""
        from pipelines.demo import range_tags
        from quantdag.markets import contiguous
        from quantdag.stages.market_data import pending_refetch_days
        from quantdag.store import Warehouse, WarehouseError

        if warehouse_path is None or not os.path.exists(warehouse_path):
            return dg.SkipReason("no warehouse yet")
        try:  # read-only and short: a writer holding the file just means "next tick"
            pending = pending_refetch_days(Warehouse(warehouse_path, read_only=True, lock_timeout=1.0), config.markets,
                                           max_refetches=config.exchange.gap_refetches)
        except WarehouseError as exc:
            return dg.SkipReason(f"warehouse busy: {exc}")
        days = sorted({date.fromisoformat(d) for ds in pending.values() for d in ds})
        if not days:
            return dg.SkipReason("no candles waiting to be fetched again")
        job = context.repository_def.get_job("daily_data_job")
        requests = []
        for a, b in contiguous(days):
            span = [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]
            hour = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H")  # at most one attempt per hour
            requests.append(dg.RunRequest(run_key=f"heal|{a}|{b}|{hour}", tags=range_tags(job.partitions_def, span)))
        return requests

    @dg.sensor(job_name="stream_ingest_job", name="ingest_streamed_candles", minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING)
    def ingest_streamed_candles(context: dg.SensorEvaluationContext):
        """Landing files older than 30 s (the streamer could not store them: a job held DuckDB) → store them."""
        import time

        from quantdag.stages.stream import landing_root
        from quantdag.stream.landing import pending

        data_dir = Path(warehouse_path).parent if warehouse_path else config.data_path
        files = pending(landing_root(data_dir))
        waiting = [f for f in files if time.time() - f.stat().st_mtime > 30]
        if not waiting:
            return dg.SkipReason(f"{len(files)} landing file(s), none waiting over 30 s")
        return dg.RunRequest(run_key=f"landing|{waiting[-1].name}")

    alerts = config.alerts

    @dg.sensor(name="daily_digest", minimum_interval_seconds=300,
               default_status=_status(alerts.digest_hour is not None or alerts.heartbeat_hours > 0))
    def daily_digest(context: dg.SensorEvaluationContext):
        """The daily digest at ``alerts.digest_hour`` UTC and a heartbeat every ``alerts.heartbeat_hours``
        (the cursor holds the last of each sent, so a restarted daemon sends neither twice)."""
        return digest_tick(context, alerts, warehouse_path, datetime.now(timezone.utc), config.paper.capital)

    return [run_failure_alert, register_param_sets, promote_best_params, paper_on_new_signals, recover_crashed_runs,
            heal_market_data, ingest_streamed_candles, daily_digest]


def digest_tick(context: dg.SensorEvaluationContext, alerts, warehouse_path: str | None, now: datetime,
                capital: float) -> dg.SkipReason:
    """Send what is due at ``now`` (digest, heartbeat) and move the cursor past it."""
    import json

    from quantdag.store import Warehouse, WarehouseError
    from quantdag.tracking.digest import digest_text, heartbeat_text

    cur = json.loads(context.cursor) if context.cursor else {}
    today = now.date().isoformat()
    digest_due = alerts.digest_hour is not None and now.hour >= alerts.digest_hour and cur.get("digest") != today
    last_beat = datetime.fromisoformat(cur["heartbeat"]) if cur.get("heartbeat") else None
    beat_due = alerts.heartbeat_hours > 0 and (last_beat is None or now - last_beat >= timedelta(hours=alerts.heartbeat_hours))
    if not (digest_due or beat_due):
        return dg.SkipReason("nothing due")
    wh = Warehouse(warehouse_path, read_only=True, lock_timeout=5.0) if warehouse_path and os.path.exists(warehouse_path) else None
    sent = []
    try:
        if digest_due and wh is not None:
            send_alert(digest_text(wh, capital, now), event="digest", webhook_env=alerts.webhook_env, settings=alerts)
            cur["digest"] = today
            sent.append("digest")
        if beat_due:
            send_alert(heartbeat_text(wh, now), event="heartbeat", webhook_env=alerts.webhook_env, settings=alerts)
            cur["heartbeat"] = now.isoformat()
            sent.append("heartbeat")
    except WarehouseError as exc:  # busy for 5 s: the next tick (5 min) tries again
        context.update_cursor(json.dumps(cur))
        return dg.SkipReason(f"warehouse busy: {exc}")
    context.update_cursor(json.dumps(cur))
    return dg.SkipReason(f"sent {', '.join(sent) or 'nothing (no warehouse yet)'}")
