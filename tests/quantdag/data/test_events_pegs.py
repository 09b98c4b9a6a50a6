"""Depegs measured against stablecoin references: the pipeline's markets are all quoted in USDT."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from quantdag.data import EventConfig, detect_events
from quantdag.errors import ConfigurationError

from .support import T0, hourly_frame as _frame, real_candles

UTC = timezone.utc
HOUR = 3_600_000
DAY_MS = 86_400_000
SIM_GENESIS_MS = 1_735_689_600_000  # 2025-01-01, the pipeline's simulated exchange genesis


def _walk(n: int = 800, *, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A BTC-like random walk of hourly closes and volumes."""
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n))), 10.0 * np.exp(rng.normal(0.0, 0.3, n))


def _of(events: pl.DataFrame, kind: str) -> pl.DataFrame:
    return events.filter(pl.col("event_type") == kind)


def _at(i: int) -> datetime:
    return datetime.fromtimestamp((T0 + i * HOUR) / 1000, tz=UTC)


def _peg(n: int, *, seed: int, drop: slice | None = None, level: float = 0.93) -> np.ndarray:
    """A stablecoin's price: 1.0 with 2 bp noise, at ``level`` over ``drop``."""
    price = 1.0 + np.random.default_rng(seed).normal(0.0, 2e-4, n)
    if drop is not None:
        price[drop] = level
    return price


def test_detect_events_usdc_usdt_at_93_cents_is_a_usdc_depeg_in_usdt_and_a_healthy_peg_none():
    n = 300
    btc, volume = _walk(n=n)
    sick = _peg(n, seed=2, drop=slice(100, 130))
    healthy = _peg(n, seed=3)
    candles = pl.concat([
        _frame("BTC/USDT", btc, volume, exchange="sick"),
        _frame("USDC/USDT", sick, np.full(n, 1e6), exchange="sick"),
        _frame("BTC/USDT", btc, volume, exchange="healthy"),
        _frame("USDC/USDT", healthy, np.full(n, 1e6), exchange="healthy"),
    ])
    events = _of(detect_events(candles), "depeg")
    # USDT outranks USDC as a reference: the pair's drop is USDC's, never USDT at 1.075 USDC
    assert events.select("exchange", "symbol", "ts_start", "ts_end", "severity").rows() == [
        ("sick", "USDC/USDT", _at(101), _at(130), "critical")
    ]
    assert events["score"].item() == pytest.approx(-700, abs=1)
    assert events["detail"].item().startswith("USDC at 0.93 USDT at peak")


def test_detect_events_depeg_implied_from_btc_usdc_and_btc_usdt_is_usdc_in_usdt():
    btc, volume = _walk()
    usdc_in_usdt = _peg(btc.size, seed=4, drop=slice(400, 450))
    candles = pl.concat([_frame("BTC/USDT", btc, volume), _frame("BTC/USDC", btc / usdc_in_usdt, volume)])
    events = _of(detect_events(candles), "depeg")
    assert events.select("symbol", "ts_start", "ts_end", "severity").rows() == [
        ("USDC/USDT", _at(401), _at(450), "critical")
    ]
    assert "implied from BTC/USDT÷BTC/USDC" in events["detail"].item()


def test_detect_events_depeg_reference_rank_follows_config_and_inverts_the_pair():
    n = 300
    candles = _frame("USDC/USDT", _peg(n, seed=5, drop=slice(100, 130)), np.full(n, 1e6))
    config = EventConfig(peg_references=("USD", "USDC", "USDT"))  # trust USDC over USDT
    events = _of(detect_events(candles, config=config), "depeg")
    assert events.select("symbol", "severity").rows() == [("USDT/USDC", "critical")]
    assert events["score"].item() == pytest.approx((1 / 0.93 - 1) * 1e4, abs=1)
    assert "implied from 1÷USDC/USDT" in events["detail"].item()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"peg_references": ("USD", "USDT", "USD")}, "peg_references lists USD more than once"),
        ({"peg_references": "USD"}, "peg_references must be a tuple"),
        ({"stablecoins": ("USDC", "")}, "stablecoins must be a tuple of asset codes"),
    ],
)
def test_event_config_bad_peg_lists_raise_naming_the_field(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        EventConfig(**kwargs)


@pytest.mark.parametrize(("venue", "timeframe", "trough"), [("kraken", "1h", -800), ("binanceus", "1m", -1200)])
def test_detect_events_real_candles_without_usd_find_usdc_depeg_in_usdt(venue, timeframe, trough):
    # the pipeline's shape: no USD market, only USDT and USDC quotes of BTC on one venue
    candles = pl.concat([real_candles(venue, m, timeframe) for m in ("BTC_USDC", "BTC_USDT")])
    critical = _of(detect_events(candles), "depeg").filter(pl.col("severity") == "critical")
    assert critical["symbol"].to_list() == ["USDC/USDT"]
    row = critical.row(0, named=True)
    assert datetime(2023, 3, 10, tzinfo=UTC) <= row["ts_start"] < datetime(2023, 3, 12, tzinfo=UTC)
    assert datetime(2023, 3, 13, tzinfo=UTC) <= row["ts_end"] < datetime(2023, 3, 14, tzinfo=UTC)
    assert row["score"] < trough


def _sim_candles(model: object, symbol: str) -> pl.DataFrame:
    klines = model.klines(symbol, "1h")  # type: ignore[attr-defined]
    return klines.filter("closed").select(
        pl.lit("sim").alias("exchange"),
        pl.lit(symbol).alias("symbol"),
        pl.lit("1h").alias("timeframe"),
        pl.from_epoch("open_time", time_unit="ms").dt.replace_time_zone("UTC").alias("ts"),
        "open", "high", "low", "close", "volume",
        pl.lit(False).alias("filled"),
    )


def test_detect_events_simulated_exchange_usdc_depeg_found_directly_and_implied():
    from quantdag.sim import MarketModel, SimClock

    # the pipeline's seed and genesis; the first seeded depeg of USDC/USDT is in mid-February 2025
    model = MarketModel(seed=7, genesis_ms=SIM_GENESIS_MS, clock=SimClock(now_ms=SIM_GENESIS_MS + 47 * DAY_MS))
    episode = model.depeg_episodes("USDC/USDT")[0]
    trough = datetime.fromtimestamp(episode.trough_ms / 1000, tz=UTC)
    markets = {s: _sim_candles(model, s) for s in ("BTC/USDT", "ETH/USDT", "BTC/USDC", "USDC/USDT")}
    for present, sources in (
        (list(markets), "BTC/USDT÷BTC/USDC, USDC/USDT"),
        (["BTC/USDT", "ETH/USDT", "BTC/USDC"], "BTC/USDT÷BTC/USDC"),  # no USDC/USDT market: implied only
    ):
        depegs = _of(detect_events(pl.concat([markets[s] for s in present])), "depeg")
        assert depegs["symbol"].to_list() == ["USDC/USDT"], present
        row = depegs.row(0, named=True)
        assert row["ts_start"] <= trough <= row["ts_end"] and row["severity"] == "critical"
        assert row["score"] == pytest.approx(-episode.depth * 1e4, abs=60)
        assert row["detail"].endswith(f"implied from {sources}")
