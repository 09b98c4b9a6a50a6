"""Command line for strategy authors: ``python -m quantdag.strategies <command>``.

Commands
--------
``list``
    Registered strategies with their parameters (default, valid range, search range, step).
``check-lookahead NAME --data candles.parquet [--params JSON]``
    Run :func:`~quantdag.strategies.lookahead.check_lookahead` on a parquet file of candles
    (``ts`` as datetime or epoch milliseconds, plus OHLCV). ``NAME`` is a registered name or
    ``package.module:ClassName`` for a strategy of your own (imported, no registration
    needed). Exits 0 when clean, 1 on look-ahead, 2 on bad input.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import polars as pl

from quantdag.errors import ConfigurationError, DataError, QuantdagError
from quantdag.strategies.base import Strategy, get_strategy, list_strategies
from quantdag.strategies.lookahead import check_lookahead

EXIT_OK, EXIT_LOOKAHEAD, EXIT_USAGE = 0, 1, 2


def resolve_strategy(name: str) -> type[Strategy]:
    """A registered strategy by name, a class of a strategy file as ``path/file.py:ClassName``, or
    an importable class as ``module.path:ClassName``."""
    if ":" not in name:
        return get_strategy(name)
    module_name, _, attr = name.rpartition(":")
    if module_name.endswith(".py"):
        from quantdag.strategies.loader import load_strategy_class

        return load_strategy_class(module_name, attr)
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load strategy {name!r}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise ConfigurationError(f"{name!r} is not a Strategy subclass")
    return obj


def load_candles(path: Path) -> pl.DataFrame:
    """Candles from parquet, ``ts`` turned into UTC datetime[ms] if stored as epoch milliseconds."""
    if not path.is_file():
        raise DataError(f"candle file {str(path)!r} does not exist")
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for unreadable files
        raise DataError(f"cannot read {str(path)!r} as parquet: {exc}") from exc
    if "ts" not in frame.columns:
        raise DataError(f"{str(path)!r} has no 'ts' column; columns: {frame.columns}")
    if frame["ts"].dtype.is_integer():
        frame = frame.with_columns(pl.from_epoch("ts", time_unit="ms").dt.replace_time_zone("UTC"))
    return frame


def _parse_params(text: str) -> dict[str, object]:
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"--params is not valid JSON ({exc}): {text!r}") from exc
    if not isinstance(params, dict):
        raise ConfigurationError(f"--params must be a JSON object, got {text!r}")
    return params


def _cmd_list(out: TextIO) -> int:
    for name in list_strategies():
        cls = get_strategy(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        out.write(f"{name}: {doc}\n")
        for pname, p in cls.param_defs().items():
            if p.kind in ("int", "float"):
                searched = f"search {list(p.search_bounds)} step {p.step}" if p.tunable else "not searched"
                rng = f" valid [{p.low:g}, {p.high:g}], {searched}"
            elif p.kind == "choice":
                rng = f" one of {list(p.choices)}"
            else:
                rng = ""
            out.write(f"  {pname} ({p.kind}, default {p.default!r}){rng}: {p.description}\n")
        for c in cls.constraints:
            out.write(f"  constraint: {c.expr}\n")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    strategy = resolve_strategy(args.name).from_params(_parse_params(args.params))
    candles = load_candles(Path(args.data))
    prefixes: int | str = args.prefixes if args.prefixes == "all" else int(args.prefixes)
    report = check_lookahead(
        strategy, candles, prefixes=prefixes, perturb=not args.no_perturb, perturbations=args.perturbations, seed=args.seed
    )
    out.write(report.summary() + "\n")
    return EXIT_OK if report.ok else EXIT_LOOKAHEAD


def _prefixes(text: str) -> str:
    if text != "all" and not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="python -m quantdag.strategies", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list registered strategies and their parameters")
    check = sub.add_parser("check-lookahead", help="fail (exit 1) if a strategy's past signals change with the future")
    check.add_argument("name", help="registered strategy name, or module.path:ClassName")
    check.add_argument("--data", required=True, help="parquet file with ts + OHLCV columns")
    check.add_argument("--params", default="{}", help='strategy parameters as a JSON object, e.g. \'{"fast":10,"slow":50}\'')
    check.add_argument("--prefixes", type=_prefixes, default="50", help="number of prefix cut points, or 'all'")
    check.add_argument("--perturbations", type=int, default=5, help="number of perturbed futures (default 5)")
    check.add_argument("--no-perturb", action="store_true", help="skip the perturbed-future check")
    check.add_argument("--seed", type=int, default=0, help="seed of the perturbations (default 0)")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list(out)
        return _cmd_check(args, out)
    except QuantdagError as exc:  # bad name, params or data: a readable message, no traceback
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
