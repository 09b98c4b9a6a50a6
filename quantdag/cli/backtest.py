"""``quantdag backtest``: one strategy on one market, from stored candles or a parquet file.

The same engine, costs and signal-to-order rule as the pipeline's backtests
(:func:`quantdag.stages.backtests.backtest_signals`), the pipeline's backtest settings from the
configuration, the look-ahead check first (a peeking strategy is refused, as the pipeline's
blocking check refuses it), the tear sheet, and an MLflow run holding everything
``quantdag reproduce`` needs to run it again: the strategy as given, its parameters, every
setting, the candles' source, exact range and hash, and the code version.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import polars as pl

from quantdag.cli.common import (
    CheckFailed,
    build_strategy,
    existing_file,
    load_project,
    parse_day,
    parse_params,
    reports_errors,
    resolve_market,
)

if TYPE_CHECKING:
    from quantdag.backtest import BacktestResult, BacktestSettings
    from quantdag.config import ProjectConfig
    from quantdag.markets import Market
    from quantdag.strategies import Strategy

EXPERIMENT = "backtests"
#: Metrics printed, in this order (every metric is logged to MLflow).
SHOWN = ("final_equity", "total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown",
         "n_trades", "win_rate", "profit_factor", "exposure", "fees_paid")  # fmt: skip


@dataclass
class BacktestJob:
    """One backtest as asked: what it ran on, and the timings of its steps (``quantdag profile``)."""

    spec: str
    strategy: Strategy
    market: Market
    candles: pl.DataFrame
    settings: BacktestSettings
    candle_file: Path | None
    timings: dict[str, float] = field(default_factory=dict)


def strategy_spec(spec: str) -> str:
    """``spec`` with a strategy file's path made absolute (so a logged run reruns from anywhere)."""
    path, sep, cls = spec.rpartition(":")
    if sep and path.endswith(".py"):
        return f"{Path(path).expanduser().resolve()}:{cls}"
    return spec


def candles_hash(candles: pl.DataFrame) -> str:
    """SHA-256 of the candles' timestamps and OHLCV bytes: equal hashes, identical inputs."""
    h = hashlib.sha256()
    h.update(candles["ts"].dt.epoch("ms").to_numpy().tobytes())
    for c in ("open", "high", "low", "close", "volume"):
        h.update(candles[c].cast(pl.Float64).to_numpy().tobytes())
    return h.hexdigest()


def git_version() -> dict[str, str]:
    """The repository's commit and whether its working tree has changes ("" outside a checkout)."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "", "git_dirty": ""}
    return {"git_commit": commit, "git_dirty": str(bool(dirty)).lower() if commit else ""}


def prepare(
    config: ProjectConfig,
    spec: str,
    params: dict[str, Any],
    market_key: str | None,
    candle_file: Path | None,
    start: date | None,
    end: date | None,
    *,
    settings: BacktestSettings | None = None,
) -> BacktestJob:
    """Resolve the strategy and market and load the candles (downloading missing days)."""
    from quantdag.cli.candles import from_parquet, from_warehouse, market_of_file
    from quantdag.cli.common import InputError

    t0 = time.perf_counter()
    strategy = build_strategy(spec, params)
    if market_key is None:
        market_key = market_of_file(candle_file) if candle_file is not None else None
        if market_key is None:
            raise InputError("--market SYMBOL:TF is required (e.g. --market BTC/USDT:1h)")
    market = resolve_market(config, market_key)
    t1 = time.perf_counter()
    if candle_file is not None:
        candles = from_parquet(candle_file, start, end)
    else:
        candles = from_warehouse(config, market, start, end, peers=strategy.frame_peers)
    settings = (settings or config.backtest_settings()).replace(timeframe=market.timeframe)
    job = BacktestJob(strategy_spec(spec), strategy, market, candles, settings, candle_file)
    job.timings.update(resolve=t1 - t0, load=time.perf_counter() - t1)
    return job


def lookahead_problem(job: BacktestJob) -> str | None:
    """The look-ahead check's report if the strategy peeks, else None."""
    from quantdag.strategies.lookahead import check_lookahead

    report = check_lookahead(job.strategy, job.candles.tail(3000), prefixes=20, perturbations=3)
    return None if report.ok else report.summary()


def execute(job: BacktestJob) -> BacktestResult:
    """Signals then the engine; the time of each step lands in ``job.timings``."""
    from quantdag.stages.backtests import backtest_signals

    t0 = time.perf_counter()
    sig = job.strategy.signals(job.candles)
    t1 = time.perf_counter()
    result = backtest_signals(job.candles, sig, job.settings)
    t2 = time.perf_counter()
    result.metrics  # noqa: B018  (computed once and cached: timed here)
    job.timings.update(signals=t1 - t0, kernel=t2 - t1, metrics=time.perf_counter() - t2)
    return result


