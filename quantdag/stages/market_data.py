"""Market data: download what is missing into ``raw.candles``, clean it into ``market.candles``.

Each stage reads its inputs for a set of windows, computes everything first, then replaces its
output slices in ONE transaction, so a failure anywhere writes nothing and a re-run gives the
same tables.

Holes (runs of missing candles between stored candles, e.g. the weeks between a stray old day
and the rest) are gaps too, recorded in ``market.gaps`` with ``filled = false``. A window owns
the gap rows that cleaning finds inside it; a hole's row is owned by the market's whole stored
series: each ``normalize_candles`` run recomputes every hole of each market it writes, from the
series as it stands after the write, and replaces the market's unfilled rows after its first
stored candle with them in the same transaction. So the rows depend on the stored candles
alone: re-running any partition gives the same tables, whatever order days were materialised
in, and backfilling the missing days removes the hole's row. A window's leading missing candles
are filled at the previous close only if the previous stored candle is the one right before the
window; after a hole they belong to the hole. See :mod:`quantdag.data.holes` for the reasons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import polars as pl

from quantdag.data import CANDLES_SCHEMA, GAPS_SCHEMA, clean_candles, find_holes, resample
from quantdag.data.schema import CandleSchema
from quantdag.errors import DataError
from quantdag.exchange import ExchangeClient, empty_raw_frame
from quantdag.markets import CANDLE_KEY, Market, Window
from quantdag.stages.common import StageReport, market_slice, ms
from quantdag.store import Slice, Warehouse, load_sql
from quantdag.timeframes import timeframe_ms

log = logging.getLogger(__name__)


def _raw_slice(m: Market, w: Window, timeframe: str | None = None) -> Slice:
    where = {**m.where, "timeframe": timeframe or m.timeframe}
    return Slice(where=where, start=w[0], end=w[1], epoch_ms=True)


#: Times an interior gap in a fetched window is asked for again (across runs) before it is accepted.
MAX_REFETCHES = 3


def _missing_runs(ts: Sequence[int], start: int, end: int, tf: int) -> list[tuple[int, int]]:
    """Runs ``(first, last)`` of grid open times in ``[start, end)`` absent from ``ts``."""
    have = set(ts)
    runs: list[tuple[int, int]] = []
    for t in range(start, end, tf):
        if t in have:
            continue
        if runs and runs[-1][1] == t - tf:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs


def _dt(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)


def ingest_raw(
    wh: Warehouse,
    client: ExchangeClient,
    windows: Mapping[Market, Sequence[Window]],
    *,
    now_ms: int | None = None,
    max_refetches: int = MAX_REFETCHES,
) -> StageReport:
    """Download what is missing from ``raw.candles`` for each market window, incrementally.

    Per window, the download starts after the last *closed* candle already stored, so a
    complete day is never fetched twice and re-running it rewrites identical rows. Markets that
    are resampled from a finer timeframe are not downloaded here.

    Candles the exchange left out *inside* what is stored (a transient omission in a page) are
    asked for again, up to ``max_refetches`` times across runs, before normalization may fill
    them as gaps: ``raw.refetches`` counts the attempts per gap; a healed gap's row goes away.
    So does the tail of a closed window that the exchange left empty (its resume download is the
    attempt): after ``max_refetches`` it is accepted and no longer downloaded on every run.
    """
    t0 = time.perf_counter()
    report = StageReport()
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    writes: list[tuple[pl.DataFrame, Slice, pl.DataFrame, Slice]] = []
    for m, wins in windows.items():
        if m.resample_from is not None:
            report.add(m, fetched=0, resampled=1)
            continue
        tf = timeframe_ms(m.timeframe)
        for w in wins:
            s = _raw_slice(m, w)
            existing = wh.read("raw.candles", [s])
            closed = existing.filter(
                pl.col("ts") + tf <= pl.col("fetched_at").dt.epoch("ms")
            )
            since = int(closed["ts"].max()) + tf if closed.height else ms(w[0])
            end = min(ms(w[1]), now)
            gaps_slice = Slice(where=m.where, time_column="gap_start", start=w[0], end=w[1])
            tried = {int(r["gap_start"].timestamp() * 1000): r["attempts"] for r in wh.read("raw.refetches", [gaps_slice]).iter_rows(named=True)}
            # a closed window's tail the exchange keeps answering empty counts as a gap like any other:
            # asked for at most max_refetches times, then accepted (not fetched again on every run)
            window_closed = ms(w[1]) <= now
            tail_tries = tried.get(since, 0) if window_closed else 0
            fetched = empty_raw_frame()
            if since < end and tail_tries < max_refetches:
                fetched = client.fetch_candles(m.symbol, m.timeframe, since, ms(w[1]))
                tail_tries += 1
            frame = pl.concat([existing.select(fetched.columns), fetched])
            have = frame.filter(pl.col("ts") + tf <= pl.col("fetched_at").dt.epoch("ms"))["ts"].to_list()
            refetched, records = [], []
            tail_start = max(have) + tf if have else ms(w[0])
            if window_closed and tail_start < ms(w[1]):
                records.append({**m.where, "gap_start": _dt(tail_start), "gap_end": _dt(ms(w[1]) - tf),
                                "missing": (ms(w[1]) - tail_start) // tf, "attempts": max(tail_tries, 1),
                                "last_attempt_at": _dt(now)})  # fmt: skip
            for first, final in _missing_runs(have, min(have), max(have), tf) if have else []:  # interior gaps only
                attempts = tried.get(first, 0)
                got = empty_raw_frame()
                if attempts < max_refetches:
                    got = client.fetch_candles(m.symbol, m.timeframe, first, final + tf)
                    refetched.append(got)
                    attempts += 1
                still = _missing_runs(got["ts"].to_list(), first, final + tf, tf)
                for a, b in still:  # what the exchange still does not have, with the attempts spent on it
                    records.append({**m.where, "gap_start": _dt(a), "gap_end": _dt(b), "missing": (b - a) // tf + 1,
                                    "attempts": attempts if attempts else max_refetches, "last_attempt_at": _dt(now)})
            if refetched:
                frame = pl.concat([frame, *refetched])
            healed = sum(g.height for g in refetched)
            report.add(m, fetched=fetched.height, kept=existing.height, refetched=healed,
                       refetch_pending=sum(1 for r in records if r["attempts"] < max_refetches))
            refetch_rows = pl.DataFrame(records, schema=REFETCH_SCHEMA) if records else pl.DataFrame(schema=REFETCH_SCHEMA)
            writes.append((frame, s, refetch_rows, gaps_slice))
    with wh.transaction() as con:
        for frame, s, refetch_rows, gaps_slice in writes:
            report.rows_written += Warehouse.replace(
                con, "raw.candles", frame, [s], order_by=(*CANDLE_KEY, "fetched_at")
            )
            Warehouse.replace(con, "raw.refetches", refetch_rows, [gaps_slice], order_by=("gap_start",))
    report.seconds = time.perf_counter() - t0
    return report


REFETCH_SCHEMA = {
    "exchange": pl.Utf8, "symbol": pl.Utf8, "timeframe": pl.Utf8, "gap_start": pl.Datetime("ms", "UTC"),
    "gap_end": pl.Datetime("ms", "UTC"), "missing": pl.Int64, "attempts": pl.Int32, "last_attempt_at": pl.Datetime("ms", "UTC"),
}  # fmt: skip


def uncovered_days(wh: Warehouse, markets: Sequence[Market], days: Sequence[str]) -> list[str]:
    """Days of ``days`` (UTC ``YYYY-MM-DD``) on which some market of ``markets`` has no stored candle.

    A day partition covers every configured market, so a market added to the configuration finds
    its history missing here, not in the partitions' status.
    """
    if not days or not markets:
        return []
    start, end = min(days), max(days)
    rows = wh.query(
        "SELECT DISTINCT exchange, symbol, timeframe, strftime(ts, '%Y-%m-%d') AS day FROM market.candles "
        "WHERE ts >= CAST(? AS DATE) AND ts < CAST(? AS DATE) + INTERVAL 1 DAY",
        [start, end],
    )
    have = {(r["exchange"], r["symbol"], r["timeframe"], r["day"]) for r in rows.iter_rows(named=True)}
    return sorted({d for d in days for m in markets if (m.exchange, m.symbol, m.timeframe, d) not in have})


def pending_refetch_days(wh: Warehouse, markets: Sequence[Market], *, max_refetches: int = MAX_REFETCHES) -> dict[Market, list[str]]:
    """Per market, the UTC days holding gaps still to be asked for again (the runs that heal them)."""
    rows = wh.query(
        "SELECT DISTINCT exchange, symbol, timeframe, strftime(gap_start, '%Y-%m-%d') AS day FROM raw.refetches "
        "WHERE attempts < ? ORDER BY day",
        [max_refetches],
    )
    out: dict[Market, list[str]] = {}
    by_where = {(m.exchange, m.symbol, m.timeframe): m for m in markets}
    for r in rows.iter_rows(named=True):
        m = by_where.get((r["exchange"], r["symbol"], r["timeframe"]))
        if m is not None:
            out.setdefault(m, []).append(r["day"])
    return out


def _prev_close(wh: Warehouse, m: Market, before: datetime) -> float | None:
    """Close of the stored candle right before the window's first grid slot, None if there is none.

    An earlier candle across a hole does not count: its close says nothing about the price after
    the hole, so the window's leading missing candles then stay unfilled, part of the hole.
    """
    df = wh.query(
        "SELECT ts, close FROM market.candles WHERE exchange = ? AND symbol = ? AND timeframe = ? AND ts < ? "
        "ORDER BY ts DESC LIMIT 1",
        [m.exchange, m.symbol, m.timeframe, before],
    )
    if not df.height:
        return None
    tf = timeframe_ms(m.timeframe)
    first_slot = -(-ms(before) // tf) * tf
    return float(df["close"][0]) if ms(df["ts"][0]) + tf >= first_slot else None


GAP_KEY = ("exchange", "symbol", "timeframe", "gap_start")


def _series_holes(
    wh: Warehouse, m: Market, wins: Sequence[Window], new: Sequence[pl.DataFrame]
) -> tuple[pl.DataFrame, datetime | None]:
    """Holes of market ``m``'s series once ``new`` replaces its candles in ``wins``, and its first candle.

    The series is the stored candles outside ``wins`` plus ``new``; only open times are read.
    """
    stored = wh.query(
        "SELECT exchange, symbol, timeframe, ts FROM market.candles WHERE exchange = ? AND symbol = ? AND timeframe = ?",
        [m.exchange, m.symbol, m.timeframe],
    )
    inside = pl.lit(False)
    for w in wins:
        inside = inside | ((pl.col("ts") >= w[0]) & (pl.col("ts") < w[1]))
    typed = [pl.col(c).cast(CANDLES_SCHEMA[c]) for c in CANDLE_KEY]
    series = pl.concat([stored.filter(~inside).select(typed), *(c.select(typed) for c in new)])
    if series.height == 0:
        return find_holes(series), None
    return find_holes(series), series["ts"].min()


@dataclass
class CandlesReport(StageReport):
    """A stage report plus the check counts computed inside the write's transaction (all zero)."""

    violations: dict[str, int] = field(default_factory=dict)


