from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import talib
from conftest import load_real_candles
from polars.testing import assert_frame_equal

from quantdag.data import clean_candles
from quantdag.errors import ConfigurationError, DataError, StrategyError
from quantdag.features import (
    DEFAULT_INDICATORS,
    INDICATOR_COLUMNS,
    INDICATORS_SCHEMA,
    LOOKBACK_BARS,
    causality_cuts,
    compute_indicators,
    indicator_specs,
    indicators_schema,
    lookback_days,
)
from quantdag.indicators import register_indicator, unregister_indicator

UTC = timezone.utc
WARMUP = {  # leading nulls of each column on gap-free data (TA-Lib lookbacks)
    "sma_20": 19, "sma_50": 49, "ema_12": 11, "ema_26": 25, "rsi_14": 14, "macd": 33, "macd_signal": 33,
    "macd_hist": 33, "bb_upper": 19, "bb_middle": 19, "bb_lower": 19, "atr_14": 14, "adx_14": 27,
}


def _candles(exchange: str, market: str, timeframe: str) -> pl.DataFrame:
    """A shared file as a CANDLES frame; 5m/15m Kraken files are cleaned so their gaps are filled."""
    c = load_real_candles(exchange, market, timeframe)
    raw = c.select(
        pl.lit(exchange).alias("exchange"), pl.lit(market.replace("_", "/")).alias("symbol"),
        pl.lit(timeframe).alias("timeframe"), pl.col("ts").dt.epoch("ms").alias("ts"),
        "open", "high", "low", "close", "volume",
        pl.lit(2_000_000_000_000).cast(pl.Datetime("ms", "UTC")).alias("fetched_at"),
    )
    step = int((c["ts"][1] - c["ts"][0]).total_seconds() * 1000)
    return clean_candles(raw, start=raw["ts"].min(), end=raw["ts"].max() + step).candles


@pytest.fixture(scope="module")
def kraken_1h() -> pl.DataFrame:
    return _candles("kraken", "BTC_USDT", "1h")


def test_compute_indicators_equal_direct_talib_on_real_candles(kraken_1h):
    out = compute_indicators(kraken_1h)
    high, low, close = (kraken_1h[c].to_numpy() for c in ("high", "low", "close"))
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0)
    direct = {
        "sma_20": talib.SMA(close, 20), "sma_50": talib.SMA(close, 50), "ema_12": talib.EMA(close, 12),
        "ema_26": talib.EMA(close, 26), "rsi_14": talib.RSI(close, 14), "macd": macd, "macd_signal": signal,
        "macd_hist": hist, "bb_upper": upper, "bb_middle": middle, "bb_lower": lower,
        "atr_14": talib.ATR(high, low, close, 14), "adx_14": talib.ADX(high, low, close, 14),
    }
    for name, values in direct.items():
        np.testing.assert_array_equal(out[name].fill_null(np.nan).to_numpy(), values, err_msg=name)


def test_compute_indicators_columns_types_and_nulls_only_in_warmup(kraken_1h):
    out = compute_indicators(kraken_1h)
    assert dict(out.schema) == INDICATORS_SCHEMA
    assert out.height == kraken_1h.height
    for name in INDICATOR_COLUMNS:
        column = out[name]
        assert column.is_nan().sum() == 0, name
        assert column.null_count() == WARMUP[name], name
        assert column.head(WARMUP[name]).null_count() == WARMUP[name], name


def test_compute_indicators_markets_do_not_bleed_into_each_other(kraken_1h):
    other = _candles("kraken", "BTC_USD", "1h")
    both = compute_indicators(pl.concat([kraken_1h, other]).sample(fraction=1.0, shuffle=True, seed=1))
    alone = pl.concat([compute_indicators(other), compute_indicators(kraken_1h)])  # BTC/USD sorts first
    assert_frame_equal(both, alone)


def test_compute_indicators_warm_start_drops_context_rows(kraken_1h):
    day = datetime(2023, 2, 1, tzinfo=UTC)
    out = compute_indicators(kraken_1h, warm_start=day)
    assert out["ts"].min() == day
    assert_frame_equal(out, compute_indicators(kraken_1h).filter(pl.col("ts") >= day))


def _day_with_lookback(candles: pl.DataFrame, day: datetime, timeframe: str, days: int | None = None) -> pl.DataFrame:
    """What the pipeline does: the day's candles plus ``lookback_days`` earlier days as context."""
    days = lookback_days(timeframe) if days is None else days
    window = candles.filter((pl.col("ts") >= day - timedelta(days=days)) & (pl.col("ts") < day + timedelta(days=1)))
    return compute_indicators(window, warm_start=day)


def _max_relative_error(got: pl.DataFrame, want: pl.DataFrame) -> float:
    worst = 0.0
    for name in INDICATOR_COLUMNS:
        a, b = got[name].to_numpy(), want[name].to_numpy()
        assert not np.isnan(a).any() and not np.isnan(b).any(), name  # warm on the day's first candle
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3))))
    return worst


