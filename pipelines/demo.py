"""`make demo`: run the main job offline over the last N days and say what it built.

Runs go through the project's Dagster instance (``$DAGSTER_HOME``, under the data dir), so they
show up in `make ui` afterwards, and every market day of the range is one single-run backfill.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from pipelines.recovery import launch_tags, recover_orphaned_runs
from quantdag.config import ProjectConfig
from quantdag.markets import Market

log = logging.getLogger("quantdag.demo")

from pipelines.batches import RANGE_END, RANGE_START, contiguous_ranges, range_tags_of  # noqa: F401 (re-exported)
#: Dagster's console logger at WARNING: the demo prints its own summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def last_days(n: int, today: date | None = None) -> list[str]:
    """The ``n`` complete UTC days before today, oldest first."""
    today = today or datetime.now(timezone.utc).date()
    return [(today - timedelta(days=i)).isoformat() for i in range(n, 0, -1)]


def range_tags(partitions_def: dg.PartitionsDefinition, days: list[str]) -> dict[str, str]:
    """Tags that make one run cover every partition of ``days`` (a single-run backfill)."""
    wanted = set(days)
    keys = [k for k in partitions_def.get_partition_keys() if k.split("|")[0] in wanted]
    if not keys:
        raise SystemExit(f"no partitions for days {days[0]}..{days[-1]}; is universe.start_date later?")
    return {RANGE_START: keys[0], RANGE_END: keys[-1]}


def _fail_loudly(result: dg.ExecuteInProcessResult, what: str) -> None:
    """Log every failure event of a failed run and stop the demo naming it."""
    if result.success:
        return
    for event in result.all_events:
        if event.is_failure:
            log.error("%s: %s", event.step_key or what, event.message)
    raise SystemExit(f"{what} failed; see the errors above and `make ui` (run {result.run_id})")


def missing_days(
    defs: dg.Definitions, name: str, days: list[str], instance: dg.DagsterInstance, markets: Sequence[Market] = ()
) -> list[str]:
    """Days of ``days`` on which some asset of job ``name`` has a partition not yet materialized, or
    (for a job that writes ``candles``) some market of ``markets`` has no candle in the warehouse."""
    job = defs.resolve_job_def(name)
    wanted = set(days)
    keys = [k for k in job.partitions_def.get_partition_keys() if k.split("|")[0] in wanted]
    todo: set[str] = set()
    for asset_key in job.asset_layer.executable_asset_keys:
        done = instance.get_materialized_partitions(asset_key)
        todo.update(k.split("|")[0] for k in keys if k not in done)
    if markets and dg.AssetKey("candles") in job.asset_layer.executable_asset_keys:
        from quantdag.stages.market_data import uncovered_days
        from quantdag.store import Warehouse

        path = Path(defs.resources["warehouse"].path)
        if path.exists():
            venue = defs.resources["exchange"].venue
            on_venue = [m.on(venue) for m in markets]
            todo.update(uncovered_days(Warehouse(path, read_only=True), on_venue, sorted(wanted - todo)))
    return sorted(todo)


def run_job(
    defs: dg.Definitions,
    name: str,
    days: list[str],
    instance: dg.DagsterInstance,
    *,
    only_missing: bool = True,
    markets: Sequence[Market] = (),
) -> float:
    """Run job ``name`` as one backfill over the days still missing (or all ``days``); 0 s when none.

    ``markets``: the configured markets, whose candles must be in the warehouse for a day to count as done.
    """
    if only_missing:
        days = missing_days(defs, name, days, instance, markets)
    if not days:
        return 0.0
    job = defs.resolve_job_def(name)
    t0 = time.perf_counter()
    result = job.execute_in_process(
        run_config=QUIET, instance=instance, tags={**range_tags(job.partitions_def, days), **launch_tags()},
        raise_on_error=False,
    )
    seconds = time.perf_counter() - t0
    _fail_loudly(result, name)
    failed_checks = [c for c in result.get_asset_check_evaluations() if not c.passed]
    if failed_checks:
        raise SystemExit(f"{name}: checks failed: {[c.check_name for c in failed_checks]}")
    return seconds


def run_backtests(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[str], *, data_changed: bool, blocked: dict[str, str]
) -> float:
    """Register the configured parameter sets, then signal and backtest them, many per run.

    A parameter set already backtested is rerun only when the data changed. One whose signals
    fail the blocking look-ahead check is not backtested: it lands in ``blocked`` with the reason,
    and the other parameter sets of its run are run again without it.
    """
    from assets.partitions import param_sets
    from quantdag.stages.signals import lookahead_failures

    instance.add_dynamic_partitions(param_sets.name, [k for k in keys if not instance.has_dynamic_partition(param_sets.name, k)])
    done = instance.get_materialized_partitions(dg.AssetKey("backtests"))
    todo = [k for k in keys if (data_changed or k not in done) and k not in blocked]
    order = instance.get_dynamic_partitions(param_sets.name)
    job = defs.resolve_job_def("backtest_job")
    wh = defs.resources["warehouse"].get()
    t0 = time.perf_counter()
    queue = contiguous_ranges(order, todo)
    while queue:
        batch = queue.pop(0)
        result = job.execute_in_process(
            run_config=QUIET, instance=instance, tags={**range_tags_of(batch), **launch_tags()}, raise_on_error=False
        )
        if result.success:
            continue
        peeking = lookahead_failures(wh, batch) if _failed_checks(result) else {}
        if not peeking:
            _fail_loudly(result, f"backtest_job for {batch[0]}..{batch[-1]}")
        blocked.update({k: f"signals.no_lookahead: {why}" for k, why in peeking.items()})
        queue[:0] = contiguous_ranges(order, [k for k in batch if k not in peeking])
    return time.perf_counter() - t0


def _failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    """Each failed blocking check as ``asset.check: detail``."""
    out = []
    for c in result.get_asset_check_evaluations():
        if not c.passed:
            meta = {k: getattr(v, "value", v) for k, v in c.metadata.items()}
            where = ", ".join(f"{k} {meta[k]}" for k in ("column", "candle", "market") if k in meta)
            out.append(f"{c.asset_key.to_user_string()}.{c.check_name}" + (f": {where}" if where else ""))
    return out


def run_partitioned(defs: dg.Definitions, instance: dg.DagsterInstance, job_name: str, keys: list[str]) -> float:
    """Run ``job_name`` once per partition key (in process); fail loudly."""
    job = defs.resolve_job_def(job_name)
    t0 = time.perf_counter()
    for key in keys:
        result = job.execute_in_process(
            run_config=QUIET, instance=instance, partition_key=key, tags=launch_tags(), raise_on_error=False
        )
        _fail_loudly(result, f"{job_name} for {key!r}")
    return time.perf_counter() - t0


def run_once(defs: dg.Definitions, instance: dg.DagsterInstance, job_name: str, ops: dict | None = None) -> float:
    """Run the unpartitioned ``job_name`` once (in process), ``ops`` its assets' run config; fail loudly."""
    t0 = time.perf_counter()
    result = defs.resolve_job_def(job_name).execute_in_process(
        run_config={**QUIET, **({"ops": ops} if ops else {})}, instance=instance, tags=launch_tags(), raise_on_error=False
    )
    _fail_loudly(result, job_name)
    return time.perf_counter() - t0