class CandleChecksFailed(DataError):
    """The candles' checks found violations before the commit: nothing was written."""

    def __init__(self, violations: dict[str, int]) -> None:
        bad = {k: v for k, v in violations.items() if v}
        super().__init__(f"candle checks failed, nothing written: {', '.join(f'{k}={v}' for k, v in bad.items())}")
        self.violations = violations


def normalize_candles(
    wh: Warehouse,
    windows: Mapping[Market, Sequence[Window]],
    *,
    now_ms: int | None = None,
    checked_at: datetime | None = None,
) -> CandlesReport:
    """Clean raw candles (or resample finer clean ones) into ``market.candles`` and ``market.gaps``.

    A window is cleaned up to the last candle that had closed when its raw rows were fetched,
    so a day still in progress is not mistaken for a gap. Resampled markets are built after the
    downloaded ones, from this run's fresh candles when their source is part of the run.

    The checks of :func:`check_candles` run inside the write's transaction, before the commit
    (``checked_at`` is the time "closed" is judged against, default now): a failing check rolls
    everything back, so a failed partition leaves no rows behind.

    Raises
    ------
    DataError
        If the exchange sent candles that break OHLC invariants: nothing is written.
    CandleChecksFailed
        If a check finds violations in what would be written: nothing is written.
    """
    t0 = time.perf_counter()
    report = CandlesReport()
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    fresh: dict[tuple[str, str, str, Window], pl.DataFrame] = {}
    writes: list[tuple[Market, Window, pl.DataFrame, pl.DataFrame]] = []
    ordered = sorted(windows.items(), key=lambda kv: kv[0].resample_from is not None)
    for m, wins in ordered:
        tf = timeframe_ms(m.timeframe)
        for w in wins:
            if m.resample_from is not None:
                src = fresh.get((m.exchange, m.symbol, m.resample_from, w))
                if src is None:
                    src = wh.read(
                        "market.candles",
                        [Slice(where={**m.where, "timeframe": m.resample_from}, start=w[0], end=w[1])],
                        order_by=CANDLE_KEY,
                    )
                candles, gaps = resample(src, m.timeframe), _empty_gaps()
                report.add(m, rows_in=src.height, candles=candles.height)
            else:
                raw = wh.read("raw.candles", [_raw_slice(m, w)])
                seen = int(raw["fetched_at"].max().timestamp() * 1000) if raw.height else now
                end = min(ms(w[1]), min(seen, now) // tf * tf)
                if end <= ms(w[0]):
                    candles, gaps = _empty_candles(), _empty_gaps()
                else:
                    prev = _prev_close(wh, m, w[0])
                    prev_close = {(m.exchange, m.symbol, m.timeframe): prev} if prev is not None else None
                    res = clean_candles(raw, start=w[0], end=end, prev_close=prev_close)
                    candles, gaps = res.candles, res.gaps
                    report.add(
                        m,
                        rows_in=res.rows_in,
                        duplicates=res.duplicates,
                        unclosed=res.unclosed,
                        filled=res.filled_candles,
                        gaps=gaps.height,
                    )
                report.add(m, candles=candles.height)
                fresh[(m.exchange, m.symbol, m.timeframe, w)] = candles
            try:
                CandleSchema.validate(candles)
            except Exception as exc:  # pandera's SchemaError(s): re-raise as our typed error
                raise DataError(f"{m} {w[0]:%Y-%m-%d}: candles fail the schema: {exc}") from exc
            writes.append((m, w, candles, gaps))
    hole_writes: list[tuple[Market, pl.DataFrame, datetime]] = []
    for m, wins in ordered:
        holes, first = _series_holes(wh, m, wins, [c for wm, _, c, _ in writes if wm == m])
        report.add(m, holes=holes.height, hole_candles=int(holes["missing"].sum()))
        if first is not None:
            hole_writes.append((m, holes, first))
    with wh.transaction() as con:
        for m, w, candles, gaps in writes:
            report.rows_written += Warehouse.replace(con, "market.candles", candles, [market_slice(m, w)], order_by=CANDLE_KEY)
            Warehouse.replace(con, "market.gaps", gaps, [market_slice(m, w, "gap_start")], order_by=GAP_KEY)
        for m, holes, first in hole_writes:  # after the windows' rows: a hole may start inside a window
            after_first = Slice(
                where={**m.where, "filled": False}, time_column="gap_start", start=first + timedelta(milliseconds=1)
            )
            Warehouse.replace(con, "market.gaps", holes, [after_first], order_by=GAP_KEY)
        report.violations = _count_violations(lambda sql, params: _row(con, sql, params), windows, checked_at)
        if any(report.violations.values()):
            raise CandleChecksFailed(report.violations)  # rolls the transaction back
    report.seconds = time.perf_counter() - t0
    return report


def _empty_gaps() -> pl.DataFrame:
    return pl.DataFrame(schema=GAPS_SCHEMA)


def _empty_candles() -> pl.DataFrame:
    return pl.DataFrame(schema=CANDLES_SCHEMA)


def _row(con: Any, sql: str, params: Sequence[Any]) -> dict[str, Any]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchall()[0]))


