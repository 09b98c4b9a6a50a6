"""``quantdag profile``: where a backtest's time and memory go.

Times each stage of one backtest (load, indicators, signals, kernel, metrics), the numba
compilation apart from the run (the kernel runs twice: the first call includes compiling or
loading numba's cache, the second is the run alone), peak memory, and a pyinstrument call-stack
profile of the whole thing as HTML (the profile that showed freqtrade a backtest that was all
``deepcopy``).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import click

from quantdag.cli.common import existing_file, load_project, parse_day, parse_params, reports_errors


def _peak_rss_mib() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@click.command()
@click.argument("strategy")
@click.option("--market", "market_key", metavar="SYMBOL:TF", help="e.g. BTC/USDT:1h (default: from a --candles file name)")
@click.option("--candles", "candle_file", metavar="FILE.parquet", help="profile on this file's candles instead of the warehouse")
@click.option("--from", "start", metavar="YYYY-MM-DD", help="first day (UTC)")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="last day, inclusive (UTC)")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="a strategy parameter (repeatable)")
@click.option("--out", "out", metavar="PROFILE.html", help="call-stack profile path (default <data_dir>/reports/profile-<strategy>-<market>.html)")
@reports_errors
def profile(strategy: str, market_key: str | None, candle_file: str | None, start: str | None, end: str | None,
            params: tuple[str, ...], out: str | None) -> None:  # fmt: skip
    """Profile a backtest of STRATEGY: time per stage, numba compilation apart, peak memory, call stacks.

    Prints seconds per stage (load, indicators, signals, kernel compile and run, metrics), the
    process's peak resident memory (and how much of it came after start-up), and writes a
    pyinstrument HTML profile of the whole backtest.
    """
    from pyinstrument import Profiler

    from quantdag.cli.backtest import prepare
    from quantdag.stages.backtests import backtest_signals

    config = load_project()
    rss_before = _peak_rss_mib()
    profiler = Profiler()
    profiler.start()
    t: dict[str, float] = {}
    job = prepare(config, strategy, parse_params(params), market_key, existing_file(candle_file, "--candles") if candle_file else None,
                  parse_day(start, "--from"), parse_day(end, "--to"))  # fmt: skip
    t["load candles"] = job.timings["load"]
    s, candles = job.strategy, job.candles
    t0 = time.perf_counter()
    frame = s.compute_indicators(candles)
    t1 = time.perf_counter()
    s.compute_signals(frame)
    t2 = time.perf_counter()
    sig = s.signals(candles)  # the guarded call the backtest uses: both steps again plus the input/output checks
    t3 = time.perf_counter()
    first = backtest_signals(candles, sig, job.settings)
    t4 = time.perf_counter()
    result = backtest_signals(candles, sig, job.settings)
    t5 = time.perf_counter()
    metrics = result.metrics
    t6 = time.perf_counter()
    profiler.stop()
    assert first.metrics["final_equity"] == metrics["final_equity"]  # the two kernel runs are the same backtest
    t.update({"indicators (compute_indicators)": t1 - t0, "signals (compute_signals)": t2 - t1,
              "signals() guarded, both steps + checks": t3 - t2, "kernel first call (compile or cache load + run)": t4 - t3,
              "kernel run": t5 - t4, "numba compilation (first - run)": max((t4 - t3) - (t5 - t4), 0.0),
              "metrics": t6 - t5})  # fmt: skip
    click.echo(f"{s!r} on {job.market.key}: {candles.height} candles, {metrics['n_trades']} trades")
    for name, secs in t.items():
        click.echo(f"  {name:<50} {secs * 1000:10.1f} ms")
    peak = _peak_rss_mib()
    click.echo(f"  {'peak resident memory of the process':<50} {peak:10.1f} MiB")
    click.echo(f"  {'... of which after start-up (imports, config)':<50} {peak - rss_before:10.1f} MiB")
    path = Path(out) if out else config.data_path / "reports" / f"profile-{s.name}-{job.market.symbol.replace('/', '_')}-{job.market.timeframe}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    profiler.write_html(path)
    click.echo(f"call-stack profile: {path.resolve()}")
