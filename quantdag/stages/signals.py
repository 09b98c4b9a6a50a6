"""Signals: a parameter set's entries, exits and targets on every research market's closed candles."""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import polars as pl

from quantdag.errors import ConfigurationError, DataError, StrategyError
from quantdag.markets import CANDLE_KEY, Market
from quantdag.stages.common import CheckVerdict, StageReport, batch_check_counts, read_candles, with_peers
from quantdag.store import Slice, Warehouse, load_sql
from quantdag.strategies.base import position_state
from quantdag.strategies import Strategy, check_lookahead
from quantdag.strategies.keys import default_param_sets, strategy_from_key

if TYPE_CHECKING:
    import duckdb

SIGNAL_TABLE_COLUMNS = ("entry", "exit", "short_entry", "short_exit", "target")
#: What ``check_signals.sql`` counts per parameter set and market.
SIGNAL_COUNTS = ("candles", "signal_rows", "candles_without_one_signal", "signals_without_candle")

#: The look-ahead check runs on this many of the first market's latest candles ...
LOOKAHEAD_CANDLES = 1000
#: ... with this many prefix cuts and perturbed futures (the CLI's check goes further).
LOOKAHEAD_PREFIXES, LOOKAHEAD_PERTURBATIONS = 20, 3


@dataclass(frozen=True)
class LookaheadVerdict:
    """The look-ahead check of a parameter set, as ``signals.lookahead`` stores it."""

    ok: bool
    market: str
    n_candles: int
    code_hash: str
    column: str | None = None
    candle_ts: datetime | None = None
    detail: str = ""
    cached: bool = False


@dataclass
class SignalsReport(StageReport):
    """A stage report plus the look-ahead verdict that gated the signals."""

    lookahead: LookaheadVerdict | None = None


def strategy_where(s: Strategy, m: Market) -> dict[str, str]:
    """Column filters of a parameter set's rows on market ``m`` (signals and backtest tables)."""
    return {"strategy": s.name, "params_hash": s.params_hash, **m.where}


def read_signals(wh: Warehouse, s: Strategy, m: Market) -> pl.DataFrame:
    """The stored signals of strategy ``s`` on market ``m``, oldest first."""
    return wh.read("signals.signals", [Slice(where=strategy_where(s, m), time_column=None)], order_by=("ts",))


def position_fractions(sig: pl.DataFrame, *, allow_short: bool = False) -> pl.Series:
    """A parameter set's position fraction at every stored signal candle: its ``target`` when it has
    one, else the entry/exit state (minus the short one with ``allow_short``); clipped to [0, 1]
    (spot, long only) or, with ``allow_short``, [-1, 1]. The paper accounts and the portfolio read it."""
    if sig["target"].null_count() < sig.height:
        frac = sig["target"].fill_null(0.0)
    else:
        frac = sig.select(position_state(pl.col("entry"), pl.col("exit")).cast(pl.Float64).alias("f"))["f"]
        if allow_short and "short_entry" in sig.columns and sig["short_entry"].null_count() < sig.height:
            frac = frac - sig.select(position_state(pl.col("short_entry"), pl.col("short_exit")).cast(pl.Float64).alias("f"))["f"]
    return frac.clip(-1.0 if allow_short else 0.0, 1.0)


def stored_param_sets(wh: Warehouse) -> dict[str, tuple[str, dict]]:
    """Parameter sets the warehouse knows: ``signals.param_sets``, then promoted sweeps' bests."""
    rows = wh.query(
        "SELECT best_param_set AS param_set, strategy, best_params AS params FROM optimize.sweeps "
        "UNION ALL BY NAME SELECT param_set, strategy, params FROM signals.param_sets"
    )
    return {r["param_set"]: (r["strategy"], json.loads(r["params"])) for r in rows.iter_rows(named=True)}


def resolve_param_set(wh: Warehouse, key: str, configured: Mapping[str, Strategy] | None = None) -> Strategy:
    """The strategy of parameter set ``key``: from the configuration, else as the warehouse stored it.

    Raises
    ------
    ConfigurationError
        If neither knows the key (and it is no strategy's defaults), or its parameters are invalid.
    """
    if configured and key in configured:
        return configured[key]
    return strategy_from_key(key, stored_param_sets(wh))


