"""``quantdag sweep``: the project's parameter sweep (quantdag.optimize) of one strategy on one market,
with the deflated Sharpe ratio, PBO, the heatmap and an MLflow run like the pipeline's sweeps."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from quantdag.cli.common import InputError, existing_file, load_project, parse_day, reports_errors

EXPERIMENT = "optimization"


def _number(text: str, what: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise InputError(f"--grid {what}: {text!r} is not a number") from None


def parse_grid(items: tuple[str, ...]) -> dict[str, Any]:
    """``k=a:b:step`` (a to b inclusive), ``k=v1,v2,...`` or ``k=v`` (fixed) -> the sweep's grid.

    Values are ints when every bound is an integer, else floats (exact decimal steps, so
    ``0.1:0.3:0.1`` gives 0.1, 0.2, 0.3).
    """
    import yaml

    grid: dict[str, Any] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec:
            raise InputError(f"--grid {item!r}: expected NAME=START:STOP:STEP, NAME=V1,V2 or NAME=VALUE")
        if spec.count(":") == 2:
            a, b, step = (_number(x, item) for x in spec.split(":"))
            if step <= 0 or b < a:
                raise InputError(f"--grid {item!r}: need START <= STOP and STEP > 0")
            values, v = [], a
            while v <= b:
                values.append(v)
                v += step
            integral = all(x == x.to_integral_value() for x in (a, b, step))
            grid[name.strip()] = [int(x) if integral else float(x) for x in values]
        elif "," in spec:
            grid[name.strip()] = [yaml.safe_load(x) for x in spec.split(",")]
        else:
            grid[name.strip()] = yaml.safe_load(spec)
    return grid


@click.command()
@click.argument("strategy")
@click.option("--market", "market_key", metavar="SYMBOL:TF", help="e.g. BTC/USDT:1h (default: from a --candles file name)")
@click.option("--grid", "grid_items", multiple=True, metavar="NAME=START:STOP:STEP",
              help="swept values (repeatable); NAME=V1,V2 lists them, NAME=V fixes one; default: the strategy's own search grid")
@click.option("--candles", "candle_file", metavar="FILE.parquet", help="sweep on this file's candles instead of the warehouse")
@click.option("--from", "start", metavar="YYYY-MM-DD", help="first day (UTC)")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="last day, inclusive (UTC)")
@click.option("--objective", default=None, help="metric to maximise (default: the configuration's optimization.objective)")
@click.option("--min-trades", type=int, default=None, help="fewer trades: not ranked (default: optimization.min_trades)")
@click.option("--heatmap", "heatmap", metavar="OUT.png", help="heatmap path (default <data_dir>/reports/sweep-<strategy>-<market>.png)")
@click.option("--top", default=5, show_default=True, help="best combinations printed and logged as nested MLflow runs")
@click.option("--no-mlflow", is_flag=True, help="do not log an MLflow run")
@reports_errors
def sweep(strategy: str, market_key: str | None, grid_items: tuple[str, ...], candle_file: str | None, start: str | None,
          end: str | None, objective: str | None, min_trades: int | None, heatmap: str | None, top: int, no_mlflow: bool) -> None:  # fmt: skip
    """Sweep STRATEGY's parameters on one market; print the best, DSR and PBO; draw the heatmap.

    Runs the project's sweep (one numba pass per grid for the crossover strategies, the engine
    for the others) with the configuration's backtest costs, then the deflated Sharpe ratio (every
    combination is a trial) and the probability of backtest overfitting (CSCV). Exit 1 if no
    combination trades --min-trades times.
    """
    import mlflow

    from quantdag.cli.backtest import prepare
    from quantdag.cli.common import CheckFailed
    from quantdag.optimize import optimize_strategy, rank_results
    from quantdag.optimize.search import NoEligibleCombination
    from quantdag.stages.optimization import SweepOutcome
    from quantdag.strategies.cli import resolve_strategy
    from quantdag.strategies.keys import param_set_key

    config = load_project()
    grid = parse_grid(grid_items) or None
    cls = resolve_strategy(strategy)
    job = prepare(config, strategy, {}, market_key, existing_file(candle_file, "--candles") if candle_file else None,
                  parse_day(start, "--from"), parse_day(end, "--to"))  # fmt: skip
    opt = config.optimization
    objective = objective or opt.objective
    min_trades = opt.min_trades if min_trades is None else min_trades
    click.echo(f"sweeping {cls.name} on {job.market.key}: {job.candles.height} candles, objective {objective}, min_trades {min_trades}")
    try:
        result = optimize_strategy(job.candles, cls, search="grid", grid=grid, objective=objective, min_trades=min_trades,
                                   settings=job.settings, fit_history=True)  # fmt: skip
    except NoEligibleCombination as exc:
        raise CheckFailed(f"no combination qualifies: {exc}") from None
    s = result.summary()
    click.echo(f"evaluated {s['n_evaluated']} combinations; best {s['best_params']}")
    best = s["best_metrics"]
    click.echo("  " + "  ".join(f"{k} {best[k]:.4g}" for k in dict.fromkeys((objective, "sharpe", "total_return", "max_drawdown"))
                                if isinstance(best.get(k), float)) + f"  n_trades {best.get('n_trades')}")  # fmt: skip
    if result.dsr is not None:
        click.echo(f"deflated Sharpe ratio {result.dsr.dsr:.4f} (probability the best is not luck, {result.dsr.n_trials} trials)")
    if result.pbo is not None:
        click.echo(f"probability of backtest overfitting {result.pbo.pbo:.4f} (CSCV over {result.pbo.n_trials} combinations)")
    ranked = rank_results(result.results, objective, min_trades).head(top)
    click.echo(f"top {ranked.height}:")
    for row in ranked.iter_rows(named=True):
        params = " ".join(f"{n}={row[n]}" for n in result.param_names if result.results[n].n_unique() > 1)
        click.echo(f"  {params:<30} {objective} {row[objective]:.4g}  trades {row['n_trades']}")
    varied = [n for n in result.param_names if result.results[n].n_unique() > 1]
    if len(varied) >= 2:
        path = Path(heatmap) if heatmap else config.data_path / "reports" / f"sweep-{cls.name}-{job.market.symbol.replace('/', '_')}-{job.market.timeframe}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        result.heatmap_png(path)
        click.echo(f"heatmap: {path.resolve()}")
    else:
        click.echo(f"no heatmap: it needs two varied parameters (varied: {varied})")
    if not no_mlflow:
        from quantdag.tracking import log_sweep
        from quantdag.tracking.store import open_experiment

        outcome = SweepOutcome(job.market, result, param_set_key(cls.from_params(s["best_params"])),
                               job.candles["ts"].min(), job.candles["ts"].max())  # fmt: skip
        exp = open_experiment(config.data_path, EXPERIMENT)
        with mlflow.start_run(experiment_id=exp, run_name=f"sweep {cls.name} · {job.market.key} (cli)",
                              tags={"source": "cli", "strategy": cls.name, "market": job.market.key}) as run:  # fmt: skip
            log_sweep(outcome, top_k=top)
        click.echo(f"mlflow run: {run.info.run_id} (experiment {EXPERIMENT!r})")
