"""The intraday loop: a stored 1m candle that closes a research candle, through signals and risk, to a paper order.

Runs in the streamer's process right after its ingest commit (it already holds the warehouse
then, so nothing waits for a Dagster job): for each research market whose candle the new minutes
complete (all of its minutes stored; a research market at 1m is complete at once) the candle is
built from them (``quantdag.data.resample``, the daily job's aggregation) and stored; then every
paper-enabled parameter set's signals are recomputed on those markets and its paper account runs
one cycle (:func:`quantdag.stages.paper.paper_cycle`: the backtest's sizing and risk rules); with a
:class:`PortfolioTrading`, the portfolio's members' signals and weights are rebuilt and its account
rebalances (:func:`quantdag.stages.portfolio.paper_portfolio_step`, the portfolio backtest's rules).
The daily jobs stay the backfill and the reports.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from quantdag.data.resample import resample
from quantdag.markets import Market
from quantdag.stages.common import market_slice
from quantdag.stages.paper import PaperAccount, paper_cycle
from quantdag.stages.portfolio import Execution, PortfolioSpec, build_weights, paper_portfolio_step
from quantdag.stages.signals import build_signals, resolve_param_set
from quantdag.store import Warehouse
from quantdag.strategies import Strategy
from quantdag.timeframes import timeframe_ms

log = logging.getLogger(__name__)

MINUTE_MS = 60_000


@dataclass(frozen=True)
class PortfolioTrading:
    """The portfolio account the loop rebalances: its spec, broker (paper or ccxt) and execution."""

    spec: PortfolioSpec
    broker: Any
    quote: str = "USDT"
    execution: Execution = Execution()


@dataclass
class LoopReport:
    completed: list[tuple[str, int]] = field(default_factory=list)  # research market key, candle open (ms)
    cycles: list[dict] = field(default_factory=list)  # one paper cycle summary per parameter set
    close_to_order_ms: list[float] = field(default_factory=list)  # candle close -> the cycle's first order created
    close_to_done_ms: list[float] = field(default_factory=list)  # candle close -> the cycle's last child order done


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def completed_candles(wh: Warehouse, markets: Sequence[Market], minutes: Sequence[tuple[str, int]]) -> dict[Market, list[int]]:
    """Research candles (open ms) the stored 1m ``minutes`` (symbol, open ms) close, whose minutes are all stored."""
    out: dict[Market, list[int]] = {}
    for m in markets:
        tf = timeframe_ms(m.timeframe)
        ends = sorted({t + MINUTE_MS for s, t in minutes if s == m.symbol and (t + MINUTE_MS) % tf == 0})
        for end in ends:
            if tf == MINUTE_MS:
                out.setdefault(m, []).append(end - tf)
                continue
            n = wh.query("SELECT count(*) AS n FROM market.candles WHERE exchange = ? AND symbol = ? AND timeframe = '1m' "
                         "AND ts >= ? AND ts < ?", [m.exchange, m.symbol, _dt(end - tf), _dt(end)])["n"][0]  # fmt: skip
            if n == tf // MINUTE_MS:
                out.setdefault(m, []).append(end - tf)
            else:
                log.warning("intraday %s: candle %d has %d of %d minutes stored; the daily job will build it", m.key, end - tf, n, tf // MINUTE_MS)
    return out


def store_research_candles(wh: Warehouse, done: Mapping[Market, list[int]]) -> None:
    """Build each completed research candle from its stored minutes and store it (keyed replace)."""
    for m, opens in done.items():
        if m.timeframe == "1m":
            continue
        tf = timeframe_ms(m.timeframe)
        lo, hi = min(opens), max(opens) + tf
        minutes = wh.read("market.candles", [market_slice(Market(m.exchange, m.symbol, "1m"), (_dt(lo), _dt(hi)))], order_by=("ts",))
        coarse = resample(minutes, m.timeframe)
        with wh.transaction() as con:
            con.register("_coarse", coarse)
            try:
                con.execute("DELETE FROM market.candles t USING _coarse c WHERE t.exchange = c.exchange AND t.symbol = c.symbol "
                            "AND t.timeframe = c.timeframe AND t.ts = c.ts")  # fmt: skip
                con.execute("INSERT INTO market.candles BY NAME SELECT * FROM _coarse")
            finally:
                con.unregister("_coarse")


class IntradayLoop:
    """See the module docstring. ``keys``: the paper-enabled parameter sets; ``price_source``:
    the live price of a symbol (a :class:`~quantdag.execution.brokers.paper.Quote`)."""

    def __init__(self, markets: Sequence[Market], keys: Sequence[str], price_source: Callable[[str], object], *,
                 account: PaperAccount = PaperAccount(), configured: Mapping[str, Strategy] | None = None,
                 webhook_env: str = "QUANTDAG_ALERT_WEBHOOK", portfolio: PortfolioTrading | None = None) -> None:  # fmt: skip
        self.markets = list(markets)
        self.keys = list(keys)
        self.price_source = price_source
        self.account = account
        self.configured = configured
        self.webhook_env = webhook_env
        self.portfolio = portfolio

    def warm_up(self, wh: Warehouse) -> float:
        """Rebuild every account's signals (and the portfolio's weights) on the stored candles, trading
        nothing: the first closed candle then costs what the others do (imports, numba compilation and
        caches are paid here, before the stream starts). Returns the seconds it took."""
        t0 = time.perf_counter()
        keys = list(self.keys)
        keys += [k for k in self._member_keys(wh) if k not in keys]
        for key in keys:
            try:
                build_signals(wh, key, self.markets, configured=self.configured)
            except Exception as exc:  # e.g. no candles yet: the first closed candle pays instead
                log.info("intraday warm-up %s: %s", key, exc)
        if self.portfolio is not None:
            try:
                build_weights(wh, self.portfolio.spec, self.markets, self.configured)
            except Exception as exc:
                log.info("intraday warm-up portfolio: %s", exc)
        return time.perf_counter() - t0

    def on_stored(self, wh: Warehouse, minutes: Sequence[tuple[str, int]]) -> LoopReport:
        """Act on newly stored 1m candles (symbol, open ms): research candles, signals, paper cycles."""
        report = LoopReport()
        done = completed_candles(wh, self.markets, minutes)
        if not done:
            return report
        store_research_candles(wh, done)
        report.completed = [(m.key, t) for m, ts in done.items() for t in ts]
        changed = list(done)
        jobs: list[tuple[dict, Callable[[Warehouse], dict]]] = []
        for key in self.keys:  # signals first (quick), then every account at once
            try:
                build_signals(wh, key, changed, configured=self.configured)
            except Exception as exc:  # one parameter set's failure (e.g. a look-ahead refusal) never stops the others
                log.error("intraday %s: %s", key, exc)
                report.cycles.append({"param_set": key, "error": str(exc)})
                continue
            jobs.append(({"param_set": key}, lambda w, key=key: paper_cycle(
                w, key, self.markets, price_source=self.price_source, account=self.account, webhook_env=self.webhook_env)))
        if self.portfolio is not None:
            name = self.portfolio.spec.name
            try:
                self._portfolio_inputs(wh, changed)
            except Exception as exc:
                log.error("intraday portfolio %s: %s", name, exc)
                report.cycles.append({"portfolio": name, "error": str(exc)})
            else:
                jobs.append(({"portfolio": name}, self._portfolio_step))
        # each account in a thread of its own, with its own connections: a sliced parent's pauses in one
        # account never delay another account's first order
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(jobs)))) as pool:
            futures = [(tag, pool.submit(run, _own(wh))) for tag, run in jobs]
            for tag, fut in futures:
                try:
                    summary = fut.result()
                except Exception as exc:  # one account's failure never stops the others
                    log.error("intraday %s: %s", tag, exc)
                    report.cycles.append({**tag, "error": str(exc)})
                    continue
                self._record(wh, report, {**summary, **tag}, done)
        return report

    def _record(self, wh: Warehouse, report: LoopReport, summary: dict, done: Mapping[Market, list[int]]) -> None:
        """Keep the cycle's summary; if it sent orders, the time from the candle's close to its first
        order's creation (a sliced parent's later children follow on its schedule) and to the cycle's end."""
        report.cycles.append(summary)
        if summary.get("orders_sent"):
            close = max(t + timeframe_ms(m.timeframe) for m, ts in done.items() for t in ts)
            first = wh.query("SELECT epoch_ms(min(ts_created)) AS t FROM paper.orders WHERE broker = ? AND intent LIKE ?",
                             [summary["account"], f"rebalance:{summary['decision_ts_ms']}:%"])["t"][0]  # fmt: skip
            now = time.time() * 1000
            report.close_to_order_ms.append((now if first is None else first) - close)
            report.close_to_done_ms.append(now - close)

    def _portfolio_inputs(self, wh: Warehouse, changed: Sequence[Market]) -> None:
        """The members' signals on the new candles (those not already rebuilt as paper sets) and the
        portfolio's weights: what the daily portfolio job computes, now."""
        p = self.portfolio
        for key in self._member_keys(wh):  # signals first: building them records the look-ahead verdict the weights require
            if key not in self.keys:
                build_signals(wh, key, changed, configured=self.configured)
        build_weights(wh, p.spec, self.markets, self.configured)

    def _member_keys(self, wh: Warehouse) -> list[str]:
        """The parameter-set keys of the portfolio's members (none without a portfolio)."""
        if self.portfolio is None:
            return []
        return [resolve_param_set(wh, e, self.configured).key for e in self.portfolio.spec.members]

    def _portfolio_step(self, wh: Warehouse) -> dict:
        p = self.portfolio
        return paper_portfolio_step(wh, p.spec, self.markets, p.broker, quote=p.quote, execution=p.execution,
                                    configured=self.configured, webhook_env=self.webhook_env)  # fmt: skip


def _own(wh: Warehouse) -> Warehouse:
    """The same file, a handle of its own (a thread's connections never mix with another's)."""
    return Warehouse(wh.path, lock_timeout=wh.lock_timeout, parquet_dir=wh.parquet_dir)


__all__ = ["IntradayLoop", "LoopReport", "PortfolioTrading", "completed_candles", "store_research_candles"]
