"""What a backtest returns: final equity at once, frames and metrics built on first access."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantdag.backtest import enums
from quantdag.backtest.metrics import compute_metrics, drawdown
from quantdag.backtest.nb import expand_marks_nb
from quantdag.backtest.settings import BacktestSettings

EXIT_REASON_NAMES = {int(r): r.name.lower() for r in enums.ExitReason}


@dataclass(frozen=True)
class CandleArrays:
    """Validated candles of one market as contiguous arrays (made by
    :func:`quantdag.backtest.engine.load_market`): ``ts_ms`` int64 epoch milliseconds, the
    prices and volume float64; ``ts`` keeps the caller's series for the output frames."""

    ts: pl.Series
    ts_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


class BacktestResult:
    """Outcome of one :func:`quantdag.backtest.run`.

    Attributes
    ----------
    settings : BacktestSettings
        Everything the run used (``settings.as_dict()`` for logging).
    final_equity : float
        Cash plus the open position marked at the last close (no exit costs deducted).
    periods_per_year : float
        Candles per year used to annualise.
    """

    def __init__(
        self,
        *,
        settings: BacktestSettings,
        market: CandleArrays,
        marks: np.ndarray,
        trade_records: np.ndarray,
        stats: np.ndarray,
        periods_per_year: float,
        bar_ms: float,
        is_target_run: bool,
    ) -> None:
        self.settings = settings
        self.market = market
        self.marks = marks
        self.trade_records = trade_records
        self.stats = stats
        self.periods_per_year = periods_per_year
        self.bar_ms = bar_ms
        self.is_target_run = is_target_run
        self.final_equity = float(stats[enums.S_FINAL_EQUITY])

    def __repr__(self) -> str:
        return (
            f"BacktestResult(final_equity={self.final_equity:.2f}, n_trades={self.trade_records.shape[0]}, "
            f"candles={self.market.close.shape[0]}, fill={self.settings.fill!r}, fee={self.settings.fee}, "
            f"slippage={self.settings.slippage})"
        )

    @cached_property
    def _account(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.market.close.shape[0]
        equity, cash, position = np.empty(n), np.empty(n), np.empty(n)
        expand_marks_nb(self.marks, self.marks.shape[0], self.market.close, self.settings.init_cash, equity, cash, position)
        return equity, cash, position

    @property
    def equity_array(self) -> np.ndarray:
        """Equity at each close (cash + signed units x close), float64."""
        return self._account[0]

    @property
    def cash_array(self) -> np.ndarray:
        """Cash at each close, float64."""
        return self._account[1]

    @property
    def position_array(self) -> np.ndarray:
        """Signed base units held at each close, float64."""
        return self._account[2]

    @cached_property
    def equity(self) -> pl.DataFrame:
        """Per candle: ``ts``, ``equity``, ``cash``, ``position`` (signed units), ``drawdown`` (<= 0)."""
        return pl.DataFrame(
            {
                "ts": self.market.ts,
                "equity": self.equity_array,
                "cash": self.cash_array,
                "position": self.position_array,
                "drawdown": drawdown(self.equity_array, self.settings.init_cash),
            }
        )

    @cached_property
    def trades(self) -> pl.DataFrame:
        """One row per trade in time order, the one still open at the end last and flagged.

        Columns: ``trade_id``, ``side`` ("long"/"short"), ``entry_ts``, ``exit_ts``,
        ``entry_bar``, ``exit_bar``, ``size`` (base units entered), ``entry_price`` and
        ``exit_price`` (size-weighted fill prices, slippage included; an open trade's exit price
        is the last close), ``fees``, ``slippage`` (cost, quote), ``pnl`` (net of fees),
        ``return`` (``pnl / entry value``), ``exit_reason`` and ``is_open``.
        """
        r = self.trade_records
        entry_bar = r[:, enums.T_ENTRY_IDX].astype(np.int64)
        exit_bar = r[:, enums.T_EXIT_IDX].astype(np.int64)
        ts = self.market.ts
        return pl.DataFrame(
            {
                "trade_id": np.arange(r.shape[0], dtype=np.int64),
                "side": np.where(r[:, enums.T_SIDE] > 0, "long", "short").astype(object) if r.shape[0] else [],
                "entry_ts": ts.gather(entry_bar),
                "exit_ts": ts.gather(exit_bar),
                "entry_bar": entry_bar,
                "exit_bar": exit_bar,
                "size": r[:, enums.T_SIZE],
                "entry_price": r[:, enums.T_ENTRY_PRICE],
                "exit_price": r[:, enums.T_EXIT_PRICE],
                "fees": r[:, enums.T_FEES],
                "slippage": r[:, enums.T_SLIPPAGE],
                "pnl": r[:, enums.T_PNL],
                "return": r[:, enums.T_RETURN],
                "exit_reason": [EXIT_REASON_NAMES[int(x)] for x in r[:, enums.T_REASON]],
                "is_open": r[:, enums.T_OPEN] > 0,
            },
            schema_overrides={"side": pl.String, "exit_reason": pl.String},
        )

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """Flat dict of floats/ints; formulas in :mod:`quantdag.backtest.metrics`."""
        r = self.trade_records
        return compute_metrics(
            equity=self.equity_array,
            position=self.position_array,
            init_cash=self.settings.init_cash,
            periods_per_year=self.periods_per_year,
            bar_ms=self.bar_ms,
            trade_pnl=r[:, enums.T_PNL],
            trade_bars=r[:, enums.T_EXIT_IDX] - r[:, enums.T_ENTRY_IDX],
            trade_open=r[:, enums.T_OPEN] > 0,
            fees_paid=float(self.stats[enums.S_FEES]),
            slippage_paid=float(self.stats[enums.S_SLIPPAGE]),
            traded_value=float(self.stats[enums.S_TRADED_VALUE]),
            rejected_size_zero=int(self.stats[enums.S_REJ_SIZE]),
            rejected_no_cash=int(self.stats[enums.S_REJ_CASH]),
            rejected_volume_cap=int(self.stats[enums.S_REJ_VOLUME]),
            capped_fills=int(self.stats[enums.S_CAPPED]),
        )

    def report(self, path: str | Path, *, title: str = "Backtest") -> Path:
        """Write a self-contained HTML tear sheet (no scripts, no network) and return its path.

        Sections: equity and drawdown, price with trades marked, monthly returns heatmap,
        metrics table and the settings used (costs included).
        """
        from quantdag.backtest.report import write_report

        return write_report(self, Path(path), title=title)
