"""The generator: stylized facts, seasonality, the stablecoin peg and its depegs, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from quantdag.sim import DEFAULT_MARKETS, MarketModel, SimClock
from quantdag.sim.markets import check_universe
from quantdag.sim.paths import (
    DEPEG_ERA_DAYS,
    MS_PER_DAY,
    depeg_episode,
    depeg_episodes,
    generate,
    initial_state,
    is_weekend,
)

from .support import GENESIS, NOW


def _log_returns(model: MarketModel, symbol: str, tf: str = "1m") -> np.ndarray:
    close = model.klines(symbol, tf, GENESIS, GENESIS + 30 * MS_PER_DAY)["close"].to_numpy()
    return np.diff(np.log(close))


def _autocorr(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float((x[:-lag] * x[lag:]).mean() / (x * x).mean())


def test_returns_1m_fat_tailed_excess_kurtosis_positive(model: MarketModel) -> None:
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"):
        r = _log_returns(model, symbol)
        r = r - r.mean()
        excess_kurtosis = (r**4).mean() / (r**2).mean() ** 2 - 3.0
        assert excess_kurtosis > 3.0, symbol


def test_returns_1m_volatility_clusters_abs_returns_autocorrelated(model: MarketModel) -> None:
    r = _log_returns(model, "BTC/USDT")
    abs_acf = [_autocorr(np.abs(r), lag) for lag in (1, 5, 30)]
    assert min(abs_acf) > 0.05
    assert abs(_autocorr(r, 1)) < 0.05  # while returns themselves are close to uncorrelated


def test_returns_1m_btc_eth_correlated_through_common_factor(model: MarketModel) -> None:
    btc, eth = _log_returns(model, "BTC/USDT"), _log_returns(model, "ETH/USDT")
    assert np.corrcoef(btc, eth)[0, 1] > 0.3


def test_daily_volatility_in_realistic_range(model: MarketModel) -> None:
    daily = np.diff(np.log(model.klines("BTC/USDT", "1d", GENESIS, NOW)["close"].to_numpy()))
    assert 0.005 < daily.std() < 0.15


def test_volume_intraday_and_weekday_seasonality(model: MarketModel) -> None:
    minutes = model.klines("BTC/USDT", "1m", GENESIS, GENESIS + 28 * MS_PER_DAY)["volume"].to_numpy()
    by_day_hour = minutes.reshape(28, 24, 60).sum(axis=2)
    hourly = by_day_hour.mean(axis=0)
    assert hourly[14:17].mean() > 1.5 * hourly[2:5].mean()  # US afternoon busier than Asian night
    days = np.arange(GENESIS // MS_PER_DAY, GENESIS // MS_PER_DAY + 28)
    daily = by_day_hour.sum(axis=1)
    assert daily[is_weekend(days)].mean() < 0.9 * daily[~is_weekend(days)].mean()


def test_is_weekend_epoch_day_calendar() -> None:
    assert not is_weekend(0)  # 1970-01-01 was a Thursday
    assert is_weekend(2) and is_weekend(3) and not is_weekend(4)


def test_stablecoin_pegged_tightly_outside_depegs(model: MarketModel) -> None:
    frame = model.klines("USDC/USDT", "1m", GENESIS, NOW)
    close = frame["close"].to_numpy()
    quiet = np.ones(close.size, dtype=bool)
    for episode in model.depeg_episodes("USDC/USDT", GENESIS, NOW):
        t = frame["open_time"].to_numpy()
        quiet &= (t < episode.start_ms) | (t > episode.end_ms)
    assert quiet.sum() > 10_000
    assert np.abs(close[quiet] - 1.0).max() < 0.002
    assert np.median(np.abs(close[quiet] - 1.0)) <= 0.0002


def test_depeg_episode_seeded_one_per_era_and_visible_in_candles() -> None:
    era = (GENESIS // MS_PER_DAY) // DEPEG_ERA_DAYS
    episode = depeg_episode(7, "USDC/USDT", era)
    assert episode == depeg_episode(7, "USDC/USDT", era)
    assert episode != depeg_episode(8, "USDC/USDT", era)
    assert 0.02 <= episode.depth <= 0.08 and episode.start_ms < episode.trough_ms < episode.end_ms
    era_start = era * DEPEG_ERA_DAYS * MS_PER_DAY
    assert episode in depeg_episodes(7, "USDC/USDT", era_start, era_start + DEPEG_ERA_DAYS * MS_PER_DAY)

    genesis = (episode.start_ms // MS_PER_DAY - 2) * MS_PER_DAY
    m = MarketModel(7, genesis_ms=genesis, clock=SimClock(episode.trough_ms + 6 * 3_600_000))
    assert m.depeg_episodes() == [episode]
    usdc = m.klines("USDC/USDT", "1m", episode.trough_ms - 3_600_000, episode.trough_ms + 3_600_000)
    assert usdc["low"].min() < 1.0 - 0.6 * episode.depth
    before = m.klines("USDC/USDT", "1m", genesis, episode.start_ms)
    assert before["low"].min() > 0.998
    vol_during = usdc["volume"].mean()
    assert vol_during > 3 * before["volume"].mean()
    # the cross market follows its legs: BTC/USDC = BTC/USDT / USDC/USDT, so it jumps up
    btc_usdt = m.klines("BTC/USDT", "1m", genesis, m.now_ms())["close"].to_numpy()
    usdc_usdt = m.klines("USDC/USDT", "1m", genesis, m.now_ms())["close"].to_numpy()
    btc_usdc = m.klines("BTC/USDC", "1m", genesis, m.now_ms())["close"].to_numpy()
    assert np.abs(btc_usdc / (btc_usdt / usdc_usdt) - 1.0).max() < 0.002


def test_generate_split_into_chunks_equals_one_call() -> None:
    markets = check_universe(DEFAULT_MARKETS)
    day = GENESIS // MS_PER_DAY
    whole, state_whole = generate(markets, 11, day, 3, initial_state(markets))
    first, state = generate(markets, 11, day, 1, initial_state(markets))
    rest, state_split = generate(markets, 11, day + 1, 2, state)
    for symbol in whole:
        assert np.array_equal(whole[symbol], np.hstack([first[symbol], rest[symbol]])), symbol
    assert state_whole == state_split


def test_generate_400_days_six_markets_fast() -> None:
    MarketModel(21, clock=SimClock(NOW), history_days=1).warm()  # load the numba kernels first
    fresh = MarketModel(22, clock=SimClock(NOW))  # default: 400 days of history
    assert (NOW - fresh.genesis_ms) // MS_PER_DAY == 400
    t0 = time.perf_counter()
    fresh.warm()
    elapsed = time.perf_counter() - t0
    assert fresh.klines("BTC/USDT", "1m").height == 400 * 1440 + 13 * 60 + 38
    assert elapsed < 6.0, f"400 days x 6 markets took {elapsed:.2f} s"


@pytest.mark.parametrize("symbol", [m.symbol for m in DEFAULT_MARKETS])
def test_default_markets_start_near_plausible_prices(symbol: str) -> None:
    spec = next(m for m in DEFAULT_MARKETS if m.symbol == symbol)
    m = MarketModel(7, genesis_ms=GENESIS, clock=SimClock(GENESIS + 3_600_000))
    first = m.klines(symbol, "1m", GENESIS, GENESIS + 60_000)["open"][0]
    expected = spec.start_price if spec.kind != "cross" else 60_000.0
    assert first == pytest.approx(expected, rel=0.01)