def run_params(job: BacktestJob) -> dict[str, str]:
    """What ``quantdag reproduce`` reads back (beside ``param.*``/``setting.*`` of the tracking code)."""
    ts = job.candles["ts"]
    return {
        "cli.strategy": job.spec,
        "cli.params_json": job.strategy.params_json,
        "cli.settings_json": json.dumps(job.settings.as_dict(), sort_keys=True),
        "cli.market": job.market.key,
        "cli.candles": str(job.candle_file) if job.candle_file is not None else "",
        "cli.first_ts": ts.min().isoformat(),
        "cli.last_ts": ts.max().isoformat(),
        "cli.n_candles": str(job.candles.height),
        "cli.data_sha256": candles_hash(job.candles),
    }


def code_params(job: BacktestJob) -> dict[str, str]:
    from quantdag.stages.signals import code_hash

    return {**{f"code.{k}": v for k, v in git_version().items()}, "code.strategy_sha256": code_hash(job.strategy)}


def log_run(config: ProjectConfig, job: BacktestJob, result: BacktestResult) -> str:
    """An MLflow run in the data dir's store (experiment ``backtests``, tagged ``source=cli``); its id."""
    import mlflow

    from quantdag.strategies.keys import param_set_label
    from quantdag.tracking import log_backtest
    from quantdag.tracking.store import open_experiment

    exp = open_experiment(config.data_path, EXPERIMENT)
    tags = {"source": "cli", "strategy": job.strategy.name, "params_hash": job.strategy.params_hash, "market": job.market.key}
    name = f"{param_set_label(job.strategy)} · {job.market.key} (cli)"
    with mlflow.start_run(experiment_id=exp, run_name=name, tags=tags) as run:
        log_backtest(result, strategy_params=job.strategy.params, market=job.market.where)
        mlflow.log_params({**run_params(job), **code_params(job)})
        return run.info.run_id


def print_metrics(result: BacktestResult, out: Any = None) -> None:
    metrics = result.metrics
    for k in SHOWN:
        if k in metrics:
            v = metrics[k]
            click.echo(f"  {k:<16} {v:,.6g}" if isinstance(v, float) else f"  {k:<16} {v}", file=out)


@click.command()
@click.argument("strategy")
@click.option("--market", "market_key", metavar="SYMBOL:TF", help="e.g. BTC/USDT:1h (default: from a --candles file named BTC_USDT-1h.parquet)")
@click.option("--from", "start", metavar="YYYY-MM-DD", help="first day (UTC); default the universe's start_date")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="last day, inclusive (UTC); default today")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="a strategy parameter (repeatable)")
@click.option("--candles", "candle_file", metavar="FILE.parquet", help="read candles from this file instead of the warehouse")
@click.option("--report", "report", metavar="OUT.html", help="tear sheet path (default <data_dir>/reports/<strategy>-<market>.html)")
@click.option("--no-mlflow", is_flag=True, help="do not log an MLflow run")
@click.option("--skip-lookahead", is_flag=True, help="backtest even if the look-ahead check fails (the result is not honest)")
@reports_errors
def backtest(strategy: str, market_key: str | None, start: str | None, end: str | None, params: tuple[str, ...],
             candle_file: str | None, report: str | None, no_mlflow: bool, skip_lookahead: bool) -> None:  # fmt: skip
    """Backtest STRATEGY on one market: prints the metrics, writes the tear sheet, logs an MLflow run.

    STRATEGY is a registered name (see `quantdag list`), path/to/file.py:ClassName or
    package.module:ClassName. Candles come from the warehouse (days not stored yet are downloaded
    from the configured exchange, the simulator offline) or from --candles FILE.parquet. Costs and
    fills are the configuration's `backtest` section. Exit 1 if the strategy looks ahead.
    """
    config = load_project()
    job = prepare(config, strategy, parse_params(params), market_key,
                  existing_file(candle_file, "--candles") if candle_file else None,
                  parse_day(start, "--from"), parse_day(end, "--to"))  # fmt: skip
    if not skip_lookahead:
        problem = lookahead_problem(job)
        if problem is not None:
            click.echo(problem)
            raise CheckFailed(f"{job.strategy.name} looks ahead: not backtested (run `quantdag check {strategy}`)")
    result = execute(job)
    ts = job.candles["ts"]
    click.echo(f"{job.strategy!r} on {job.market.key} ({job.market.exchange if job.candle_file is None else job.candle_file.name}): "
               f"{job.candles.height} candles {ts.min()} .. {ts.max()}, fee {job.settings.fee:g}, slippage {job.settings.slippage:g}")  # fmt: skip
    print_metrics(result)
    path = Path(report) if report else config.data_path / "reports" / f"{job.strategy.key}-{job.market.symbol.replace('/', '_')}-{job.market.timeframe}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    result.report(path, title=f"{job.strategy!r} · {job.market.key}")
    click.echo(f"tear sheet: {path.resolve()}")
    if not no_mlflow:
        run_id = log_run(config, job, result)
        click.echo(f"mlflow run: {run_id} (experiment {EXPERIMENT!r}, store {config.data_path / 'mlflow.db'}; "
                   f"`quantdag reproduce {run_id}` reruns it)")  # fmt: skip
    sys.stdout.flush()