@pytest.mark.parametrize(
    ("exchange", "market", "timeframe", "days"),
    [
        ("kraken", "BTC_USDT", "1h", ["2023-02-01", "2023-03-11", "2023-03-31"]),
        ("kraken", "BTC_USDC", "5m", ["2023-01-03", "2023-03-12"]),  # 3027 filled candles
        ("binanceus", "BTC_USD", "1m", ["2023-03-02", "2023-03-10", "2023-03-21"]),
    ],
)
def test_compute_indicators_day_with_lookback_equals_full_history(exchange, market, timeframe, days):
    candles = _candles(exchange, market, timeframe)
    full = compute_indicators(candles)
    for text in days:
        day = datetime.fromisoformat(text).replace(tzinfo=UTC)
        got = _day_with_lookback(candles, day, timeframe)
        want = full.filter((pl.col("ts") >= day) & (pl.col("ts") < day + timedelta(days=1)))
        keys = ["exchange", "symbol", "timeframe", "ts"]
        assert_frame_equal(got.select(keys), want.select(keys))
        assert _max_relative_error(got, want) < 1e-6, text


def test_compute_indicators_short_lookback_would_miss_the_tolerance():
    # Guards the test above: 100 candles of context (instead of LOOKBACK_BARS) is not enough.
    candles = _candles("kraken", "BTC_USDT", "1h")
    day = datetime(2023, 3, 11, tzinfo=UTC)
    window = candles.filter((pl.col("ts") >= day - timedelta(hours=100)) & (pl.col("ts") < day + timedelta(days=1)))
    got = compute_indicators(window, warm_start=day)
    want = compute_indicators(candles).filter((pl.col("ts") >= day) & (pl.col("ts") < day + timedelta(days=1)))
    assert _max_relative_error(got, want) > 1e-6


@pytest.mark.parametrize(
    ("timeframe", "days"), [("1m", 1), ("5m", 2), ("15m", 6), ("1h", 21), ("4h", 84), ("1d", LOOKBACK_BARS)]
)
def test_lookback_days_covers_lookback_bars(timeframe, days):
    assert lookback_days(timeframe) == days


def test_lookback_bars_covers_every_indicator_definition():
    assert LOOKBACK_BARS >= max(WARMUP.values()) + 1
    assert LOOKBACK_BARS >= 2 * 14 - 1 and LOOKBACK_BARS >= 33


def test_lookback_days_unknown_timeframe_raises():
    with pytest.raises(ConfigurationError, match="'3x'"):
        lookback_days("3x")


def test_compute_indicators_duplicate_keys_raise(kraken_1h):
    with pytest.raises(DataError, match="unique"):
        compute_indicators(pl.concat([kraken_1h.head(60), kraken_1h.head(1)]))


def test_compute_indicators_nan_close_raises(kraken_1h):
    with pytest.raises(DataError, match="finite"):
        compute_indicators(kraken_1h.head(60).with_columns(close=pl.lit(float("nan"))))


def test_compute_indicators_empty_frame_gives_typed_empty_frame(kraken_1h):
    out = compute_indicators(kraken_1h.clear())
    assert out.is_empty() and dict(out.schema) == INDICATORS_SCHEMA


# ---- configurable indicator set ----------------------------------------------------------------

TODAYS_COLUMNS = (
    "sma_20", "sma_50", "ema_12", "ema_26", "rsi_14", "macd", "macd_signal", "macd_hist",
    "bb_upper", "bb_middle", "bb_lower", "atr_14", "adx_14",
)


def test_indicator_columns_default_specs_equal_todays_table_columns():
    ddl = (Path(__file__).resolve().parents[2] / "sql" / "create_features_indicators.sql").read_text()
    table = [line.split()[0] for line in ddl.splitlines() if line.strip().endswith("DOUBLE,")]
    assert INDICATOR_COLUMNS == TODAYS_COLUMNS == tuple(table)
    assert tuple(c for s in DEFAULT_INDICATORS for c in s.columns) == TODAYS_COLUMNS


def test_compute_indicators_extra_talib_specs_equal_direct_talib(kraken_1h):
    specs = indicator_specs([
        {"columns": {"slowk": "stoch_k", "slowd": "stoch_d"}, "function": "STOCH"},
        {"column": "obv", "function": "OBV"},
        {"column": "engulfing", "function": "CDLENGULFING"},
        {"column": "vol_sma_10", "function": "SMA", "inputs": {"price": "volume"}, "params": {"timeperiod": 10}},
    ])
    out = compute_indicators(kraken_1h, specs=specs)
    assert dict(out.schema) == indicators_schema(specs) and out.columns[4:] == ["stoch_k", "stoch_d", "obv", "engulfing", "vol_sma_10"]
    o, h, lo, c, v = (kraken_1h[x].to_numpy() for x in ("open", "high", "low", "close", "volume"))
    k, d = talib.STOCH(h, lo, c)
    direct = {"stoch_k": k, "stoch_d": d, "obv": talib.OBV(c, v), "engulfing": talib.CDLENGULFING(o, h, lo, c), "vol_sma_10": talib.SMA(v, 10)}
    for name, values in direct.items():
        np.testing.assert_array_equal(out[name].fill_null(np.nan).to_numpy(), values.astype(np.float64), err_msg=name)


