"""The portfolio tear sheet: self-contained, escaped, scalable, small, and its benchmarks computed by hand."""

from __future__ import annotations

import dataclasses
import math
import re
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from quantdag.portfolio import run_portfolio
from quantdag.portfolio.report import benchmarks, turnover_by_period, write_report

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def _candles(rng: np.random.Generator, symbols: list[str], n: int, holes: float = 0.0) -> pl.DataFrame:
    """Hourly random-walk OHLC per symbol, built column-wise (fast enough for 20 x 20k)."""
    ts = pl.datetime_range(T0, T0 + timedelta(hours=n - 1), "1h", time_unit="ms", time_zone="UTC", eager=True)
    frames = []
    for s in symbols:
        close = 100.0 * rng.uniform(0.5, 2) * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = np.r_[close[0], close[:-1]]
        keep = rng.random(n) >= holes
        keep[0] = True
        frames.append(pl.DataFrame({"ts": ts, "symbol": s, "open": open_, "high": np.maximum(open_, close) * 1.01,
                                    "low": np.minimum(open_, close) * 0.99, "close": close, "volume": 1.0}).filter(pl.Series(keep)))  # fmt: skip
    return pl.concat(frames)


def _weights(rng: np.random.Generator, candles: pl.DataFrame, every: int) -> pl.DataFrame:
    times = candles["ts"].unique().sort().gather_every(every)
    pick = candles.filter(pl.col("ts").is_in(times.implode()))
    return pick.select("ts", "symbol").with_columns(weight=pl.Series(rng.uniform(-0.2, 0.5, pick.height)))


@pytest.fixture(scope="module")
def result():
    rng = np.random.default_rng(7)
    c = _candles(rng, SYMBOLS, 500, holes=0.02)
    return run_portfolio(c, _weights(rng, c, 6), fee=0.001, slippage=0.0005, init_cash=10_000.0, timeframe="1h")


def _attribution(result, strategies=("momentum", "carry")) -> pl.DataFrame:
    """Rows per strategy x market whose net_pnl sums exactly to final_equity - init_cash."""
    rows = [(st, sym) for st in strategies for sym in SYMBOLS]
    net = np.linspace(-1.0, 2.0, len(rows))
    net = net / net.sum() * (result.final_equity - result.settings["init_cash"])
    return pl.DataFrame({
        "strategy": [r[0] for r in rows], "symbol": [r[1] for r in rows],
        "trading_pnl": net + 3.0, "fees": np.full(len(rows), 2.0), "slippage": np.full(len(rows), 1.0), "net_pnl": net,
    })  # fmt: skip


def _events() -> pl.DataFrame:
    return pl.DataFrame({"ts": [T0 + timedelta(hours=50), T0 + timedelta(hours=90)], "state": ["halted", "active"],
                         "rule": ["max_drawdown", "max_drawdown"], "reason": ["drawdown 12% > 10% <b>", "resumed"]},
                        schema={"ts": pl.Datetime("ms", "UTC"), "state": pl.Utf8, "rule": pl.Utf8, "reason": pl.Utf8})  # fmt: skip


def test_report_is_written_self_contained_with_every_section(tmp_path, result):
    full = dataclasses.replace(result, attribution=_attribution(result), risk_events=_events())
    path = full.report(tmp_path / "deep" / "dir" / "tear.html")
    page = path.read_text(encoding="utf-8")
    assert path.exists() and page.startswith("<!DOCTYPE html>")
    assert not re.search(r'(src|href)\s*=\s*["\']?https?://', page) and "<script" not in page.lower()
    for section in ("equity", "drawdown", "exposure", "turnover", "rolling-sharpe", "attribution", "risk-events",
                    "metrics", "settings", "trades"):  # fmt: skip
        assert f'<section id="{section}">' in page
    for name in SYMBOLS + ["momentum", "carry", "max_drawdown", "n_cut_for_cash", "init_cash"]:
        assert name in page
    assert "drawdown 12% &gt; 10% &lt;b&gt;" in page  # risk reason escaped