def unresolvable_param_sets(
    wh: Warehouse | None, keys: Sequence[str], configured: Mapping[str, Strategy] | None = None
) -> dict[str, str]:
    """Keys of ``keys`` that name no parameter set this code can build (neither configured, stored in
    ``wh`` nor a registered strategy's defaults, e.g. a strategy file since removed): key -> why."""
    stored = stored_param_sets(wh) if wh is not None else {}
    out: dict[str, str] = {}
    for key in keys:
        if configured and key in configured:
            continue
        try:
            strategy_from_key(key, stored)
        except (ConfigurationError, StrategyError) as exc:
            out[key] = str(exc)
    return out


def code_hash(strategy: Strategy) -> str:
    """SHA-256 of the source of the module(s) defining ``strategy``'s class and its bases.

    Editing a strategy file changes it, so the look-ahead check runs again on the new code.
    """
    h = hashlib.sha256()
    for cls in type(strategy).__mro__:
        if cls is Strategy or cls is object:
            continue
        module = sys.modules.get(cls.__module__)
        try:
            h.update(inspect.getsource(module) if module is not None else cls.__qualname__.encode())
        except (OSError, TypeError):  # no source (e.g. defined in a notebook): the class name only
            h.update(cls.__qualname__.encode())
    return h.hexdigest()


def lookahead_verdict(wh: Warehouse, key: str, strategy: Strategy, market: Market, candles: pl.DataFrame) -> LookaheadVerdict:
    """The stored verdict for this code, or a new check on the latest :data:`LOOKAHEAD_CANDLES` candles."""
    source = code_hash(strategy)
    prior = wh.query("SELECT * FROM signals.lookahead WHERE param_set = ? AND code_hash = ?", [key, source])
    if prior.height:
        r = prior.row(0, named=True)
        return LookaheadVerdict(
            r["ok"], r["market"], r["n_candles"], source, r["column_name"], r["candle_ts"], r["detail"] or "", True
        )
    sample = candles.tail(LOOKAHEAD_CANDLES)
    report = check_lookahead(strategy, sample, prefixes=LOOKAHEAD_PREFIXES, perturbations=LOOKAHEAD_PERTURBATIONS)
    first = report.first
    if first is None:
        return LookaheadVerdict(True, market.key, sample.height, source)
    return LookaheadVerdict(False, market.key, sample.height, source, first.column, first.ts, report.summary())


def require_no_lookahead(wh: Warehouse, key: str) -> None:
    """Refuse to use parameter set ``key`` unless its look-ahead check passed.

    Raises
    ------
    DataError
        If the key has not been through the signals stage (no verdict yet).
    StrategyError
        If its strategy looks ahead: the message names the column and the candle.
    """
    v = wh.query("SELECT ok, column_name, candle_ts, market FROM signals.lookahead WHERE param_set = ?", [key])
    if v.height == 0:
        raise DataError(f"parameter set {key!r} has no look-ahead verdict: materialize its signals first")
    r = v.row(0, named=True)
    if not r["ok"]:
        raise StrategyError(
            f"parameter set {key!r} looks ahead: column {r['column_name']!r} changed at candle {r['candle_ts']} "
            f"of {r['market']} when later candles changed; it is never backtested or traded"
        )


def build_signals(
    wh: Warehouse,
    key: str,
    markets: Sequence[Market],
    *,
    configured: Mapping[str, Strategy] | None = None,
    candles: Mapping[Market, pl.DataFrame] | None = None,
) -> SignalsReport:
    """Signals of parameter set ``key`` on every market's full stored history, into ``signals.signals``.

    The key is resolved (:func:`resolve_param_set`) and recorded with its parameters in
    ``signals.param_sets``, which the later stages read it back from. The strategy's code is first
    checked for look-ahead on the first market with candles (once per version of its source); one
    that peeks gets no signals at all, and its verdict in ``signals.lookahead`` names the column
    and the candle. ``candles`` (market -> its stored candles) spares a batch re-reading them.
    """
    t0 = time.perf_counter()
    item = _compute_signals(wh, key, markets, configured, candles)
    with wh.transaction() as con:
        item.report.rows_written += _write_signals(con, [item], markets)
    item.report.seconds = time.perf_counter() - t0
    return item.report


@dataclass
class _Signals:
    """One parameter set's signals before they are written."""

    key: str
    strategy: Strategy
    source: str
    report: SignalsReport
    frames: list[pl.DataFrame]


