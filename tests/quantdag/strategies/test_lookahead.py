"""Look-ahead checks: every registered strategy is clean; deliberate cheats are caught."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles

from quantdag.errors import ConfigurationError, StrategyError
from quantdag.strategies import check_lookahead, create_strategy, get_strategy, list_strategies
from quantdag.strategies.lookahead import cut_points, first_difference, perturb_future

from .fixture_strategies import AddsColumnInPlace, CenteredMean, FullSampleVolRegime, FullSampleZScore, PeekNextClose
from .fixture_strategies import with_inputs as inputs


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "1h")


# Parametrised over the registry at collection time: a new strategy is checked without editing this.
@pytest.mark.parametrize("name", list_strategies())
def test_registered_strategy_default_params_no_lookahead_on_real_candles(candles, name):
    report = check_lookahead(create_strategy(name), inputs(name, candles))
    assert report.ok, report.summary()
    assert report.prefixes_checked >= 45 and report.perturbations_checked >= 3


@pytest.mark.parametrize("name", list_strategies())
def test_registered_strategy_sampled_params_no_lookahead(candles, name):
    cls = get_strategy(name)
    for params in cls.param_space().sample(2, seed=3):
        report = check_lookahead(cls.from_params(params), inputs(name, candles.head(900)), prefixes=15, perturbations=2, seed=5)
        assert report.ok, report.summary()


@pytest.mark.parametrize("name", list_strategies())
def test_registered_strategy_no_lookahead_on_5m_candles_with_gaps(name):
    five = load_real_candles("kraken", "BTC_USDC", "5m")  # 3027 missing candles, USDC depeg in March
    report = check_lookahead(create_strategy(name), inputs(name, five), prefixes=20, perturbations=3, seed=11)
    assert report.ok, report.summary()


@pytest.mark.slow
@pytest.mark.parametrize("name", list_strategies())
def test_registered_strategy_no_lookahead_on_binanceus_1m_thorough(name):
    one = load_real_candles("binanceus", "BTC_USD", "1m")  # 30240 candles
    report = check_lookahead(create_strategy(name), inputs(name, one), prefixes=100, perturbations=12, seed=2)
    assert report.ok, report.summary()
    assert report.prefixes_checked >= 95


def test_every_prefix_mode_short_frame_regime_ma_clean(candles):
    s = create_strategy("regime_ma", {"slow": 20, "rank_window": 30, "vol_window": 6, "adx_period": 5})
    report = check_lookahead(s, candles.head(120), prefixes="all")
    assert report.ok, report.summary()
    assert report.prefixes_checked == 119


def test_shift_minus_one_strategy_fails_with_first_ts_and_column(candles):
    report = check_lookahead(PeekNextClose(), candles)
    assert not report.ok
    first = report.first
    assert first is not None and first.column in ("entry", "exit")
    # the prefix ending at row k-1 cannot see candle k: the last row of the prefix differs
    prefix_diffs = [d for d in report.differences if d.check == "prefix"]
    assert prefix_diffs and all(d.row == d.cut - 1 for d in prefix_diffs)
    assert first.ts == candles["ts"][first.row]
    text = report.summary()
    assert "LOOK-AHEAD" in text and f"ts={first.ts}" in text and repr(first.column) in text


def test_full_sample_normalisation_fails_on_indicator_column(candles):
    report = check_lookahead(FullSampleZScore(), candles)
    assert not report.ok
    assert "zscore" in report.columns
    assert report.first is not None and report.first.row == 0  # the mean moves every past value


def test_full_sample_volatility_percentile_regime_fails(candles):
    report = check_lookahead(FullSampleVolRegime(), candles)
    assert not report.ok
    assert "vol_pct" in report.columns and "regime" in report.columns
    assert report.first is not None and report.first.column == "vol_pct"


def test_centered_window_caught_by_perturbation_alone(candles):
    report = check_lookahead(CenteredMean(window=9), candles, prefixes=[], perturb=True)
    assert report.prefixes_checked == 0 and not report.ok
    assert {d.check for d in report.differences} == {"perturb"}
    assert "smooth" in report.columns


def test_lookahead_check_without_perturbation_still_catches_peek(candles):
    report = check_lookahead(PeekNextClose(), candles, perturb=False, prefixes=5)
    assert not report.ok and report.perturbations_checked == 0


def test_raise_for_lookahead_raises_strategy_error_with_summary(candles):
    report = check_lookahead(PeekNextClose(), candles, prefixes=5, perturb=False)
    with pytest.raises(StrategyError, match="(?s)peek_next_close .*LOOK-AHEAD"):
        report.raise_for_lookahead()
    check_lookahead(create_strategy("sma_cross"), candles, prefixes=5).raise_for_lookahead()


def test_mutating_strategy_caught_by_guard_during_check(candles):
    with pytest.raises(StrategyError, match="altered its input frame"):
        check_lookahead(AddsColumnInPlace(), candles)


def test_cut_points_cover_spread_and_tail():
    points = cut_points(1000, 50)
    assert points[0] == 1 and points[-5:] == [995, 996, 997, 998, 999]
    assert 45 <= len(points) <= 50 and points == sorted(set(points))
    assert cut_points(10, "all") == list(range(1, 10))
    assert cut_points(1, 50) == []


@pytest.mark.parametrize("bad", [0, "some", [0, 5], [5, 1000]])
def test_cut_points_invalid_request_rejected(bad):
    with pytest.raises(ConfigurationError, match="prefix"):
        cut_points(1000, bad)


def test_perturb_future_keeps_past_and_valid_ohlc(candles):
    rng = np.random.default_rng(0)
    out = perturb_future(candles, 1000, rng)
    assert out.head(1000).equals(candles.head(1000))
    future = out.slice(1000)
    assert not future["close"].equals(candles["close"].slice(1000))
    assert future.select((pl.col("high") >= pl.max_horizontal("open", "close")).all()).item()
    assert future.select((pl.col("low") <= pl.min_horizontal("open", "close")).all()).item()
    assert out.schema == candles.schema


def test_first_difference_tolerates_float_rounding_not_real_change():
    a = pl.DataFrame({"ts": [1, 2, 3], "x": [1.0, None, 3.0], "entry": [False, True, False]})
    rounded = a.with_columns(pl.col("x") * (1 + 1e-13))
    assert first_difference(a, rounded, check="prefix", cut=3) is None
    changed = a.with_columns(x=pl.Series([1.0, 2.0, 3.0]))
    diff = first_difference(a, changed, check="prefix", cut=3)
    assert diff is not None and (diff.row, diff.column, diff.full_value, diff.other_value) == (1, "x", None, 2.0)