def print_portfolio(data_dir: Path, config: ProjectConfig) -> None:
    """The portfolio backtest's figures, its attribution by strategy and its paper account."""
    import json

    from quantdag.store import Warehouse

    wh = Warehouse(data_dir / "quantdag.duckdb", read_only=True)
    name = config.portfolio.name
    runs = wh.query("SELECT * FROM portfolio.runs WHERE portfolio = ?", [name])
    if not runs.height:
        return
    r = runs.row(0, named=True)
    settings = json.loads(r["settings"])
    print(f"\nportfolio {name}: {len(settings['strategies'])} strategies in one account on "
          f"{', '.join(config.universe.research_markets)} ({config.portfolio.allocation.method}, rebalance {settings['rebalance']}); "
          f"return {r['total_return']:.1%}, sharpe {_num(r['sharpe'])}, max dd {_num(r['max_drawdown'], '.1%')}, "
          f"{r['n_trades']} trades, turnover {_num(r['turnover'], '.1f')}x")
    from quantdag.stages.portfolio import attribution_summary

    attribution = attribution_summary(wh, name).rename({"trading_pnl": "trading", "net_pnl": "net"}).sort("net", descending=True)
    w = max([len("strategy"), *(len(s) for s in attribution["strategy"])]) + 2
    print(f"{'attribution':<{w}}{'trading':>11}{'fees':>10}{'slippage':>10}{'net P&L':>11}")
    for a in attribution.iter_rows(named=True):
        print(f"{a['strategy']:<{w}}{a['trading']:>+11.2f}{-a['fees']:>+10.2f}{-a['slippage']:>+10.2f}{a['net']:>+11.2f}")
    total = float(attribution["net"].sum())
    print(f"{'total':<{w}}{'':>31}{total:>+11.2f}  (= final equity {r['final_equity']:,.2f} - {config.paper.capital:,.0f})")
    events = wh.query("SELECT count(*) AS n FROM risk.events WHERE account = ?", [f"backtest:{name}"])["n"][0]
    state = wh.query(
        "SELECT s.state, (SELECT arg_max(e.equity, e.ts) FROM paper.equity e WHERE e.broker = s.account) AS equity "
        "FROM risk.state s WHERE s.account = ?", [f"portfolio:{name}"],
    )  # fmt: skip
    tca = wh.query("SELECT count(*) AS n, avg(implementation_shortfall_bps) AS is_bps FROM paper.tca WHERE strategy = ?",
                   [f"portfolio-{name}"])  # fmt: skip
    drift = wh.query("SELECT status, count(*) AS n FROM portfolio.drift WHERE portfolio = ? GROUP BY ALL ORDER BY 1", [name])
    if state.height:
        print(f"paper account portfolio:{name}: equity {state['equity'][0]:,.2f}, risk {state['state'][0]}; "
              f"{tca['n'][0]} parent orders with TCA (mean shortfall {_num(tca['is_bps'][0], '.1f')} bps); backtest risk events {events}; "
              "drift " + (", ".join(f"{d['n']} {d['status']}" for d in drift.iter_rows(named=True)) or "none"))


