"""Orders the engine cannot place are counted: ``n_rejected`` and its reasons in ``metrics``."""

from __future__ import annotations

import numpy as np
import pytest

from quantdag.backtest import enums, run, run_targets

from .helpers import NO_COSTS, candles, flags

PRICES = [100.0, 101.0, 102.0, 104.0, 108.0, 107.0]
COUNTS = ("n_rejected", "rejected_size_zero", "rejected_no_cash", "rejected_volume_cap", "n_capped_fills")


def counts(res) -> dict[str, int]:
    m = res.metrics
    assert all(type(m[k]) is int for k in COUNTS)
    assert m["n_rejected"] == m["rejected_size_zero"] + m["rejected_no_cash"] + m["rejected_volume_cap"]
    return {k: m[k] for k in COUNTS}


def test_normal_run_rejects_nothing():
    res = run(candles(PRICES), flags(6, 0, 3), flags(6, 2, 4))
    assert res.metrics["n_trades"] == 2
    assert counts(res) == dict.fromkeys(COUNTS, 0)


def test_size_rounding_to_nothing_never_trades_and_is_counted():
    # 5e-324 quote currency buys 5e-324 / 101 units: 0.0 in float64
    res = run(candles(PRICES), flags(6, 0, 2), flags(6, 1), sizing="fixed_notional", size=5e-324)
    assert res.metrics["n_trades"] == 0 and res.final_equity == 10_000.0
    assert counts(res) == {**dict.fromkeys(COUNTS, 0), "n_rejected": 2, "rejected_size_zero": 2}


def test_entry_during_sizing_warm_up_is_a_size_rejection():
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 40)))
    c = candles(close, high=close * 1.01, low=close * 0.99)
    # ATR(14) is NaN before candle 14: the entry of candle 3 sizes to nothing, that of 20 trades
    res = run(c, flags(40, 3, 20), flags(40, 10), sizing="atr_risk")
    assert res.metrics["n_trades"] == 1 and res.trades["entry_bar"][0] == 21
    assert counts(res) == {**dict.fromkeys(COUNTS, 0), "n_rejected": 1, "rejected_size_zero": 1}


@pytest.mark.parametrize(
    ("prices", "kw"),
    [
        ([100.0, 100.0, 40.0, 40.0, 40.0, 40.0], {"max_leverage": 2.0, "sizing": "fixed_fraction", "size": 2.0}),
        ([100.0, 100.0, 250.0, 250.0, 250.0, 250.0], {"direction": "short"}),
    ],
    ids=["leveraged-long", "short"],
)
def test_entry_without_cash_is_rejected(prices, kw):
    # the first trade loses more than the equity; the account is flat below zero, so later
    # entries cannot be sized (no margin calls are modelled)
    res = run(candles(prices), flags(6, 0, 3, 4), flags(6, 2), fill="close", **kw, **NO_COSTS)
    assert res.metrics["n_trades"] == 1 and res.final_equity < 0
    assert counts(res) == {**dict.fromkeys(COUNTS, 0), "n_rejected": 2, "rejected_no_cash": 2}


def test_target_without_cash_is_rejected():
    tgt = [2.0, None, 0.0, 1.0, None, 0.5]
    res = run_targets(candles([100.0, 100.0, 40.0, 40.0, 40.0, 40.0]), tgt, fill="close", max_leverage=2.0, **NO_COSTS)
    assert res.metrics["n_trades"] == 1 and res.final_equity == pytest.approx(-2_000.0, rel=1e-12)
    assert counts(res) == {**dict.fromkeys(COUNTS, 0), "n_rejected": 2, "rejected_no_cash": 2}


def test_target_zero_while_flat_is_no_order():
    res = run_targets(candles(PRICES), [0.0, None, 0.0, 0.0, None, None], **NO_COSTS)
    assert res.metrics["n_trades"] == 0
    assert counts(res) == dict.fromkeys(COUNTS, 0)


def test_entry_on_a_zero_volume_candle_is_a_volume_rejection():
    c = candles(PRICES, volume=[1e9, 0.0, 1e9, 1e9, 1e9, 1e9])
    res = run(c, flags(6, 0), flags(6, 3), max_volume_share=0.1)
    assert res.metrics["n_trades"] == 0
    assert counts(res) == {**dict.fromkeys(COUNTS, 0), "n_rejected": 1, "rejected_volume_cap": 1}


def test_volume_capped_entry_and_exit_are_counted_per_attempt():
    # entry at the open of 1: ~99 units wanted, 5 allowed (capped); exit from the open of 3:
    # no volume there (refused, pending), 2 units at 4 (capped), the last 3 at 5
    c = candles(PRICES, volume=[10.0, 10.0, 10.0, 0.0, 4.0, 10.0])
    res = run(c, flags(6, 0), flags(6, 2), max_volume_share=0.5, **NO_COSTS)
    t = res.trades.row(0, named=True)
    assert (t["size"], t["exit_bar"], t["is_open"]) == (5.0, 5, False)
    assert list(res.equity["position"]) == [0.0, 5.0, 5.0, 5.0, 3.0, 0.0]
    assert counts(res) == {**dict.fromkeys(COUNTS, 0), "n_rejected": 1, "rejected_volume_cap": 1, "n_capped_fills": 2}


def test_stats_hold_the_kernel_counts():
    c = candles(PRICES, volume=[10.0, 10.0, 10.0, 0.0, 4.0, 10.0])
    res = run(c, flags(6, 0), flags(6, 2), max_volume_share=0.5, **NO_COSTS)
    s = res.stats
    assert s.shape == (enums.N_STATS,)
    assert (s[enums.S_REJ_SIZE], s[enums.S_REJ_CASH], s[enums.S_REJ_VOLUME], s[enums.S_CAPPED]) == (0, 0, 1, 2)
