"""The market-data stages as plain functions over the warehouse: fetch, clean, indicators, events.

Each stage reads its inputs for a set of windows, computes everything first, then replaces its
output slices in ONE transaction, so a failure anywhere writes nothing and a re-run gives the
same tables. Dagster assets are thin wrappers around these; a notebook can call them directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import polars as pl

from quantdag.data import CANDLES_SCHEMA, EVENTS_SCHEMA, GAPS_SCHEMA, MARKET_KEY, EventConfig, clean_candles, detect_events, resample
from quantdag.data.schema import CandleSchema
from quantdag.errors import DataError
from quantdag.exchange import ExchangeClient, empty_raw_frame
from quantdag.features import compute_indicators, lookback_days
from quantdag.store import Slice, Warehouse
from quantdag.timeframes import timeframe_ms

log = logging.getLogger(__name__)

Window = tuple[datetime, datetime]
CANDLE_KEY = ("exchange", "symbol", "timeframe", "ts")


@dataclass(frozen=True)
class Market:
    """A market as the stages see it: where it comes from and at which timeframe."""

    exchange: str
    symbol: str
    timeframe: str
    resample_from: str | None = None

    @property
    def where(self) -> dict[str, str]:
        return {"exchange": self.exchange, "symbol": self.symbol, "timeframe": self.timeframe}

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}:{self.timeframe}"


@dataclass
class StageReport:
    """What a stage did, for the materialization's metadata and the demo's summary."""

    rows_written: int = 0
    per_market: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, market: Market, **counts: int) -> None:
        slot = self.per_market.setdefault(str(market), {})
        for k, v in counts.items():
            slot[k] = slot.get(k, 0) + int(v)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _raw_slice(m: Market, w: Window, timeframe: str | None = None) -> Slice:
    where = {**m.where, "timeframe": timeframe or m.timeframe}
    return Slice(where=where, start=w[0], end=w[1], epoch_ms=True)


def _slice(m: Market, w: Window, time_column: str = "ts") -> Slice:
    return Slice(where=m.where, time_column=time_column, start=w[0], end=w[1])


# ---- raw_candles -------------------------------------------------------------------------------


def ingest_raw(
    wh: Warehouse,
    client: ExchangeClient,
    windows: Mapping[Market, Sequence[Window]],
    *,
    now_ms: int | None = None,
) -> StageReport:
    """Download what is missing from ``raw.candles`` for each market window, incrementally.

    Per window, the download starts after the last *closed* candle already stored, so a
    complete day is never fetched twice and re-running it rewrites identical rows. Markets that
    are resampled from a finer timeframe are not downloaded here.
    """
    t0 = time.perf_counter()
    report = StageReport()
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    writes: list[tuple[pl.DataFrame, Slice]] = []
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
            since = int(closed["ts"].max()) + tf if closed.height else _ms(w[0])
            end = min(_ms(w[1]), now)
            fetched = empty_raw_frame()
            if since < end:
                fetched = client.fetch_candles(m.symbol, m.timeframe, since, _ms(w[1]))
            report.add(m, fetched=fetched.height, kept=existing.height)
            writes.append((pl.concat([existing.select(fetched.columns), fetched]), s))
    with wh.transaction() as con:
        for frame, s in writes:
            report.rows_written += Warehouse.replace(
                con, "raw.candles", frame, [s], order_by=(*CANDLE_KEY, "fetched_at")
            )
    report.seconds = time.perf_counter() - t0
    return report


# ---- candles -----------------------------------------------------------------------------------


def _prev_close(wh: Warehouse, m: Market, before: datetime) -> float | None:
    df = wh.query(
        "SELECT close FROM market.candles WHERE exchange = ? AND symbol = ? AND timeframe = ? AND ts < ? "
        "ORDER BY ts DESC LIMIT 1",
        [m.exchange, m.symbol, m.timeframe, before],
    )
    return float(df["close"][0]) if df.height else None


def normalize_candles(
    wh: Warehouse, windows: Mapping[Market, Sequence[Window]], *, now_ms: int | None = None
) -> StageReport:
    """Clean raw candles (or resample finer clean ones) into ``market.candles`` and ``market.gaps``.

    A window is cleaned up to the last candle that had closed when its raw rows were fetched,
    so a day still in progress is not mistaken for a gap. Resampled markets are built after the
    downloaded ones, from this run's fresh candles when their source is part of the run.

    Raises
    ------
    DataError
        If the exchange sent candles that break OHLC invariants: nothing is written.
    """
    t0 = time.perf_counter()
    report = StageReport()
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
                end = min(_ms(w[1]), min(seen, now) // tf * tf)
                if end <= _ms(w[0]):
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
    with wh.transaction() as con:
        for m, w, candles, gaps in writes:
            report.rows_written += Warehouse.replace(con, "market.candles", candles, [_slice(m, w)], order_by=CANDLE_KEY)
            Warehouse.replace(
                con, "market.gaps", gaps, [_slice(m, w, "gap_start")], order_by=("exchange", "symbol", "timeframe", "gap_start")
            )
    report.seconds = time.perf_counter() - t0
    return report


def _empty_gaps() -> pl.DataFrame:
    return pl.DataFrame(schema=GAPS_SCHEMA)


def _empty_candles() -> pl.DataFrame:
    return pl.DataFrame(schema=CANDLES_SCHEMA)


def check_candles(wh: Warehouse, windows: Mapping[Market, Sequence[Window]], *, now: datetime | None = None) -> dict[str, int]:
    """Violation counts of the stored candles in ``windows`` (all zero when healthy).

    Runs ``sql/check_market_candles.sql`` per slice: duplicate keys, broken OHLC, candles not yet
    closed at ``now``, off-grid open times, and missing candles not recorded as gaps.
    """
    from quantdag.store import load_sql

    now = now or datetime.now(timezone.utc)
    totals: dict[str, int] = {}
    sql = load_sql("check_market_candles")
    for m, wins in windows.items():
        tf = timeframe_ms(m.timeframe)
        for w in wins:
            row = wh.query(sql, [m.exchange, m.symbol, m.timeframe, w[0], w[1], tf, now]).row(0, named=True)
            for k, v in row.items():
                totals[k] = totals.get(k, 0) + int(v or 0)
    return totals


# ---- indicators --------------------------------------------------------------------------------


def build_indicators(wh: Warehouse, windows: Mapping[Market, Sequence[Window]]) -> StageReport:
    """Indicators for each window, warmed by a look-back of earlier candles, into ``features.indicators``."""
    t0 = time.perf_counter()
    report = StageReport()
    writes: list[tuple[Market, Window, pl.DataFrame]] = []
    for m, wins in windows.items():
        back = timedelta(days=lookback_days(m.timeframe))
        for w in wins:
            candles = wh.read("market.candles", [_slice(m, (w[0] - back, w[1]))], order_by=CANDLE_KEY)
            feats = compute_indicators(candles, warm_start=w[0]) if candles.height else _empty_indicators(candles)
            report.add(m, context_rows=candles.height, rows=feats.height)
            writes.append((m, w, feats))
    with wh.transaction() as con:
        for m, w, feats in writes:
            report.rows_written += Warehouse.replace(con, "features.indicators", feats, [_slice(m, w)], order_by=CANDLE_KEY)
    report.seconds = time.perf_counter() - t0
    return report


def _empty_indicators(candles: pl.DataFrame) -> pl.DataFrame:
    return compute_indicators(candles.clear(), warm_start=None)


# ---- events ------------------------------------------------------------------------------------

def event_lookback_days(timeframes: Sequence[str]) -> int:
    """Days of context that warm the events' rolling statistics for the finest of ``timeframes``."""
    if not timeframes:
        return 0
    finest = min(timeframe_ms(tf) for tf in timeframes)
    return -(-EventConfig().lookback_bars * finest // 86_400_000)


def build_events(wh: Warehouse, exchange: str, windows: Sequence[Window]) -> StageReport:
    """Market events starting in each window, across every stored market of ``exchange``.

    An event that starts in the window and is still going at its last candle keeps its real end:
    candles after the window are read too (one day, then twice as far, up to the last stored
    candle) until every such event has ended. Detection is causal (:mod:`quantdag.data.events`),
    so reading ahead changes only those events' ends. An event still open at the last stored
    candle ends there until the window is materialised again with more data.
    """
    t0 = time.perf_counter()
    report = StageReport()
    writes: list[tuple[Window, pl.DataFrame]] = []
    stored = wh.query("SELECT DISTINCT timeframe FROM market.candles WHERE exchange = ?", [exchange])
    back = timedelta(days=event_lookback_days(stored["timeframe"].to_list()))
    last = wh.query("SELECT max(ts) AS ts FROM market.candles WHERE exchange = ?", [exchange])["ts"][0]
    for w in windows:
        events = _events_starting_in(wh, exchange, w, back, last)
        for row in events.group_by("symbol", "timeframe", "event_type").len().iter_rows(named=True):
            report.add(Market(exchange, row["symbol"], row["timeframe"]), **{row["event_type"]: row["len"]})
        writes.append((w, events))
    with wh.transaction() as con:
        for w, events in writes:
            report.rows_written += Warehouse.replace(
                con,
                "market.events",
                events,
                [Slice(where={"exchange": exchange}, time_column="ts_start", start=w[0], end=w[1])],
                order_by=("exchange", "symbol", "timeframe", "event_type", "ts_start"),
            )
    report.seconds = time.perf_counter() - t0
    return report


def _events_starting_in(wh: Warehouse, exchange: str, w: Window, back: timedelta, last: datetime | None) -> pl.DataFrame:
    """:func:`build_events`' detection for one window, reading ahead while an event may go on."""
    gaps = wh.read("market.gaps", [Slice(where={"exchange": exchange}, time_column="gap_start", start=w[0], end=w[1])])
    ahead = timedelta(days=1)
    while True:
        end = w[1] + ahead
        candles = wh.read(
            "market.candles", [Slice(where={"exchange": exchange}, start=w[0] - back, end=end)], order_by=CANDLE_KEY
        )
        if not candles.height:
            return pl.DataFrame(schema=EVENTS_SCHEMA)
        events = detect_events(candles, gaps=gaps).filter((pl.col("ts_start") >= w[0]) & (pl.col("ts_start") < w[1]))
        series_end = candles.group_by(MARKET_KEY).agg(pl.col("ts").max().alias("series_end"))
        going_on = events.join(series_end, on=list(MARKET_KEY), how="left").filter(
            pl.col("ts_end") >= pl.col("series_end").fill_null(series_end["series_end"].min())
        )  # an implied market (e.g. a depeg's USDC/USD) has no series: the earliest end decides
        if going_on.height == 0 or last is None or end > last:
            return events
        ahead *= 2