def refetch_days(data_dir: Path, config: ProjectConfig, days: list[str]) -> list[str]:
    """Days of ``days`` with candles still to be asked for again (``raw.refetches``), oldest first."""
    from quantdag.stages.market_data import pending_refetch_days
    from quantdag.store import Warehouse

    path = data_dir / "quantdag.duckdb"
    if not path.exists():
        return []
    pending = pending_refetch_days(Warehouse(path, read_only=True), config.markets, max_refetches=config.exchange.gap_refetches)
    return sorted({d for ds in pending.values() for d in ds} & set(days))


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "n/a" if v is None else format(v, fmt)


def print_sweep_and_paper(data_dir: Path, config: ProjectConfig) -> None:
    from quantdag.store import Warehouse

    rule = config.optimization.promotion
    wh = Warehouse(data_dir / "quantdag.duckdb", read_only=True)
    sweeps = wh.query("SELECT * FROM optimize.sweeps ORDER BY strategy")
    if sweeps.height == 0:
        print(f"\nsweep of {', '.join(config.optimization.strategies)} on {config.optimization_market.key}: skipped, the stored"
              f" history is too short for any combination to reach {config.optimization.min_trades} trades (try more --days)")
    for r in sweeps.iter_rows(named=True):
        ok = r["pbo"] is not None and r["dsr"] is not None and r["pbo"] <= rule.max_pbo and r["dsr"] >= rule.min_dsr
        print(f"\nsweep {r['strategy']} on {r['symbol']} {r['timeframe']}: {r['n_evaluated']} combinations ({r['search']}),"
              f" best {r['best_params']} {r['objective']} {_num(r['best_objective'])};"
              f" deflated Sharpe {_num(r['dsr'])}, PBO {_num(r['pbo'])}"
              f" -> {'promotable' if ok else 'likely luck: not promoted'}"
              f" (needs PBO <= {rule.max_pbo} and DSR >= {rule.min_dsr})")
    pos = wh.query(
        "SELECT broker, symbol, qty, avg_price, realised_pnl, fees FROM paper.positions WHERE qty <> 0 ORDER BY broker, symbol"
    )
    orders = wh.query("SELECT count(*) AS n FROM paper.orders")["n"][0]
    print(f"\npaper trading: {orders} orders; open positions:")
    for r in pos.iter_rows(named=True):
        print(f"  {r['broker'][:40]:<42}{r['symbol']:<10}{r['qty']:>12.6f} @ {r['avg_price']:>10.2f}"
              f"  realised {r['realised_pnl']:>9.2f}  fees {r['fees']:>7.2f}")
    eq = wh.query(
        "SELECT broker, arg_max(equity, ts) AS equity FROM paper.equity GROUP BY broker ORDER BY broker"
    )
    capital, quote = config.paper.capital, config.paper.quote
    for r in eq.iter_rows(named=True):
        print(f"  {r['broker'][:40]:<42}equity {r['equity']:>10.2f}  P&L {r['equity'] - capital:>+9.2f} (from {capital:,.0f} {quote})")
    drift = wh.query("SELECT status, count(*) AS n FROM paper.drift GROUP BY ALL ORDER BY 1")
    print("backtest-paper drift: " + (", ".join(f"{r['n']} {r['status']}" for r in drift.iter_rows(named=True)) or "no fills yet")
          + " (pending: the candle after the decision has not closed yet)")