def test_report_names_both_benchmarks_and_says_they_carry_no_costs(tmp_path, result):
    page = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "buy and hold" in page and "equal weight (rebalanced every candle)" in page
    assert "benchmarks without fees or slippage" in page


def test_report_title_names_portfolio_and_strategies_from_settings_and_attribution(tmp_path, result):
    named = dataclasses.replace(result, settings={**result.settings, "name": "Core book", "strategies": ["trend", {"name": "mr"}]},
                                attribution=_attribution(result, ("carry",)))  # fmt: skip
    page = write_report(named, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<title>Core book</title>" in page and "<h1>Core book</h1>" in page
    assert "Strategies: carry, trend, mr" in page
    assert "<title>Override</title>" in write_report(named, tmp_path / "o.html", title="Override").read_text(encoding="utf-8")


def test_report_escapes_script_in_strategy_and_symbol_names(tmp_path, result):
    att = _attribution(result, ("<script>alert(1)</script>",)).with_columns(pl.lit("X&Y<i>").alias("symbol"))
    page = write_report(dataclasses.replace(result, attribution=att), tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<i>" not in page and "X&amp;Y&lt;i&gt;" in page


def test_report_attribution_total_equals_final_equity_minus_init_cash(tmp_path, result):
    page = write_report(dataclasses.replace(result, attribution=_attribution(result)), tmp_path / "r.html").read_text(encoding="utf-8")
    total_row = re.search(r'<tr class="tot" id="attribution-total">(.*?)</tr>', page).group(1)
    printed_net = re.findall(r"<td>([-\d,.]+)</td>", total_row)[-1]
    expected = result.final_equity - result.settings["init_cash"]
    assert printed_net == f"{expected:,.2f}"
    assert f"final equity − init cash = {expected:,.2f} (matches)" in page
    assert page.count('<tr class="sub">') == 2  # one subtotal per strategy


def test_report_of_the_engines_own_attribution_reconciles(tmp_path, result):
    if result.attribution.height == 0:
        pytest.skip("this engine fills no attribution")
    page = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    expected = result.final_equity - result.settings["init_cash"]
    assert f"final equity − init cash = {expected:,.2f} (matches)" in page


def test_report_flags_attribution_that_does_not_reconcile(tmp_path, result):
    att = _attribution(result).with_columns(pl.col("net_pnl") + 1.0)
    page = write_report(dataclasses.replace(result, attribution=att), tmp_path / "r.html").read_text(encoding="utf-8")
    assert "unexplained 6.00" in page


def test_report_empty_attribution_and_risk_events_give_empty_state_lines(tmp_path, result):
    empty = dataclasses.replace(result, attribution=result.attribution.clear(), risk_events=result.risk_events.clear())
    page = write_report(empty, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "No attribution: this run carries no per-strategy P&amp;L." in page
    assert "No risk events: no rule tripped or resumed." in page


def test_report_charts_scale_with_page_width(tmp_path, result):
    page = write_report(dataclasses.replace(result, attribution=_attribution(result)), tmp_path / "r.html").read_text(encoding="utf-8")
    svgs = re.findall(r"<svg[^>]*>", page)
    assert len(svgs) == 6  # equity, drawdown, exposure, turnover, rolling sharpe, P&L bars
    for tag in svgs:
        assert re.search(r'viewBox="0 0 \d+ \d+"', tag) and 'width="100%"' in tag and "preserveAspectRatio" in tag
        assert "height=" not in tag.replace("preserveAspectRatio", "")  # height follows the width


def test_report_shows_only_the_last_100_trades(tmp_path, result):
    assert result.trades.height > 100
    page = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    section = page.split('<section id="trades">')[1]
    assert section.count("<tr>") == 101  # header + 100
    assert f"last 100 of {result.trades.height} trades" in section


@pytest.mark.parametrize("n", [1, 2, 300])
def test_report_of_a_run_without_trades_still_renders(tmp_path, n):
    c = _candles(np.random.default_rng(5), SYMBOLS[:2], n)
    idle = run_portfolio(c, c.head(0).select("ts", "symbol").with_columns(weight=pl.lit(0.0)), timeframe="1h")
    assert idle.trades.height == 0
    page = write_report(idle, tmp_path / "idle.html").read_text(encoding="utf-8")
    assert "0 trades" in page
    assert not re.search(r'(d|x|y|width|height)="[^"]*nan', page, re.I)  # no NaN coordinate in any chart


def test_buy_and_hold_and_equal_weight_match_a_hand_computation():
    ts = pl.datetime_range(T0, T0 + timedelta(hours=2), "1h", time_unit="ms", time_zone="UTC", eager=True)
    prices = pl.DataFrame({"ts": ts, "A": [100.0, 110.0, 121.0], "B": [float("nan"), 50.0, 40.0], "C": [None, None, None]},
                          schema_overrides={"C": pl.Float64})  # fmt: skip
    b = benchmarks(prices, 900.0)
    # A: 300 cash -> 3 units at 100; B: 300 cash until its first close, 6 units at 50; C never trades: 300 cash
    assert b["buy_and_hold"].to_list() == pytest.approx([900.0, 330 + 300 + 300, 363 + 240 + 300])
    # equal weight: t0->t1 only A has a close at t0 (+10%); t1->t2 A +10%, B -20% at 1/2 each
    assert b["equal_weight"].to_list() == pytest.approx([900.0, 990.0, 990.0 * (1 + (0.1 - 0.2) / 2)])


def test_equal_weight_keeps_last_close_of_a_market_without_a_candle():
    ts = pl.datetime_range(T0, T0 + timedelta(hours=2), "1h", time_unit="ms", time_zone="UTC", eager=True)
    prices = pl.DataFrame({"ts": ts, "A": [100.0, float("nan"), 120.0], "B": [10.0, 11.0, 11.0]})
    b = benchmarks(prices, 100.0)
    assert b["equal_weight"].to_list() == pytest.approx([100.0, 105.0, 105.0])  # A flat at t1, sits out t1->t2
    assert b["buy_and_hold"].to_list() == pytest.approx([100.0, 105.0, 115.0])


def test_benchmarks_of_the_run_start_at_init_cash_and_buy_and_hold_ends_at_hand_value(result):
    b = benchmarks(result.prices, 10_000.0)
    assert b["buy_and_hold"][0] == pytest.approx(10_000.0) and b["equal_weight"][0] == pytest.approx(10_000.0)
    hand = sum(10_000.0 / 3 * result.prices[s].drop_nans().drop_nulls()[-1] / result.prices[s].drop_nans().drop_nulls()[0]
               for s in SYMBOLS)  # fmt: skip
    assert b["buy_and_hold"][-1] == pytest.approx(hand, rel=1e-12)


def test_turnover_per_period_sums_to_the_traded_notional(result):
    per = turnover_by_period(result.equity, result.trades, "1d")
    assert per["notional"].sum() == pytest.approx(result.trades["notional"].sum())
    assert per.height == math.ceil(500 / 24)


@pytest.mark.slow
def test_report_of_20_markets_x_20k_candles_is_small_and_quick(tmp_path):
    rng = np.random.default_rng(3)
    symbols = [f"S{i:02d}/USDT" for i in range(20)]
    c = _candles(rng, symbols, 20_000)
    big = run_portfolio(c, _weights(rng, c, 24), init_cash=10_000.0, timeframe="1h")
    big = dataclasses.replace(big, attribution=_attribution_for(big, symbols))
    t = time.perf_counter()
    path = write_report(big, tmp_path / "big.html")
    elapsed = time.perf_counter() - t
    size = path.stat().st_size
    print(f"big report: {size / 1e6:.2f} MB in {elapsed:.2f} s")
    assert size < 1_500_000 and elapsed < 4.0  # ~2 s target, slack for a shared machine


def _attribution_for(result, symbols) -> pl.DataFrame:
    n = len(symbols)
    share = (result.final_equity - result.settings["init_cash"]) / n
    return pl.DataFrame({"strategy": ["trend"] * n, "symbol": symbols, "trading_pnl": [share] * n,
                         "fees": [0.0] * n, "slippage": [0.0] * n, "net_pnl": [share] * n})  # fmt: skip
