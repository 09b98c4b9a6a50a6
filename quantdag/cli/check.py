"""``quantdag check``: the look-ahead check and the warm-up (recursive) check of one strategy.

Look-ahead (:mod:`quantdag.strategies.lookahead`): past signals must not change when later candles
change or are cut off. Warm-up (:mod:`quantdag.strategies.warmup`): signals beyond the declared
``startup_candles`` must not change when the history starts later. Exit 1 naming the column and
candle when either fails.
"""

from __future__ import annotations

import click

from quantdag.cli.common import CheckFailed, existing_file, load_project, parse_day, parse_params, reports_errors


@click.command()
@click.argument("strategy")
@click.option("--market", "market_key", metavar="SYMBOL:TF", help="candles of this market (default: the first research market, or from a --candles file name)")
@click.option("--candles", "candle_file", metavar="FILE.parquet", help="check on this file's candles instead of the warehouse")
@click.option("--from", "start", metavar="YYYY-MM-DD", help="first day of the candles checked")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="last day of the candles checked (inclusive)")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="a strategy parameter (repeatable)")
@click.option("--max-candles", default=2000, show_default=True, help="check on the last N candles (the checks are O(n) recomputations)")
@click.option("--prefixes", default="50", show_default=True, help="prefix cut points of the look-ahead check, or 'all'")
@click.option("--perturbations", default=5, show_default=True, help="perturbed futures of the look-ahead check")
@click.option("--seed", default=0, show_default=True, help="seed of the perturbations")
@reports_errors
def check(strategy: str, market_key: str | None, candle_file: str | None, start: str | None, end: str | None,
          params: tuple[str, ...], max_candles: int, prefixes: str, perturbations: int, seed: int) -> None:  # fmt: skip
    """Check STRATEGY for look-ahead and for signals that depend on where the history starts.

    STRATEGY is a registered name, path/to/file.py:ClassName or package.module:ClassName.
    Exit 0 when both checks pass, 1 naming the first differing column and candle otherwise.
    """
    from quantdag.cli.common import InputError
    from quantdag.strategies.lookahead import check_lookahead
    from quantdag.strategies.warmup import check_warmup

    if prefixes != "all" and not (prefixes.isdigit() and int(prefixes) >= 1):
        raise InputError(f"--prefixes {prefixes!r}: expected a positive integer or 'all'")
    from quantdag.cli.backtest import prepare

    config = load_project()
    if market_key is None and candle_file is None:
        market_key = config.research_markets[0].key
    job = prepare(config, strategy, parse_params(params), market_key, existing_file(candle_file, "--candles") if candle_file else None,
                  parse_day(start, "--from"), parse_day(end, "--to"))  # fmt: skip
    s, candles = job.strategy, job.candles.tail(max_candles)
    look = check_lookahead(s, candles, prefixes=prefixes if prefixes == "all" else int(prefixes),
                           perturbations=perturbations, seed=seed)  # fmt: skip
    click.echo(look.summary())
    warm = check_warmup(s, candles)
    click.echo(warm.summary())
    failed = [name for name, ok in (("look-ahead", look.ok), ("warm-up", warm.ok)) if not ok]
    if failed:
        raise CheckFailed(f"{s.name} failed the {' and '.join(failed)} check(s)")