def print_sentiment(data_dir: Path, config: ProjectConfig) -> None:
    """What the news feed brought: versions, late fetches, revisions, near-duplicates, candles with news."""
    from quantdag.store import Warehouse

    wh = Warehouse(data_dir / "quantdag.duckdb", read_only=True)
    raw = wh.query("SELECT count(*) AS n, count(*) FILTER (revision > 0) AS revised, count(*) FILTER (deleted) AS deleted, "
                   "count(*) FILTER (fetched_at - published_at > INTERVAL 1 HOUR) AS late FROM raw.news")  # fmt: skip
    items = wh.query("SELECT count(*) AS n, count(duplicate_of) AS dups, avg(score) AS mean FROM sentiment.items")
    bars = wh.query("SELECT symbol, timeframe, avg((sent_count > 0)::INT) AS share, avg(sent_decayed) AS decayed "
                    "FROM sentiment.bars WHERE timeframe = '1h' GROUP BY ALL ORDER BY symbol")  # fmt: skip
    if not raw["n"][0]:
        return
    r, i = raw.row(0, named=True), items.row(0, named=True)
    print(f"\nsentiment ({config.sentiment.source} feed): {r['n']} versions ({r['late']} fetched > 1 h late, {r['revised']} "
          f"revisions of which {r['deleted']} deletions) -> {i['n']} scored item rows ({i['dups']} near-duplicates counted once, "
          f"mean score {_num(i['mean'])}); candles with news in the last {config.sentiment.window_hours:g} h: "
          + ", ".join(f"{b['symbol']} {b['share']:.0%}" for b in bars.iter_rows(named=True)))


def print_leaderboard(data_dir: Path, config: ProjectConfig) -> None:
    from quantdag.stages.backtests import leaderboard
    from quantdag.store import Warehouse

    s = config.backtest_settings()
    board = leaderboard(Warehouse(data_dir / "quantdag.duckdb", read_only=True), min_trades=config.leaderboard.min_trades)
    print(f"\nleaderboard (backtest.runs: {s.fill.replace('_', '-')} fills, {s.fee * 1e4:g} bps fee + {s.slippage * 1e4:g} bps"
          f" slippage per side)")
    w = max([11, *(len(n) + 2 for n in board["strategy"])])
    print(f"{'strategy':<{w}}{'market':<14}{'return':>9}{'sharpe':>8}{'max dd':>9}{'trades':>8}"
          f"   (fewer than {config.leaderboard.min_trades} trades: not ranked, marked *)")
    for r in board.iter_rows(named=True):
        sharpe = f"{r['sharpe']:8.2f}" if r["sharpe"] is not None else f"{'n/a':>8}"
        dd = f"{r['max_drawdown']:9.1%}" if r["max_drawdown"] is not None else f"{'n/a':>9}"
        print(f"{r['strategy']:<{w}}{r['symbol'] + ' ' + r['timeframe']:<14}{r['total_return']:9.1%}{sharpe}{dd}{r['n_trades']:8d}{'' if r['ranked'] else ' *'}")


