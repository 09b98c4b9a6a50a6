"""The HTML tear sheet: self-contained, with every section the issue asks for."""

from __future__ import annotations

import re

import numpy as np
import pytest

from quantdag.backtest import run
from quantdag.backtest.report import _envelope, monthly_returns

from .helpers import candles, flags

DAY_MS = 86_400_000


@pytest.fixture
def result():
    rng = np.random.default_rng(11)
    close = 100 * np.exp(np.cumsum(rng.normal(0.001, 0.02, 120)))
    c = candles(np.r_[100, close[:-1]], close=close, step_ms=DAY_MS)
    return run(c, rng.random(120) < 0.08, rng.random(120) < 0.08, stop_loss=0.05)


def test_report_writes_self_contained_html_with_all_sections(tmp_path, result):
    path = result.report(tmp_path / "sub" / "tear.html", title="Test <run>")
    html = path.read_text(encoding="utf-8")
    for section in ("equity", "price", "monthly", "metrics", "settings", "trades"):
        assert f'<section id="{section}">' in html
    assert "Equity and drawdown" in html and "Monthly returns" in html
    assert html.count("<svg") == 3  # equity, drawdown, price
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "Test &lt;run&gt;" in html  # escaped title
    assert "slippage_model" in html and "fee 0.1000% per side" in html  # costs in the settings
    assert "sharpe" in html and "max_drawdown_duration_bars" in html
    assert len(re.findall(r'fill="#1a9850"', html)) == result.trades.height  # one marker per long entry


def test_report_monthly_returns_chain_to_total_return(result):
    mr = monthly_returns(result)
    assert mr.columns == ["year", "month", "return"]
    assert mr.height == 4  # 120 days from January 1st: January to April
    total = float(np.prod(1 + mr["return"].to_numpy()) - 1)
    assert total == pytest.approx(result.metrics["total_return"], rel=1e-9)


def test_report_without_trades_still_renders(tmp_path):
    c = candles([100.0, 101.0, 99.0, 100.0])
    res = run(c, flags(4), flags(4))
    html = res.report(tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "0 trades" in html and '<section id="monthly">' in html


def test_report_envelope_keeps_extremes_of_long_series():
    y = np.sin(np.linspace(0, 60, 100_000))
    y[54_321] = 5.0
    idx, vals = _envelope(y, 500)
    assert idx.shape[0] <= 4 * 500 and vals.max() == 5.0 and vals.min() == pytest.approx(y.min())


@pytest.mark.parametrize("n,columns", [(100, 60), (8760, 930), (50_001, 930), (3000, 7)])
def test_envelope_vectorised_equals_the_per_column_loop(n, columns):
    from quantdag.backtest.report import _envelope, _envelope_reference

    rng = np.random.default_rng(n)
    for y in (rng.normal(size=n).cumsum(), np.round(rng.normal(size=n), 1), np.ones(n)):  # ties, flat
        idx, vals = _envelope(y, columns)
        ref_idx, ref_vals = _envelope_reference(y, columns)
        assert np.array_equal(idx, ref_idx) and np.array_equal(vals, ref_vals)


def test_report_scales_with_the_window_and_shows_buy_and_hold(tmp_path, result):
    from quantdag.backtest.report import buy_and_hold

    html = result.report(tmp_path / "t.html", title="sma_cross fast=10 slow=50 · sim:BTC/USDT:1h").read_text()
    assert "sma_cross fast=10 slow=50" in html  # the strategy and its parameters name the page
    svgs = re.findall(r"<svg [^>]*>", html)
    assert len(svgs) == 3 and all('viewBox="0 0 1100 ' in s and "width=" not in s for s in svgs)  # no fixed width
    assert 'class="buy-and-hold"' in html and "buy and hold (from the first close, no costs)" in html
    bh = buy_and_hold(result)
    close = result.market.close
    assert bh[0] == result.settings.init_cash and abs(bh[-1] / bh[0] - close[-1] / close[0]) < 1e-12
    assert f"{bh[-1] / result.settings.init_cash - 1:.2%}</b><span>Buy and hold" in html