def _count_violations(
    row: Callable[[str, Sequence[Any]], dict[str, Any]], windows: Mapping[Market, Sequence[Window]], now: datetime | None
) -> dict[str, int]:
    now = now or datetime.now(timezone.utc)
    totals: dict[str, int] = {}
    sql, holes_sql = load_sql("check_market_candles"), load_sql("check_market_holes")
    for m, wins in windows.items():
        tf = timeframe_ms(m.timeframe)
        rows = [row(sql, [m.exchange, m.symbol, m.timeframe, w[0], w[1], tf, now]) for w in wins]
        rows.append(row(holes_sql, [m.exchange, m.symbol, m.timeframe, tf]))
        for r in rows:
            for k, v in r.items():
                totals[k] = totals.get(k, 0) + int(v or 0)
    return totals


def check_candles(wh: Warehouse, windows: Mapping[Market, Sequence[Window]], *, now: datetime | None = None) -> dict[str, int]:
    """Violation counts of the stored candles in ``windows`` (all zero when healthy).

    Runs ``sql/check_market_candles.sql`` per slice: duplicate keys, broken OHLC, candles not yet
    closed at ``now``, off-grid open times, and missing candles not recorded as gaps; then
    ``sql/check_market_holes.sql`` per market over its whole stored series: ``holes_unrecorded``
    counts the missing candles of holes between stored candles that ``market.gaps`` lacks.
    :func:`normalize_candles` runs the same counts before its commit.
    """
    return _count_violations(lambda sql, params: wh.query(sql, list(params)).row(0, named=True), windows, now)