def _compute_signals(
    wh: Warehouse,
    key: str,
    markets: Sequence[Market],
    configured: Mapping[str, Strategy] | None,
    candles: Mapping[Market, pl.DataFrame] | None,
) -> _Signals:
    strategy = resolve_param_set(wh, key, configured)
    if key in default_param_sets() or key == strategy.name:
        source = "default"
    elif configured and key in configured:
        source = "config"
    else:
        source = "stored"
    report = SignalsReport()
    frames: list[pl.DataFrame] = []
    for m in markets:
        bars = candles[m] if candles is not None and m in candles else read_candles(wh, m)
        if strategy.frame_peers and bars.height:  # e.g. a cross-market model's peers' closes
            bars = with_peers(wh, m, bars, strategy.frame_peers)
        if bars.height == 0:
            report.add(m, candles=0, entries=0, exits=0)
            continue
        if report.lookahead is None:
            report.lookahead = lookahead_verdict(wh, key, strategy, m, bars)
        if not report.lookahead.ok:
            report.add(m, candles=bars.height, entries=0, exits=0)
            continue
        sig = strategy.signals(bars)
        keep = ["ts", *(c for c in SIGNAL_TABLE_COLUMNS if c in sig.columns)]
        frame = sig.select(keep).with_columns(
            pl.lit(strategy.name).alias("strategy"),
            pl.lit(strategy.params_hash).alias("params_hash"),
            *(pl.lit(v).alias(k) for k, v in m.where.items()),
        )
        report.add(m, candles=bars.height, entries=int(frame["entry"].sum()), exits=int(frame["exit"].sum()))
        frames.append(frame)
    return _Signals(key, strategy, source, report, frames)


def _write_signals(con: duckdb.DuckDBPyConnection, items: Sequence[_Signals], markets: Sequence[Market]) -> int:
    """Replace every item's ``signals.param_sets`` row, new look-ahead verdict and signals on
    ``markets`` on ``con`` (inside a transaction): one statement per table for the whole batch."""
    by_key = [Slice(where={"param_set": it.key}, time_column=None) for it in items]
    params = pl.DataFrame(
        {"param_set": [it.key for it in items], "strategy": [it.strategy.name for it in items],
         "params_hash": [it.strategy.params_hash for it in items], "params": [it.strategy.params_json for it in items],
         "source": [it.source for it in items]}
    )  # fmt: skip
    Warehouse.replace(con, "signals.param_sets", params, by_key)
    fresh = [it for it in items if it.report.lookahead is not None and not it.report.lookahead.cached]
    if fresh:
        now = datetime.now(timezone.utc)
        verdicts = pl.DataFrame(
            [{
                "param_set": it.key, "strategy": it.strategy.name, "params_hash": it.strategy.params_hash,
                "code_hash": v.code_hash, "checked_at": now, "market": v.market, "n_candles": v.n_candles, "ok": v.ok,
                "column_name": v.column, "candle_ts": v.candle_ts, "detail": v.detail or None,
            } for it in fresh for v in [it.report.lookahead]],
            schema_overrides={"candle_ts": pl.Datetime("ms", "UTC"), "column_name": pl.Utf8, "detail": pl.Utf8},
        )  # fmt: skip
        Warehouse.replace(con, "signals.lookahead", verdicts, [Slice(where={"param_set": it.key}, time_column=None) for it in fresh])
    frames = [f for it in items for f in it.frames]
    frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    return Warehouse.replace(
        con,
        "signals.signals",
        frame,
        [Slice(where=strategy_where(it.strategy, m), time_column=None) for it in items for m in markets],
        order_by=("strategy", "params_hash", *CANDLE_KEY) if frame.height else (),
    )


@dataclass
class SignalsBatch:
    """Signals of several parameter sets (one Dagster run over many partitions): per-key reports
    and the checks over all of them."""

    reports: dict[str, SignalsReport]
    checks: dict[str, CheckVerdict]
    report: StageReport


def signal_param_sets(
    wh: Warehouse, keys: Sequence[str], markets: Sequence[Market], *, configured: Mapping[str, Strategy] | None = None
) -> SignalsBatch:
    """:func:`build_signals` of every key in ``keys``, written in one transaction, and their checks.

    One warehouse connection and one read of each market's candles serve the whole batch. A key
    whose strategy looks ahead gets no signals; the batch's ``no_lookahead`` verdict fails naming
    it (and every other one that peeks), while the other keys' signals are stored.
    """
    t0 = time.perf_counter()
    total = StageReport()
    with wh.session():
        candles = {m: read_candles(wh, m) for m in markets}
        items = [_compute_signals(wh, key, markets, configured, candles) for key in keys]
        with wh.transaction() as con:
            total.rows_written = _write_signals(con, items, markets)
        reports = {it.key: it.report for it in items}
        for it in items:
            total.merge(it.report)
        withheld = [k for k, r in reports.items() if r.lookahead is not None and not r.lookahead.ok]
        checked = signals_match_candles_batch(wh, [it.strategy for it in items if it.key not in withheld], markets)
        match = list(checked.values())
    counts = {n: sum(v.metadata[n] for v in match) for n in SIGNAL_COUNTS}
    checks = {
        "signals_match_candles": CheckVerdict(all(v.passed for v in match), {**counts, "param_sets": len(match),
                                              "withheld_for_lookahead": len(withheld)}),  # fmt: skip
        "no_lookahead": lookahead_check(reports),
    }
    total.seconds = time.perf_counter() - t0
    return SignalsBatch(reports, checks, total)


