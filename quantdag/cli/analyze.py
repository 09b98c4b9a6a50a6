"""``quantdag analyze``: the market data analyzer (coverage, gaps, zero volume, jumps, fat tails,
volatility regimes, correlations, events) as a self-contained HTML report with inline SVG charts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
import polars as pl

from quantdag.cli.common import existing_file, load_project, parse_day, reports_errors, utc_start

if TYPE_CHECKING:
    from datetime import date

    from quantdag.config import ProjectConfig
    from quantdag.markets import Market


def _stored(config: ProjectConfig, market: Market, start: date, end: date) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Candles (with ``filled``), gaps and stored events of ``market`` on the days asked."""
    from datetime import timedelta

    from quantdag.cli.common import open_warehouse
    from quantdag.store import Slice

    wh = open_warehouse(config)
    lo, hi = utc_start(start), utc_start(end + timedelta(days=1))
    candles = wh.read("market.candles", [Slice(where=market.where, start=lo, end=hi)], order_by=("ts",))
    gaps = wh.read("market.gaps", [Slice(where=market.where, time_column="gap_start", start=lo, end=hi)])
    events = wh.read("market.events", [Slice(where=market.where, time_column="ts_start", start=lo, end=hi)])
    return candles, gaps, events


def _from_warehouse(config: ProjectConfig, market: Market, start: date | None, end: date | None, others: bool):
    from datetime import datetime, timezone

    from quantdag.cli.candles import ensure_stored
    from quantdag.cli.common import InputError

    today = datetime.now(timezone.utc).date()
    start, end = start or config.universe.start(today), end or today
    peers = [m for m in config.markets if m.timeframe == market.timeframe and m != market] if others else []
    for m in [market, *peers]:
        ensure_stored(config, m, start, end)
    candles, gaps, events = _stored(config, market, start, end)
    if candles.height < 3:
        raise InputError(f"{market.key}: {candles.height} stored candle(s) from {start} to {end}; widen --from/--to")
    other = {m.key: _stored(config, m, start, end)[0] for m in peers}
    source = f"warehouse {config.data_path / 'quantdag.duckdb'}, {config.venue}, {start} .. {end}"
    return candles, gaps, events, {k: v for k, v in other.items() if v.height}, source, events.height > 0


def _as_candles(frame: pl.DataFrame, exchange: str, market: Market) -> pl.DataFrame:
    from quantdag.data import CANDLES_SCHEMA

    return frame.with_columns(exchange=pl.lit(exchange), symbol=pl.lit(market.symbol), timeframe=pl.lit(market.timeframe),
                              filled=pl.lit(False)).select(list(CANDLES_SCHEMA)).cast(dict(CANDLES_SCHEMA))  # fmt: skip


def _from_file(path: Path, market: Market, start: date | None, end: date | None, others: bool):
    from quantdag.cli.candles import from_parquet, market_of_file
    from quantdag.data import find_holes

    exchange = path.parent.name
    candles = _as_candles(from_parquet(path, start, end), exchange, market)
    gaps = find_holes(candles)
    other = {}
    if others:  # the other files of the same folder and timeframe (e.g. BTC_USD-1h beside BTC_USDT-1h)
        for f in sorted(path.parent.glob(f"*-{market.timeframe}.parquet")):
            key = market_of_file(f)
            if f.resolve() != path.resolve() and key is not None:
                try:
                    other[key] = from_parquet(f, start, end)
                except Exception:  # noqa: BLE001 - a neighbour that cannot be read is left out, not fatal
                    continue
    return candles, gaps, None, other, f"file {path}", False


@click.command()
@click.argument("market_key", metavar="SYMBOL:TF")
@click.option("--candles", "candle_file", metavar="FILE.parquet", help="analyze this file (other files of its folder and timeframe are the correlation peers)")
@click.option("--from", "start", metavar="YYYY-MM-DD", help="first day (UTC); default the universe's start_date")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="last day, inclusive (UTC); default today")
@click.option("--out", "out", metavar="REPORT.html", help="report path (default <data_dir>/reports/analyze-<market>.html)")
@click.option("--no-others", is_flag=True, help="skip the correlation with the other markets (no download of theirs)")
@reports_errors
def analyze(market_key: str, candle_file: str | None, start: str | None, end: str | None, out: str | None, no_others: bool) -> None:
    """Analyze a market's candles and write an HTML report.

    Coverage, gaps and filled candles, zero-volume runs, price jumps, the return distribution and
    its fat tails (kurtosis, tail quantiles against a normal), volatility regimes, correlation with
    the other markets of the same timeframe, and market events on a timeline: the stored
    market.events of the pipeline, else the same detectors run on these candles. Candles come from
    the warehouse (missing days downloaded, the simulator offline) or --candles FILE.parquet.
    """
    from quantdag.cli.common import resolve_market
    from quantdag.data import detect_events
    from quantdag.data.analysis import analyze as analyze_market
    from quantdag.data.analysis_report import write_report

    config = load_project(register=False)
    market = resolve_market(config, market_key)
    d0, d1 = parse_day(start, "--from"), parse_day(end, "--to")
    if candle_file:
        loaded = _from_file(existing_file(candle_file, "--candles"), market, d0, d1, not no_others)
    else:
        loaded = _from_warehouse(config, market, d0, d1, not no_others)
    candles, gaps, events, others, source, stored_events = loaded
    if not stored_events:
        events = detect_events(candles, gaps=gaps, config=config.event_config())
    a = analyze_market(candles, market.key, market.timeframe, gaps=gaps, events=events, others=others)
    path = Path(out) if out else config.data_path / "reports" / f"analyze-{market.symbol.replace('/', '_')}-{market.timeframe}.html"
    write_report(a, path, source)
    c, r = a.coverage, a.returns
    click.echo(f"{market.key}: {c['present']} candles {c['first']} .. {c['last']}, {c['missing']} missing, {c['filled']} filled "
               f"(coverage {c['coverage']:.2%}); {a.gaps.height} gap(s), {a.zero_volume_runs.height} zero-volume run(s), "
               f"{a.jumps.height} jump(s) beyond 5 sd")  # fmt: skip
    if "std" in r:
        click.echo(f"returns: annual vol {r['annual_vol']:.2%}, skew {r['skew']:.3f}, excess kurtosis {r['excess_kurtosis']:.2f}, "
                   f"beyond 3 sd {r['beyond_3sd']:.2%} (normal 0.27%)")  # fmt: skip
    click.echo(f"events: {a.events.height} ({'stored' if stored_events else 'detected now'}); "
               f"correlations: {', '.join(f'{m} {v:.2f}' for m, v, _ in a.correlations.iter_rows() if v is not None) or 'none'}")
    click.echo(f"report: {path.resolve()}")