def ml_holdout_days(n_days: int) -> int:
    """Days the demo's model does not train on (a third), so its backtest beside the rules is a forward test."""
    return max(n_days // 3, 1)


def print_ml(data_dir: Path, config: ProjectConfig) -> None:
    """The model's latest training: its version and alias, scores and the out-of-sample backtest."""
    if not config.ml.enabled:
        return
    import json

    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{data_dir / 'mlflow.db'}")
    try:
        latest = max(client.search_model_versions(f"name='{config.ml.model_name}'"), key=lambda v: int(v.version))
    except (ValueError, mlflow.exceptions.MlflowException):
        return
    run = client.get_run(latest.run_id)
    m, tags = run.data.metrics, run.data.tags
    champion = client.get_model_version_by_alias(config.ml.model_name, "champion").version
    print(f"\nmodel {config.ml.model_name} v{latest.version} ({config.ml.model}, {int(m.get('features', 0))} features, "
          f"{int(m.get('rows', 0))} labelled candles of {', '.join(mk.key for mk in config.ml_markets)}): "
          f"{tags.get('promotion', '?')} ({tags.get('promotion_reason', '')}); champion v{champion}")
    print(f"  purged walk-forward: AUC {_num(m.get('cv_auc'), '.3f')}, log loss {_num(m.get('cv_log_loss'), '.4f')} "
          f"on {int(m.get('oos_rows', 0))} out-of-sample candles")
    if "outliers_train_frac" in m:
        print(f"  outliers (dissimilarity index > {run.data.params.get('outliers.threshold', '?')}): "
              f"{_num(m['outliers_train_frac'], '.2%')} of the folds' training rows left out, "
              f"{_num(m.get('outliers_oos_frac'), '.2%')} of the out-of-sample candles given no prediction")
    per_market = json.loads(Path(client.download_artifacts(latest.run_id, "oos_backtest.json")).read_text())
    for market, r in per_market.items():
        print(f"  out-of-sample backtest {market:<14}{r['total_return']:9.1%}  sharpe {_num(r['sharpe'])}  "
              f"max dd {_num(r['max_drawdown'], '.1%')}  {r['n_trades']} trades")
    dsr, pbo = m.get("oos_dsr"), m.get("oos_pbo")
    verdict = "evidence of skill" if dsr is not None and dsr >= 0.95 and pbo is not None and pbo < 0.5 else "no evidence of skill"
    print(f"  over the {len(config.ml.training_config().thresholds)} thresholds tried: deflated Sharpe {_num(dsr)}, PBO {_num(pbo)} -> {verdict}")
    train_end = datetime.fromtimestamp(int(latest.tags["train_end_ms"]) / 1000, timezone.utc)
    print(f"  the leaderboard's ml_model rows trade v{champion} only after its training data ({train_end:%Y-%m-%d %H:%M} UTC):"
          " a forward test, fewer candles than the rules'")


def summary(data_dir: Path) -> list[tuple[str, int]]:
    from quantdag.store import Warehouse

    wh = Warehouse(data_dir / "quantdag.duckdb", read_only=True)
    tables = wh.query(
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
        "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1"
    )["t"].to_list()
    return [(t, int(wh.query(f"SELECT count(*) AS n FROM {t}")["n"][0])) for t in tables]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: the configuration's data_dir")
    parser.add_argument("--days", type=int, default=None,
                        help="complete UTC days up to yesterday; default: from the configuration's universe.start_date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # "Successfully registered model ...": the demo prints its own summary
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", category=Warning, module="dagster")
    warnings.filterwarnings("ignore", message=".*(beta|preview|superseded).*")

    from quantdag.config import load_config
    from quantdag.errors import ConfigurationError

    try:
        config = load_config()
    except ConfigurationError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    data_dir = args.data_dir.resolve() if args.data_dir else config.data_path
    os.environ.setdefault("DAGSTER_HOME", str(data_dir / "dagster_home"))
    from pipelines.instance import setup_home

    setup_home(os.environ["DAGSTER_HOME"], config)  # the instance settings of the configuration's `instance` section

    from pipelines.definitions import build_defs, prepare

    try:
        defs = build_defs(data_dir, config=config)
    except ConfigurationError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    keys = list(prepare(config))
    today = datetime.now(timezone.utc).date()
    start = config.universe.start(today)
    n_days = args.days if args.days is not None else (today - start).days
    if n_days < 1 or today - timedelta(days=n_days) < start:
        raise SystemExit(f"--days {n_days}: the partitions start at universe.start_date {start}; "
                         f"ask for at most {(today - start).days} days or move start_date back")
    days = last_days(n_days, today)
    t_all = time.perf_counter()
    timings = []
    with dg.DagsterInstance.get() as instance:
        for r in recover_orphaned_runs(instance):  # a killed demo left runs holding the duckdb pool slot
            print(f"recovered: run {r.run_id} of {r.job_name} ({r.reason}) marked failed, its pool slots freed")
        timings.append(("daily_data_job", run_job(defs, "daily_data_job", days, instance, markets=config.markets)))
        heal = refetch_days(data_dir, config, days)  # candles an exchange page left out, asked for again
        if heal:
            timings.append(("daily_data_job (heal)", run_job(defs, "daily_data_job", heal, instance, only_missing=False)))
        changed = any(seconds > 0 for _, seconds in timings)
        if config.ml.enabled and (changed or instance.get_latest_materialization_event(dg.AssetKey("ml_model")) is None):
            # Before the backtests, trained without the last third of the days: the ml_model parameter set
            # then trades the new champion on days it never saw (its backtest skips the days it learned from).
            holdout = {"ml_model": {"config": {"holdout_days": ml_holdout_days(len(days))}}}
            timings.append(("ml_job", run_once(defs, instance, "ml_job", holdout)))
        blocked: dict[str, str] = {}
        timings.append(("backtest_job", run_backtests(defs, instance, keys, data_changed=changed, blocked=blocked)))
        if changed or not instance.get_materialized_partitions(dg.AssetKey("optimization")):
            if config.optimization.shards > 1:  # every shard of each swept strategy, then the merge
                shard_keys = [f"{k}|{s}" for s in config.optimization.strategies for k in range(config.optimization.shards)]
                timings.append(("optimization_shards_job", run_partitioned(defs, instance, "optimization_shards_job", shard_keys)))
            timings.append(("optimization_job", run_partitioned(defs, instance, "optimization_job", config.optimization.strategies)))
        from quantdag.stages.paper import paper_enabled_now
        from quantdag.strategies.keys import strategy_name_of

        # strategies.paper with the dashboard's switches applied (nothing else writes here: never busy for long)
        paper_on = paper_enabled_now(str(data_dir / "quantdag.duckdb"), config.strategies.paper, lock_timeout=30.0)
        paper_keys = [k for k in keys if strategy_name_of(k) in (paper_on or ()) and k not in blocked]
        timings.append(("paper_trade_job", run_partitioned(defs, instance, "paper_trade_job", paper_keys)))
        timings.append(("paper_drift_job", run_partitioned(defs, instance, "paper_drift_job", paper_keys)))
        timings.append(("portfolio_job", run_once(defs, instance, "portfolio_job")))
        timings.append(("portfolio_paper_job", run_once(defs, instance, "portfolio_paper_job")))
    total = time.perf_counter() - t_all

    venue = "offline simulated exchange" if config.exchange.mode == "simulated" else f"live {config.exchange.id}"
    print(f"\nquantdag demo: {len(days)} days ({days[0]} .. {days[-1]}), {venue}; configuration {config.source}")
    for job, seconds in timings:
        print(f"  {job:<18} {seconds:7.1f} s")
    print(f"  {'total':<18} {total:7.1f} s\n")
    print(f"{'table':<24}{'rows':>10}")
    for table, n in summary(data_dir):
        print(f"{table:<24}{n:>10}")
    for key, why in blocked.items():
        print(f"\nBLOCKED {key}: not backtested or traded ({why})")
    print_sentiment(data_dir, config)
    print_leaderboard(data_dir, config)
    print_ml(data_dir, config)
    print_sweep_and_paper(data_dir, config)
    print_portfolio(data_dir, config)
    print(f"\nDuckDB file    {data_dir / 'quantdag.duckdb'}")
    print(f"MLflow store   sqlite:///{data_dir / 'mlflow.db'}  (make mlflow-ui → http://127.0.0.1:5000)")
    print(f"Dagster home   {os.environ['DAGSTER_HOME']}  (make ui → http://127.0.0.1:3000)")
    print("Dashboard      QUANTDAG_DASHBOARD_PASSWORD=... make dashboard → http://127.0.0.1:8050 (accounts, leaderboard, sweeps, risk)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