@pytest.fixture
def user_indicators():
    names = []

    def reg(f=None, **kw):
        wrapped = register_indicator(f, **kw) if f is not None else register_indicator(**kw)
        names.append(kw.get("name") or getattr(f, "__name__", None))
        return wrapped

    yield reg
    for n in names:
        unregister_indicator(n)


def test_compute_indicators_user_indicator_gets_one_market_and_nan_becomes_null(kraken_1h, user_indicators):
    seen = []

    def typical(candles: pl.DataFrame, window: int = 3) -> np.ndarray:
        seen.append(candles["symbol"].unique().to_list())
        tp = ((candles["high"] + candles["low"] + candles["close"]) / 3).to_numpy()
        return talib.SMA(tp, window)

    user_indicators(typical)
    specs = indicator_specs([{"column": "tp_4", "function": "typical", "params": {"window": 4}}])
    other = _candles("kraken", "BTC_USD", "1h")
    out = compute_indicators(pl.concat([kraken_1h, other]), specs=specs).filter(pl.col("symbol") == "BTC/USDT")
    assert all(s in (["BTC/USD"], ["BTC/USDT"]) for s in seen)
    assert out["tp_4"].null_count() == 3 and out["tp_4"].is_nan().sum() == 0
    want = talib.SMA(((kraken_1h["high"] + kraken_1h["low"] + kraken_1h["close"]) / 3).to_numpy(), 4)
    np.testing.assert_array_equal(out["tp_4"].fill_null(np.nan).to_numpy(), want)


def test_compute_indicators_user_mapping_outputs_fill_their_columns(kraken_1h, user_indicators):
    def channel(candles: pl.DataFrame, window: int = 5) -> dict[str, pl.Series]:
        return {"upper": candles["high"].rolling_max(window), "lower": candles["low"].rolling_min(window)}

    user_indicators(channel, outputs=("upper", "lower"))
    specs = indicator_specs([{"columns": {"lower": "chan_low", "upper": "chan_high"}, "function": "channel"}])
    out = compute_indicators(kraken_1h, specs=specs)
    assert out.columns[4:] == ["chan_low", "chan_high"]
    assert_frame_equal(out.select(a="chan_high"), kraken_1h.select(a=pl.col("high").rolling_max(5)))


@pytest.mark.parametrize(
    ("body", "row"),
    [
        (lambda c: c["close"].shift(-1), None),  # one candle ahead: shows on each prefix's last row
        (lambda c: c["close"] - c["close"].mean(), 0),  # full-sample mean: differs from the first row
    ],
)
def test_compute_indicators_lookahead_user_indicator_raises_naming_indicator_column_candle(kraken_1h, user_indicators, body, row):
    def peeker(candles: pl.DataFrame) -> pl.Series:
        return body(candles)

    user_indicators(peeker)
    specs = indicator_specs([{"column": "peek", "function": "peeker"}])
    first = causality_cuts(kraken_1h.height)[0]
    ts = kraken_1h["ts"][first - 1 if row is None else row]
    with pytest.raises(StrategyError, match=rf"indicator 'peeker' looks ahead: column 'peek' at candle ts={re.escape(str(ts))} "):
        compute_indicators(kraken_1h, specs=specs)
    assert compute_indicators(kraken_1h, specs=specs, check_causality=False).height == kraken_1h.height


def test_compute_indicators_user_indicator_wrong_length_raises_naming_it(kraken_1h, user_indicators):
    user_indicators(lambda candles: candles["close"].head(10), name="short_one")
    specs = indicator_specs([{"column": "s", "function": "short_one"}])
    with pytest.raises(StrategyError, match=r"indicator 'short_one', column 's': returned shape \(10,\) for 2160 candles"):
        compute_indicators(kraken_1h, specs=specs)


def test_compute_indicators_user_indicator_failure_raises_naming_it(kraken_1h, user_indicators):
    user_indicators(lambda candles: 1 / 0, name="broken")
    with pytest.raises(StrategyError, match="indicator 'broken' failed on 2160 candles: ZeroDivisionError"):
        compute_indicators(kraken_1h, specs=indicator_specs([{"column": "b", "function": "broken"}]))


def test_lookback_days_long_period_or_explicit_lookback_bars_extends_lookback():
    assert lookback_days("1h", indicator_specs([{"column": "s", "function": "SMA", "params": {"timeperiod": 1000}}])) == 42  # 999 / 24
    assert lookback_days("1h", (*DEFAULT_INDICATORS, *indicator_specs([{"column": "e", "function": "EMA", "lookback_bars": 2400}]))) == 100
    assert lookback_days("1h", indicator_specs([{"column": "s", "function": "SMA", "params": {"timeperiod": 5}}])) == 21  # floor: LOOKBACK_BARS