def lookahead_check(reports: Mapping[str, SignalsReport]) -> CheckVerdict:
    """The ``no_lookahead`` verdict of a batch: passes if no key's strategy looks ahead.

    A failure's metadata names the first offender's market, column, candle and the check's detail,
    and lists every offending key (``looking_ahead``: key -> "column at candle").
    """
    verdicts = {k: r.lookahead for k, r in reports.items() if r.lookahead is not None}
    if not verdicts:  # no candles yet: nothing was checked, nothing can be backtested
        return CheckVerdict(True, {"checked": False})
    bad = {k: v for k, v in verdicts.items() if not v.ok}
    first = next(iter(bad.values()), next(iter(verdicts.values())))
    meta: dict[str, object] = {"market": first.market, "candles_checked": first.n_candles, "param_sets": len(verdicts),
                               "reused_verdicts": sum(v.cached for v in verdicts.values())}  # fmt: skip
    if bad:
        meta.update({"column": first.column, "candle": str(first.candle_ts), "detail": first.detail,
                     "looking_ahead": {k: f"{v.column} at {v.candle_ts}" for k, v in bad.items()}})  # fmt: skip
    return CheckVerdict(not bad, meta)


def lookahead_failures(wh: Warehouse, keys: Sequence[str]) -> dict[str, str]:
    """Keys of ``keys`` whose latest look-ahead verdict failed: key -> "column 'x', candle T, market M"."""
    if not keys:
        return {}
    rows = wh.query(
        "SELECT param_set, column_name, candle_ts, market FROM signals.lookahead WHERE NOT ok AND param_set IN "
        f"({', '.join('?' * len(keys))})",
        list(keys),
    )
    return {r["param_set"]: f"column {r['column_name']!r}, candle {r['candle_ts']}, market {r['market']}"
            for r in rows.iter_rows(named=True)}  # fmt: skip


# ---- checks (computed from the stored tables by SQL, independently of the Python that wrote them) ----

#: Checks of the ``signals`` asset besides ``no_lookahead``: name -> description.
SIGNAL_CHECKS = {
    "signals_match_candles": "every stored candle of every research market has exactly one signal row, every signal row a candle",
}


def _signals_verdict(counts: dict[str, int]) -> CheckVerdict:
    bad = counts["candles_without_one_signal"] + counts["signals_without_candle"]
    return CheckVerdict(bad == 0, {**counts, "violations": bad})


def signals_match_candles_batch(
    wh: Warehouse, strategies: Sequence[Strategy], markets: Sequence[Market]
) -> dict[tuple[str, str], CheckVerdict]:
    """:func:`signals_match_candles` of many parameter sets at once, by (strategy, params_hash):
    one query per market for the batch (``check_signals.sql``), not one per set and market."""
    keys = [(s.name, s.params_hash) for s in strategies]
    totals = batch_check_counts(wh, load_sql("check_signals"), keys, markets, SIGNAL_COUNTS)
    return {k: _signals_verdict(v) for k, v in totals.items()}


def signals_match_candles(wh: Warehouse, strategy: Strategy, markets: Sequence[Market]) -> CheckVerdict:
    """Every stored candle of ``markets`` has exactly one signal row of ``strategy``, every row a candle."""
    return signals_match_candles_batch(wh, [strategy], markets)[(strategy.name, strategy.params_hash)]


def check_signals(wh: Warehouse, key: str, markets: Sequence[Market], *, signals_withheld: bool = False) -> dict[str, CheckVerdict]:
    """:data:`SIGNAL_CHECKS` of parameter set ``key`` on ``markets``.

    ``signals_withheld``: the look-ahead check failed, so the stage stored no signals on purpose;
    ``signals_match_candles`` is then not applicable and passes with ``checked: False`` (the
    blocking ``no_lookahead`` check is the one that fails).
    """
    if signals_withheld:
        return {"signals_match_candles": CheckVerdict(True, {"checked": False, "reason": "look-ahead check failed"})}
    return {"signals_match_candles": signals_match_candles(wh, resolve_param_set(wh, key), markets)}
