"""Blocking checks of the research stages (``signals``, ``backtests``), computed from the warehouse.

Each function reads what its stage just stored and returns one :class:`CheckVerdict` per check
name; the assets turn them into Dagster asset-check results. The counts come from SQL over the
stored tables (``sql/check_signals.sql``, ``sql/check_backtest_runs.sql``), independently of the
Python that wrote them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from quantdag.backtest import BacktestSettings
from quantdag.markets import Market
from quantdag.stages.signals import resolve_param_set
from quantdag.store import Warehouse, load_sql
from quantdag.timeframes import timeframe_ms

#: Checks of the ``signals`` asset besides ``no_lookahead``: name -> description.
SIGNAL_CHECKS = {
    "signals_match_candles": "every stored candle of every research market has exactly one signal row, every signal row a candle",
}

#: Checks of the ``backtests`` asset: name -> description.
BACKTEST_CHECKS = {
    "no_unaccepted_holes": "no backtested series has a hole (missing candles between stored ones) unless holes are accepted",
    "signals_match_candles": "the signals backtested line up one to one with the stored candles of every research market",
    "costs_on": "every stored run charges a fee and slippage, unless the configuration turns costs off",
}


@dataclass(frozen=True)
class CheckVerdict:
    """One check's outcome and the counts behind it (plain values, for asset-check metadata)."""

    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)


def _signal_counts(wh: Warehouse, key: str, markets: Sequence[Market]) -> dict[str, int]:
    s = resolve_param_set(wh, key)
    sql = load_sql("check_signals")
    totals = {"candles": 0, "signal_rows": 0, "candles_without_one_signal": 0, "signals_without_candle": 0}
    for m in markets:
        row = wh.query(sql, [s.name, s.params_hash, m.exchange, m.symbol, m.timeframe]).row(0, named=True)
        for k in totals:
            totals[k] += int(row[k] or 0)
    return totals


def _signals_verdict(counts: dict[str, int]) -> CheckVerdict:
    bad = counts["candles_without_one_signal"] + counts["signals_without_candle"]
    return CheckVerdict(bad == 0, {**counts, "violations": bad})


def check_signals(wh: Warehouse, key: str, markets: Sequence[Market], *, signals_withheld: bool = False) -> dict[str, CheckVerdict]:
    """:data:`SIGNAL_CHECKS` of parameter set ``key`` on ``markets``.

    ``signals_withheld``: the look-ahead check failed, so the stage stored no signals on purpose;
    ``signals_match_candles`` is then not applicable and passes with ``checked: False`` (the
    blocking ``no_lookahead`` check is the one that fails).
    """
    if signals_withheld:
        return {"signals_match_candles": CheckVerdict(True, {"checked": False, "reason": "look-ahead check failed"})}
    return {"signals_match_candles": _signals_verdict(_signal_counts(wh, key, markets))}


def costs_off(settings: BacktestSettings) -> bool:
    """Whether ``settings`` charge no fee or no slippage (only a configuration can ask for that)."""
    slips = settings.slippage > 0 or (settings.slippage_model == "volatility" and settings.slippage_vol_factor > 0)
    return not (settings.fee > 0 and slips)


def check_backtests(
    wh: Warehouse,
    key: str,
    markets: Sequence[Market],
    *,
    settings: BacktestSettings | None = None,
    accept_holes: bool = False,
) -> dict[str, CheckVerdict]:
    """:data:`BACKTEST_CHECKS` of parameter set ``key``'s stored runs on ``markets``.

    ``settings`` are the configured backtest settings (costs may be off only if they say so);
    ``accept_holes`` whether holes were accepted.
    """
    s = resolve_param_set(wh, key)
    settings = settings or BacktestSettings()
    sql = load_sql("check_backtest_runs")
    totals = {"runs": 0, "holes": 0, "hole_candles": 0, "zero_cost_runs": 0}
    for m in markets:
        row = wh.query(sql, [s.name, s.params_hash, m.exchange, m.symbol, m.timeframe, timeframe_ms(m.timeframe)]).row(0, named=True)
        for k in totals:
            totals[k] += int(row[k] or 0)
    off = costs_off(settings)
    return {
        "no_unaccepted_holes": CheckVerdict(
            totals["holes"] == 0 or accept_holes,
            {"holes": totals["holes"], "hole_candles": totals["hole_candles"], "accept_holes": accept_holes},
        ),
        "signals_match_candles": _signals_verdict(_signal_counts(wh, key, markets)),
        "costs_on": CheckVerdict(
            totals["zero_cost_runs"] == 0 or off,
            {"runs": totals["runs"], "zero_cost_runs": totals["zero_cost_runs"], "fee": settings.fee,
             "slippage": settings.slippage, "costs_off_by_configuration": off},
        ),
    }
