"""DSR, PBO (CSCV), walk-forward windows, search and heatmap."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from conftest import load_real_candles
from scipy import stats

from quantdag.errors import ConfigurationError, DataError
from quantdag.optimize import (
    deflated_sharpe,
    deflated_sharpe_from_returns,
    expected_max_sharpe,
    optimize_strategy,
    pbo_cscv,
    walk_forward,
    windows,
)


@pytest.fixture(scope="module")
def kraken() -> pl.DataFrame:
    return load_real_candles("kraken", "BTC_USDT", "1h")


def test_dsr_matches_direct_formula():
    sr, n_obs, n_trials, var, skew, kurt = 0.08, 1000, 50, 0.0009, -0.3, 5.0
    g = 0.5772156649015329
    sr0 = math.sqrt(var) * ((1 - g) * stats.norm.ppf(1 - 1 / 50) + g * stats.norm.ppf(1 - 1 / (50 * math.e)))
    z = (sr - sr0) * math.sqrt(n_obs - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    assert expected_max_sharpe(n_trials, var) == pytest.approx(sr0, rel=1e-14)
    assert deflated_sharpe(sr, n_obs, n_trials, var, skew, kurt) == pytest.approx(stats.norm.cdf(z), rel=1e-12)
    assert expected_max_sharpe(1, var) == 0.0


def test_dsr_of_best_noise_strategy_is_low_and_of_real_edge_high():
    rng = np.random.default_rng(1)
    r = rng.normal(0.0, 0.01, (2000, 200))
    sr = r.mean(0) / r.std(0, ddof=1)
    best = int(np.argmax(sr))
    res = deflated_sharpe_from_returns(r[:, best], 200, sr)
    from quantdag.optimize import probabilistic_sharpe

    assert probabilistic_sharpe(sr[best], 0.0, 2000) > 0.95  # nominally significant...
    assert res.dsr < 0.5  # ...deflated away
    edge = rng.normal(0.002, 0.01, 2000)  # per-period Sharpe ~0.2
    assert deflated_sharpe_from_returns(edge, 200, sr).dsr > 0.99


def test_pbo_noise_near_half_and_edge_low():
    # pure noise: the in-sample winner is a coin flip out of sample (PBO ~ 0.5 on average)
    pbos = [pbo_cscv(np.random.default_rng(s).normal(0.0, 0.01, (1600, 40)), n_blocks=10).pbo for s in range(8)]
    assert 0.35 <= float(np.mean(pbos)) <= 0.65
    noise = np.random.default_rng(2).normal(0.0, 0.01, (1600, 40))
    edge = noise.copy()
    edge[:, 7] += 0.003
    assert pbo_cscv(edge, n_blocks=10).pbo < 0.05
    with pytest.raises(ConfigurationError, match="n_blocks"):
        pbo_cscv(noise, n_blocks=5)
    with pytest.raises(DataError, match="too few"):
        pbo_cscv(noise[:10], n_blocks=10)


def test_windows_rolling_vs_anchored():
    assert windows(100, 40, 20) == [(0, 40, 40, 60), (20, 60, 60, 80), (40, 80, 80, 100)]
    assert windows(100, 40, 20, anchored=True) == [(0, 40, 40, 60), (0, 60, 60, 80), (0, 80, 80, 100)]
    assert windows(105, 40, 20)[-1] == (60, 100, 100, 105)
    with pytest.raises(DataError, match="too few"):
        windows(50, 40, 20)


@pytest.mark.parametrize("anchored", [False, True])
def test_walk_forward_stitched_equity_continuous(kraken, anchored):
    grid = {"fast": [5, 10, 20], "slow": [30, 60]}
    wf = walk_forward(kraken, "sma_cross", grid, train=600, test=300, anchored=anchored, min_trades=0)
    assert wf.windows.height == len(windows(kraken.height, 600, 300, anchored))
    assert wf.oos_equity.height == sum(d - c for _, _, c, d in windows(kraken.height, 600, 300, anchored))
    assert wf.oos_equity["ts"].is_sorted() and wf.oos_equity["ts"][0] == kraken["ts"][600]
    # each window starts from the previous one's final equity
    finals = wf.windows["oos_final_equity"].to_list()
    assert wf.oos_equity["equity"][-1] == pytest.approx(finals[-1], rel=1e-12)
    if anchored:
        assert set(wf.windows["is_start"]) == {0}
    else:
        assert wf.windows["is_start"].to_list() == [300 * k for k in range(wf.windows.height)]
    assert math.isfinite(wf.is_oos_ratio)


def test_walk_forward_too_few_candles(kraken):
    with pytest.raises(DataError, match="too few"):
        walk_forward(kraken.head(500), "sma_cross", {"fast": [5], "slow": [30]}, train=400, test=200)
    with pytest.raises(DataError, match="training window"):
        walk_forward(kraken, "sma_cross", {"fast": [5], "slow": [300]}, train=200, test=100)


@pytest.mark.parametrize("search", ["grid", "random", "bayes"])
def test_optimize_strategy(kraken, search, tmp_path):
    res = optimize_strategy(kraken, "sma_cross", search=search, grid={"fast": [5, 10, 15, 20], "slow": [30, 50, 80]} if search == "grid" else None,
                            n_trials=12, objective="sharpe", min_trades=3, pbo_blocks=8)  # fmt: skip
    assert res.results.height >= 1
    best = res.best["params"]
    assert best["fast"] < best["slow"]
    ok = res.results.filter(pl.col("n_trades") >= 3)
    assert res.best["metrics"]["sharpe"] == ok["sharpe"].max()
    assert 0.0 <= res.dsr.dsr <= 1.0
    assert res.pbo is not None and 0.0 <= res.pbo.pbo <= 1.0
    import json

    json.dumps(res.summary())
    if search == "grid":
        png = res.heatmap_png(tmp_path / "h.png")
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "h.png").stat().st_size > 1000


def test_optimize_bad_inputs(kraken):
    with pytest.raises(ConfigurationError, match="sharp"):
        optimize_strategy(kraken, "sma_cross", objective="sharp")
    with pytest.raises(ConfigurationError, match="search"):
        optimize_strategy(kraken, "sma_cross", search="anneal")
    with pytest.raises(ConfigurationError, match="no combination"):
        optimize_strategy(kraken, "sma_cross", grid={"fast": [50], "slow": [20]})


@pytest.mark.parametrize("seed", range(12))
def test_pbo_logits_in_batches_equal_the_one_split_at_a_time_reference_bit_for_bit(seed):
    import itertools
    import random

    from quantdag.optimize.robustness import _logits, _logits_reference, block_stats

    rng = np.random.default_rng(seed)
    n_blocks = int(rng.choice([2, 4, 8, 10, 16]))
    r = rng.normal(0.0, 0.01, (int(rng.integers(4 * n_blocks, 2500)), int(rng.integers(2, 220))))
    if seed % 3 == 0:
        r[:, : r.shape[1] // 2] = 0.0  # undefined Sharpe ratios (-inf) and ties in the ranks
    if seed % 4 == 1:
        r = np.round(r, 3)
    blocks = block_stats(r, n_blocks)
    splits = list(itertools.combinations(range(n_blocks), n_blocks // 2))
    if len(splits) > 600:
        pick = random.Random(seed)
        splits = sorted({tuple(sorted(pick.sample(range(n_blocks), n_blocks // 2))) for _ in range(600)})
    assert np.array_equal(_logits(blocks, splits, n_blocks, batch=97), _logits_reference(blocks, splits, n_blocks))
