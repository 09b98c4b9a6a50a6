"""quantdag.backtest.run / run_targets on hand-computed cases: fills, costs, stops, sides, sizing."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from quantdag.backtest import BacktestSettings, realised_vol, run, run_targets
from quantdag.indicators import atr

from .helpers import NO_COSTS, candles, flags

PRICES = [100.0, 101.0, 102.0, 104.0, 108.0, 107.0]


# -- fill timing ------------------------------------------------------------------------------
def test_run_default_fill_next_open_uses_open_after_signal():
    c = candles(PRICES, close=[p + 0.5 for p in PRICES])
    res = run(c, flags(6, 1), flags(6, 3), **NO_COSTS)
    t = res.trades.row(0, named=True)
    assert (t["entry_bar"], t["exit_bar"]) == (2, 4)
    assert t["entry_price"] == pytest.approx(102.0, rel=1e-12) and t["exit_price"] == pytest.approx(108.0, rel=1e-12)
    assert res.final_equity == pytest.approx(10_000 * 108.0 / 102.0, rel=1e-12)


def test_run_fill_close_uses_signal_candle_close():
    c = candles(PRICES, close=[p + 0.5 for p in PRICES])
    res = run(c, flags(6, 1), flags(6, 3), fill="close", **NO_COSTS)
    t = res.trades.row(0, named=True)
    assert (t["entry_bar"], t["exit_bar"]) == (1, 3)
    assert t["entry_price"] == pytest.approx(101.5, rel=1e-12) and t["exit_price"] == pytest.approx(104.5, rel=1e-12)
    assert res.final_equity == pytest.approx(10_000 * 104.5 / 101.5, rel=1e-12)


def test_run_signal_on_last_candle_next_open_never_fills():
    res = run(candles(PRICES), flags(6, 5), flags(6), **NO_COSTS)
    assert res.trades.height == 0 and res.final_equity == 10_000.0


def test_run_exit_and_entry_on_same_candle_exit_wins():
    res = run(candles(PRICES), flags(6, 0, 2), flags(6, 2), **NO_COSTS)
    t = res.trades
    assert t.height == 1 and t["exit_bar"][0] == 3 and t["exit_reason"][0] == "signal"
    assert res.equity["position"][4] == 0.0  # no re-entry from the entry on bar 2


# -- costs ------------------------------------------------------------------------------------
def test_run_fee_and_slippage_arithmetic_matches_hand_computation():
    fee, slip = 0.001, 0.0005
    res = run(candles(PRICES), flags(6, 0), flags(6, 3), fee=fee, slippage=slip)
    buy = 101.0 * (1 + slip)
    qty = 10_000 / (buy * (1 + fee))
    sell = 108.0 * (1 - slip)
    fees = qty * buy * fee + qty * sell * fee
    final = 10_000 - qty * buy - qty * buy * fee + qty * sell - qty * sell * fee
    t = res.trades.row(0, named=True)
    assert t["size"] == pytest.approx(qty, rel=1e-12)
    assert t["entry_price"] == pytest.approx(buy, rel=1e-12) and t["exit_price"] == pytest.approx(sell, rel=1e-12)
    assert t["fees"] == pytest.approx(fees, rel=1e-12)
    assert t["slippage"] == pytest.approx(qty * 101.0 * slip + qty * 108.0 * slip, rel=1e-12)
    assert res.final_equity == pytest.approx(final, rel=1e-12)
    assert t["pnl"] == pytest.approx(final - 10_000, rel=1e-9)
    assert res.metrics["fees_paid"] == pytest.approx(fees, rel=1e-12)


def test_run_defaults_charge_costs():
    s = BacktestSettings()
    assert (s.fill, s.fee, s.slippage, s.direction, s.sizing) == ("next_open", 0.001, 0.0005, "long", "all_in")
    res = run(candles(PRICES), flags(6, 0), flags(6, 3))
    assert res.metrics["fees_paid"] > 0 and res.metrics["slippage_paid"] > 0
    assert res.final_equity < 10_000 * 108.0 / 101.0


def test_run_volatility_slippage_scales_with_fill_candle_range():
    c = candles([100, 100, 100, 100], high=[100, 110, 100, 100], low=[100, 90, 100, 100])
    res = run(
        c, flags(4, 0), flags(4, 1), fee=0.0, slippage=0.001, slippage_model="volatility", slippage_vol_factor=0.1
    )
    t = res.trades.row(0, named=True)
    assert t["entry_price"] == pytest.approx(100 * (1 + 0.001 + 0.1 * 20 / 100), rel=1e-12)  # range of candle 1
    assert t["exit_price"] == pytest.approx(100 * (1 - 0.001), rel=1e-12)  # candle 2 has no range


def test_run_volume_cap_cuts_entry_and_spreads_exit():
    c = candles([100.0] * 6, volume=[1000, 40, 30, 10, 1000, 1000])
    res = run(c, flags(6, 0), flags(6, 1), max_volume_share=0.5, **NO_COSTS)
    t = res.trades.row(0, named=True)
    assert t["size"] == pytest.approx(20.0)  # all-in asks for 100 units; 0.5 * 40 may fill
    assert t["exit_bar"] == 3  # 15 units on candle 2, the last 5 on candle 3
    assert res.equity["position"].to_list()[:4] == pytest.approx([0.0, 20.0, 5.0, 0.0])
    assert t["exit_reason"] == "signal"


# -- stops ------------------------------------------------------------------------------------
def stop_candles(bar: tuple[float, float, float, float]) -> pl.DataFrame:
    o, h, lo, cl = zip((100, 100, 100, 100), (100, 100, 100, 100), bar, (100, 100, 100, 100), strict=True)
    return candles(o, high=h, low=lo, close=cl)


@pytest.mark.parametrize(
    ("bar", "kw", "price", "reason"),
    [
        ((100, 101, 94, 99), {"stop_loss": 0.05}, 95.0, "stop_loss"),
        ((100, 111, 96, 105), {"take_profit": 0.1}, 110.0, "take_profit"),
        ((100, 111, 94, 105), {"stop_loss": 0.05, "take_profit": 0.1}, 95.0, "stop_loss"),  # both: worse first
        ((90, 92, 85, 88), {"stop_loss": 0.05, "take_profit": 0.1}, 90.0, "stop_loss"),  # gap through: open
        ((115, 116, 112, 113), {"stop_loss": 0.05, "take_profit": 0.1}, 115.0, "take_profit"),
    ],
)
def test_run_stops_intrabar_long_exit_at_level_or_open(bar, kw, price, reason):
    res = run(stop_candles(bar), flags(4, 0), None, **NO_COSTS, **kw)
    t = res.trades.row(0, named=True)
    assert (t["exit_bar"], t["exit_price"], t["exit_reason"]) == (2, pytest.approx(price), reason)


def test_run_trailing_stop_follows_high_from_previous_candles_only():
    c = candles(
        [100, 100, 110, 120, 125, 119],
        high=[100, 100, 120, 121, 130, 119],
        low=[100, 100, 109, 119, 118, 100],
        close=[100, 100, 119, 120, 125, 105],
    )
    res = run(c, flags(6, 0), None, trailing_stop=0.1, **NO_COSTS)
    t = res.trades.row(0, named=True)
    # candle 4: peak so far 121 -> level 108.9; its high 130 only counts from candle 5: 117
    assert (t["exit_bar"], t["exit_reason"]) == (5, "trailing_stop")
    assert t["exit_price"] == pytest.approx(130 * 0.9)  # candle 5 opens at 119 above 117, its low crosses it
    assert res.trades.height == 1


def test_run_trailing_stop_exit_price_at_level():
    c = candles([100, 100, 110, 112], high=[100, 100, 120, 113], low=[100, 100, 109, 100], close=[100, 100, 115, 105])
    res = run(c, flags(4, 0), None, trailing_stop=0.1, **NO_COSTS)
    assert res.trades["exit_price"][0] == pytest.approx(120 * 0.9)


def test_run_next_open_entry_candle_range_can_trigger_stop():
    c = candles([100, 100, 100, 100], high=[100, 100, 101, 100], low=[100, 100, 94, 100], close=[100, 100, 99, 100])
    res = run(c, flags(4, 1), None, stop_loss=0.05, **NO_COSTS)
    t = res.trades.row(0, named=True)
    assert (t["entry_bar"], t["exit_bar"], t["exit_price"]) == (2, 2, pytest.approx(95.0))


def test_run_fill_close_entry_candle_range_does_not_trigger_stop():
    c = candles([100, 100, 100, 100], high=[100, 101, 100, 100], low=[100, 90, 100, 93], close=[100, 100, 100, 100])
    res = run(c, flags(4, 1), None, stop_loss=0.05, fill="close", **NO_COSTS)
    t = res.trades.row(0, named=True)
    assert (t["entry_bar"], t["exit_bar"], t["exit_price"]) == (1, 3, pytest.approx(95.0))


def test_run_short_stop_loss_above_and_take_profit_below():
    up = candles([100, 100, 100, 100], high=[100, 100, 106, 100], low=[100, 100, 99, 100])
    res = run(up, flags(4, 0), None, direction="short", stop_loss=0.05, **NO_COSTS)
    assert res.trades.row(0, named=True)["exit_price"] == pytest.approx(105.0)
    down = candles([100, 100, 100, 100], high=[100, 100, 101, 100], low=[100, 100, 89, 100])
    res = run(down, flags(4, 0), None, direction="short", take_profit=0.1, **NO_COSTS)
    t = res.trades.row(0, named=True)
    assert (t["exit_price"], t["exit_reason"], t["side"]) == (pytest.approx(90.0), "take_profit", "short")


# -- directions -------------------------------------------------------------------------------
def test_run_short_only_profits_when_price_falls():
    c = candles([100, 100, 90, 80, 80])
    res = run(c, flags(5, 0), flags(5, 2), direction="short", **NO_COSTS)
    t = res.trades.row(0, named=True)
    qty = 10_000 / 100
    assert t["side"] == "short" and t["size"] == pytest.approx(qty)
    assert t["pnl"] == pytest.approx(qty * 20) and res.final_equity == pytest.approx(12_000)


def test_run_long_short_reverses_on_opposite_entry():
    c = candles([100, 100, 110, 99, 99, 99])
    res = run(c, flags(6, 0), None, short_entries=flags(6, 1), short_exits=flags(6, 3), direction="both", **NO_COSTS)
    t = res.trades
    assert t["side"].to_list() == ["long", "short"]
    assert t["exit_reason"].to_list() == ["reverse", "signal"]
    assert t["exit_bar"][0] == t["entry_bar"][1] == 2
    long_cash = 10_000 / 100 * 110
    assert res.final_equity == pytest.approx(long_cash + long_cash / 110 * (110 - 99))


def test_run_short_signals_without_direction_both_raise():
    from quantdag.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="direction='both'"):
        run(candles(PRICES), flags(6, 0), flags(6, 2), short_entries=flags(6, 1))


# -- sizing -----------------------------------------------------------------------------------
def test_run_fixed_fraction_spends_fraction_of_equity():
    res = run(candles(PRICES), flags(6, 0), flags(6, 3), sizing="fixed_fraction", size=0.25, fee=0.001, slippage=0.0)
    assert res.trades["size"][0] == pytest.approx(0.25 * 10_000 / (101 * 1.001), rel=1e-12)


def test_run_fixed_notional_buys_amount_and_is_capped_by_cash():
    res = run(candles(PRICES), flags(6, 0), flags(6, 3), sizing="fixed_notional", size=2_000.0, **NO_COSTS)
    assert res.trades["size"][0] == pytest.approx(2_000 / 101)
    capped = run(candles(PRICES), flags(6, 0), flags(6, 3), sizing="fixed_notional", size=50_000.0, **NO_COSTS)
    assert capped.trades["size"][0] == pytest.approx(10_000 / 101)


def test_run_atr_risk_sizes_by_atr_on_signal_candle():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    c = candles(close, high=close * 1.01, low=close * 0.99, close=close)
    res = run(c, flags(60, 30), None, sizing="atr_risk", risk_per_trade=0.01, atr_mult=2.0, atr_period=14, **NO_COSTS)
    a = atr(c["high"], c["low"], c["close"], 14)[30]
    assert res.trades["size"][0] == pytest.approx(0.01 * 10_000 / (2.0 * a), rel=1e-12)


def test_run_atr_risk_no_entry_during_atr_warm_up():
    c = candles(PRICES * 5)
    res = run(c, flags(30, 3), None, sizing="atr_risk", **NO_COSTS)
    assert res.trades.height == 0


def test_run_target_vol_sizes_by_realised_vol_capped_at_leverage():
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 80)))
    c = candles(close)
    res = run(c, flags(80, 50), None, sizing="target_vol", target_vol=0.2, vol_window=30, **NO_COSTS)
    lr = np.diff(np.log(close))[50 - 30 : 50]
    vol = np.std(lr, ddof=1) * math.sqrt(8760)
    assert realised_vol(close, 30, 8760.0)[50] == pytest.approx(vol, rel=1e-12)
    assert res.trades["size"][0] == pytest.approx(min(0.2 / vol, 1.0) * 10_000 / close[51], rel=1e-9)
    high = run(c, flags(80, 50), None, sizing="target_vol", target_vol=50.0, **NO_COSTS)
    assert high.trades["size"][0] == pytest.approx(10_000 / close[51], rel=1e-12)  # capped at 1x


# -- end of data ------------------------------------------------------------------------------
def test_run_open_position_at_end_marked_and_flagged():
    res = run(candles(PRICES), flags(6, 0, 2), flags(6, 1), fee=0.001, slippage=0.0)
    t = res.trades
    assert t["is_open"].to_list() == [False, True]
    last = t.row(1, named=True)
    assert last["exit_reason"] == "end_of_data" and last["exit_price"] == pytest.approx(107.0) and last["exit_bar"] == 5
    assert res.final_equity == pytest.approx(res.equity["cash"][-1] + last["size"] * 107.0)
    assert res.final_equity - 10_000 == pytest.approx(t["pnl"].sum(), rel=1e-12)
    assert res.metrics["n_open_trades"] == 1 and res.metrics["n_closed_trades"] == 1


# -- target-position form ---------------------------------------------------------------------
def test_run_targets_zero_one_equals_all_in_signals():
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 300)))
    c = candles(
        np.r_[100, close[:-1]],
        high=np.maximum(np.r_[100, close[:-1]], close) * 1.01,
        low=np.minimum(np.r_[100, close[:-1]], close) * 0.99,
        close=close,
    )
    entries, exits = rng.random(300) < 0.05, rng.random(300) < 0.05
    state = pl.select(
        pl.when(pl.Series(exits))
        .then(0.0)
        .when(pl.Series(entries))
        .then(1.0)
        .otherwise(None)
        .forward_fill()
        .fill_null(0.0)
    ).to_series()
    by_signals = run(c, entries, exits, stop_loss=None)
    by_target = run_targets(c, state)
    assert by_target.final_equity == pytest.approx(by_signals.final_equity, rel=1e-12)
    assert by_target.trades.drop("exit_reason").equals(by_signals.trades.drop("exit_reason"))


def test_run_targets_half_then_flip_short():
    c = candles([100, 100, 100, 100, 100, 100])
    res = run_targets(c, [0.5, None, -1.0, None, 0.0, None], direction="both", **NO_COSTS)
    pos = res.equity["position"].to_list()
    assert pos[1] == pytest.approx(50.0) and pos[3] == pytest.approx(-100.0) and pos[5] == 0.0
    assert res.trades["side"].to_list() == ["long", "short"]


def test_run_targets_long_direction_rejects_negative_target():
    from quantdag.errors import DataError

    with pytest.raises(DataError, match=r"target\[2\] = -0.5"):
        run_targets(candles(PRICES), [0, 1, -0.5, 0, 0, 0])


def test_run_targets_rejects_sizing_setting():
    from quantdag.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="fixed_fraction"):
        run_targets(candles(PRICES), [0, 1, 1, 0, 0, 0], sizing="fixed_fraction", size=0.5)


# -- result frames ----------------------------------------------------------------------------
def test_run_equity_frame_has_documented_columns_and_drawdown():
    res = run(candles(PRICES), flags(6, 0), flags(6, 4), **NO_COSTS)
    eq = res.equity
    assert eq.columns == ["ts", "equity", "cash", "position", "drawdown"]
    assert eq.height == 6 and (eq["drawdown"] <= 0).all()
    assert eq["ts"].dtype == pl.Datetime("ms", "UTC")
    assert res.settings.as_dict()["fee"] == 0.0


def test_run_settings_object_and_keyword_override():
    s = BacktestSettings(fee=0.002, fill="close")
    res = run(candles(PRICES), flags(6, 0), flags(6, 3), settings=s, slippage=0.0)
    assert (res.settings.fee, res.settings.fill, res.settings.slippage) == (0.002, "close", 0.0)


def test_public_input_helpers_build_what_run_uses():
    from quantdag.backtest import enums
    from quantdag.backtest.engine import candle_ms, entry_sizes, load_market
    from quantdag.timeframes import MS_PER_YEAR

    c = candles(PRICES * 5)
    arrays = load_market(c)
    s = BacktestSettings(sizing="target_vol", target_vol=0.5, vol_window=5)
    res = run(c, flags(30, 2, 12), flags(30, 8), settings=s)
    assert candle_ms(arrays, s) == res.bar_ms == 3_600_000.0
    assert candle_ms(arrays, s.replace(timeframe="4h")) == 4 * 3_600_000.0
    code, size = entry_sizes(arrays, s, MS_PER_YEAR / res.bar_ms)
    assert code == enums.SIZE_PERCENT and size.shape == (30,) and np.isnan(size[:5]).all()
    np.testing.assert_array_equal(size, np.minimum(0.5 / realised_vol(arrays.close, 5, res.periods_per_year), 1.0))
    assert res.metrics["rejected_size_zero"] == 1  # the entry of candle 2 is in the volatility warm-up
    assert entry_sizes(arrays, BacktestSettings(), 1.0)[1].tolist() == [1.0]
    code, size = entry_sizes(arrays, BacktestSettings(sizing="fixed_notional", size=500.0), 1.0)
    assert code == enums.SIZE_VALUE and size.tolist() == [500.0]
