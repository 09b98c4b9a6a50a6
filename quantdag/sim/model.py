"""A seeded, random-access-consistent model of a few crypto spot markets.

The model
---------
Everything derives from one 1-minute base path per market, generated in UTC day blocks from
genesis up to "now" and cached; the path grows as the clock passes midnight. Coarser candles
(3m ... 1d, all aligned to UTC epoch multiples) are exact aggregations of their 1-minute candles, so
timeframes always agree. Prices are integer ticks and volumes integer lot steps; strings served over
HTTP are exact. The candle for (seed, symbol, timeframe, open time) never depends on the window,
page or order in which it is asked for.

- **Common factor**: a crypto-wide return with GARCH(1,1) volatility clustering (alpha 0.06,
  beta 0.93 per minute), Student-t(5) innovations (fat tails), a slow daily log-volatility regime
  (AR(1), phi 0.97) and occasional common jumps.
- **Crypto markets** (BTC, ETH, SOL, BNB against USDT): ``beta * factor`` plus their own
  GARCH-t-regime part and idiosyncratic jumps, scaled to each market's daily volatility (so BTC/ETH
  1-minute returns correlate around 0.8).
- **Stablecoin** (USDC/USDT): a tight Ornstein-Uhlenbeck peg around 1.0 (sd ~1e-4). Once per
  epoch-aligned 180-day era it depegs at a seeded time: a fast drop of 2-8 % over 20-120 minutes,
  then an exponential recovery (time constant 6-36 h) with elevated noise and volume.
  :meth:`MarketModel.depeg_episodes` lists them, so event detectors can be checked.
- **Cross markets** (BTC/USDC): numerator leg / denominator leg times a tiny mean-reverting basis,
  so BTC/USDC rises when USDC depegs, as it did in March 2023.
- **Candles**: open = previous close; high/low are the extremes of a Brownian bridge between the
  closes with the minute's variance; volume follows an intraday (peak 15:00 UTC) and weekday
  (weekends -30 %) profile and rises with volatility; trade counts and taker-buy volume follow.
- **Now**: candles opening after ``clock()`` do not exist; the candle containing now is served
  *open*: its close, high and low so far (from a seeded within-minute path that ends exactly at the
  final candle) and its partial volume, just as a real exchange does.
- **Books and tickers**: the order book sits around the current price with the market's spread
  (at least a tick) and depth growing away from the touch; tickers are rolling 24 h statistics.

Default genesis is 400 days before the model's construction, floored to a UTC day. Because the
price path is a cumulative sum from genesis, two models with different genesis disagree; pass
``genesis_ms`` explicitly when history must survive restarts on different days.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from quantdag.errors import ConfigurationError, DataError
from quantdag.sim.clock import SimClock
from quantdag.sim.markets import DEFAULT_MARKETS, SimMarket, check_universe
from quantdag.sim.paths import (
    BASE_COLUMNS,
    MINUTES_PER_DAY,
    MS_PER_DAY,
    MS_PER_MINUTE,
    DepegEpisode,
    depeg_episodes,
    generate,
    initial_state,
    series_rng,
)
from quantdag.timeframes import timeframe_ms

#: Timeframes served: every multiple of a minute that divides a day, as Binance spells them.
TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
#: Quote volumes are kept in units of 1e-8 of the quote asset (Binance's 8 decimals).
QUOTE_DECIMALS = 8

_COLUMNS = (*BASE_COLUMNS, "quote", "taker_quote")
_IDX = {name: i for i, name in enumerate(_COLUMNS)}
_CHUNK_DAYS = 32  # generation chunk: bounds temporary memory
_GROWTH_DAYS = 7  # spare capacity added when the history grows past its buffer
_TRADE_ID_BASE = 100_000_000


@dataclass(frozen=True)
class KlineUnits:
    """Candles as exact integers: prices in ticks, volumes in lot steps, quote in 1e-8 units."""

    symbol: str
    timeframe_ms: int
    price_decimals: int
    qty_decimals: int
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray
    trades: np.ndarray
    taker_base: np.ndarray
    taker_quote: np.ndarray
    closed: np.ndarray

    def __len__(self) -> int:
        return int(self.open_time.size)

    def to_frame(self) -> pl.DataFrame:
        """Float prices and volumes, ``open_time``/``close_time`` in ms, ``closed`` flag."""
        # dividing by an exact power of ten gives the float nearest the decimal, as parsing it would
        p, q, qq = 10.0**self.price_decimals, 10.0**self.qty_decimals, 10.0**QUOTE_DECIMALS
        return pl.DataFrame(
            {
                "open_time": self.open_time,
                "open": self.open / p,
                "high": self.high / p,
                "low": self.low / p,
                "close": self.close / p,
                "volume": self.volume / q,
                "close_time": self.open_time + (self.timeframe_ms - 1),
                "quote_volume": self.quote_volume / qq,
                "trades": self.trades,
                "taker_buy_base": self.taker_base / q,
                "taker_buy_quote": self.taker_quote / qq,
                "closed": self.closed,
            },
            schema={
                "open_time": pl.Int64, "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                "close": pl.Float64, "volume": pl.Float64, "close_time": pl.Int64, "quote_volume": pl.Float64,
                "trades": pl.Int64, "taker_buy_base": pl.Float64, "taker_buy_quote": pl.Float64,
                "closed": pl.Boolean,
            },
        )


@dataclass(frozen=True)
class Ticker:
    """Rolling 24 h statistics at ``time_ms``, with the top of the book."""

    symbol: str
    time_ms: int
    open_time_ms: int
    last: float
    last_qty: float
    open: float
    high: float
    low: float
    prev_close: float
    volume: float
    quote_volume: float
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    first_trade_id: int
    last_trade_id: int
    count: int

    @property
    def vwap(self) -> float:
        return self.quote_volume / self.volume if self.volume > 0 else self.last


@dataclass(frozen=True)
class OrderBook:
    """Price levels ``[[price, qty], ...]``: bids best (highest) first, asks best (lowest) first."""

    symbol: str
    time_ms: int
    last_update_id: int
    bids: np.ndarray
    asks: np.ndarray


class _Store:
    """Append-only int64 columns; views handed out stay valid when the buffer grows."""

    def __init__(self, n_cols: int) -> None:
        self.data = np.empty((n_cols, 0), dtype=np.int64)
        self.size = 0

    def reserve(self, capacity: int) -> None:
        if capacity > self.data.shape[1]:
            grown = np.empty((self.data.shape[0], capacity), dtype=np.int64)
            grown[:, : self.size] = self.data[:, : self.size]
            self.data = grown

    def append(self, block: np.ndarray) -> None:
        need = self.size + block.shape[1]
        if need > self.data.shape[1]:
            self.reserve(max(need, 2 * self.data.shape[1]))
        self.data[:, self.size : need] = block
        self.size = need


def _quote_units(cols: np.ndarray, spec: SimMarket) -> tuple[np.ndarray, np.ndarray]:
    """Quote volume (typical price x volume) and taker-buy quote volume of 1-minute rows."""
    o, h, low, c, v, _, tb = cols[:7]
    scale = 10.0 ** (QUOTE_DECIMALS - spec.price_decimals - spec.qty_decimals)
    quote = np.rint(v * ((o + h + low + c) * 0.25 * scale)).astype(np.int64)
    taker = np.rint(quote * (tb / np.maximum(v, 1))).astype(np.int64)
    return quote, taker


class MarketModel:
    """Seeded markets served by the simulated exchange; thread-safe.

    Parameters
    ----------
    seed:
        Non-negative int; every price, volume, book and depeg derives from it.
    markets:
        The universe (default :data:`~quantdag.sim.markets.DEFAULT_MARKETS`).
    genesis_ms:
        First candle, a multiple of a UTC day. Default: ``history_days`` before now, floored to a day.
    clock:
        Milliseconds since the epoch; default a wall-clock :class:`~quantdag.sim.clock.SimClock`.
    history_days:
        Default history length when ``genesis_ms`` is None.

    Raises
    ------
    ConfigurationError
        On a bad seed, universe, genesis (not day-aligned or after now) or clock.
    """

    def __init__(
        self,
        seed: int = 7,
        markets: tuple[SimMarket, ...] = DEFAULT_MARKETS,
        genesis_ms: int | None = None,
        clock: Callable[[], int] | None = None,
        *,
        history_days: int = 400,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigurationError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = seed
        self._markets = check_universe(markets)
        self._by_symbol = {m.symbol: m for m in self._markets}
        self._by_id = {m.id: m for m in self._markets}
        self._clock: Callable[[], int] = clock if clock is not None else SimClock()
        if not callable(self._clock):
            raise ConfigurationError(f"clock must be callable returning ms, got {clock!r}")
        now = self.now_ms()
        if genesis_ms is None:
            if isinstance(history_days, bool) or not isinstance(history_days, int) or history_days < 1:
                raise ConfigurationError(f"history_days must be a positive int, got {history_days!r}")
            genesis_ms = (now - history_days * MS_PER_DAY) // MS_PER_DAY * MS_PER_DAY
        if isinstance(genesis_ms, bool) or not isinstance(genesis_ms, int) or genesis_ms % MS_PER_DAY:
            raise ConfigurationError(f"genesis_ms must be an int multiple of a day (UTC midnight), got {genesis_ms!r}")
        if genesis_ms > now:
            raise ConfigurationError(f"genesis_ms {genesis_ms} is after the clock's now {now}")
        self.genesis_ms = genesis_ms
        self._genesis_day = genesis_ms // MS_PER_DAY
        self._lock = threading.RLock()
        self._days = 0
        self._state = initial_state(self._markets)
        self._base = {m.symbol: _Store(len(BASE_COLUMNS)) for m in self._markets}
        self._day_trades = {m.symbol: [0] for m in self._markets}  # trades before each generated day
        self._agg: dict[tuple[str, int], _Store] = {}

    def __repr__(self) -> str:
        return f"MarketModel(seed={self.seed}, genesis_ms={self.genesis_ms}, markets={len(self._markets)})"

    # ---- basics ----------------------------------------------------------------------------

    @property
    def clock(self) -> Callable[[], int]:
        return self._clock

    @property
    def markets(self) -> tuple[SimMarket, ...]:
        return self._markets

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(m.symbol for m in self._markets)

    def now_ms(self) -> int:
        """The clock's current time."""
        return int(self._clock())

    def spec(self, symbol: str) -> SimMarket:
        """A market by unified symbol (``"BTC/USDT"``) or exchange id (``"BTCUSDT"``).

        Raises
        ------
        ConfigurationError
            If the market is not listed.
        """
        spec = self._by_symbol.get(symbol) or self._by_id.get(symbol)
        if spec is None:
            raise ConfigurationError(f"unknown market {symbol!r}; listed: {', '.join(self.symbols)}")
        return spec

    def warm(self, now_ms: int | None = None) -> None:
        """Generate the whole history up to now, so the first request does not pay for it."""
        self._ensure(self.now_ms() if now_ms is None else now_ms)

    def depeg_episodes(
        self, symbol: str = "USDC/USDT", start_ms: int | None = None, end_ms: int | None = None
    ) -> list[DepegEpisode]:
        """Scheduled depegs of a stablecoin market overlapping ``[start_ms, end_ms)`` (default: genesis..now)."""
        spec = self.spec(symbol)
        if spec.kind != "stable":
            raise ConfigurationError(f"{spec.symbol} is not a stablecoin market")
        lo = self.genesis_ms if start_ms is None else start_ms
        hi = self.now_ms() if end_ms is None else end_ms
        return depeg_episodes(self.seed, spec.symbol, lo, hi)

    # ---- generation and caches -------------------------------------------------------------

    def _ensure(self, t_ms: int) -> None:
        """Generate every day block up to the one containing ``t_ms``."""
        need = (t_ms - self.genesis_ms) // MS_PER_DAY + 1
        if need <= self._days:
            return
        with self._lock:
            headroom = 0 if self._days == 0 else _GROWTH_DAYS  # as the clock runs, grow in steps
            for store in self._base.values():
                store.reserve((need + headroom) * MINUTES_PER_DAY)
            while self._days < need:
                n = min(_CHUNK_DAYS, need - self._days)
                lo, hi = self._days * MINUTES_PER_DAY, (self._days + n) * MINUTES_PER_DAY
                out = {symbol: store.data[:, lo:hi] for symbol, store in self._base.items()}
                _, self._state = generate(self._markets, self.seed, self._genesis_day + self._days, n, self._state, out)
                for symbol, store in self._base.items():
                    store.size = hi
                    per_day = store.data[5, lo:hi].reshape(n, MINUTES_PER_DAY).sum(axis=1)
                    history = self._day_trades[symbol]
                    history.extend((history[-1] + np.cumsum(per_day)).tolist())
                self._days += n

    def _rows(self, spec: SimMarket, tf_ms: int, lo: int, hi: int) -> np.ndarray:
        """Columns of :data:`_COLUMNS` for candle indices ``[lo, hi)`` counted from genesis (closed candles)."""
        if tf_ms == MS_PER_MINUTE:
            base = self._base[spec.symbol].data[:, lo:hi]
            quote, taker = _quote_units(base, spec)
            return np.vstack([base, quote, taker])
        key = (spec.symbol, tf_ms)
        with self._lock:
            store = self._agg.setdefault(key, _Store(len(_COLUMNS)))
            per_day = MS_PER_DAY // tf_ms
            done_days = store.size // per_day
            if done_days < self._days:
                k = tf_ms // MS_PER_MINUTE
                base = self._base[spec.symbol].data[:, done_days * MINUTES_PER_DAY : self._days * MINUTES_PER_DAY]
                quote, taker = _quote_units(base, spec)
                full = np.vstack([base, quote, taker]).reshape(len(_COLUMNS), -1, k)
                agg = full.sum(axis=2)
                agg[0] = full[0, :, 0]
                agg[1] = full[1].max(axis=1)
                agg[2] = full[2].min(axis=1)
                agg[3] = full[3, :, -1]
                store.reserve((self._days + _GROWTH_DAYS) * per_day)
                store.append(agg)
            return store.data[:, lo:hi]

    # ---- candles ---------------------------------------------------------------------------

    def kline_units(
        self, symbol: str, timeframe: str, start_ms: int, end_ms: int, *, now_ms: int | None = None
    ) -> KlineUnits:
        """Candles whose open time is in ``[start_ms, end_ms)`` and not after now; the last may be open.

        Raises
        ------
        ConfigurationError
            On an unknown market or an unsupported timeframe.
        """
        spec = self.spec(symbol)
        tf = _timeframe(timeframe)
        now = self.now_ms() if now_ms is None else now_ms
        if now < self.genesis_ms:
            raise DataError(f"the clock ({now}) is before genesis ({self.genesis_ms}): no market yet")
        current = now // tf * tf
        first = max(-(-start_ms // tf) * tf, self.genesis_ms)
        last = min((end_ms - 1) // tf * tf, current)
        n = (last - first) // tf + 1 if last >= first else 0
        self._ensure(now)
        lo = (first - self.genesis_ms) // tf
        if n == 0:
            cols = np.empty((len(_COLUMNS), 0), dtype=np.int64)
        elif last == current:
            closed = self._rows(spec, tf, lo, lo + n - 1)
            cols = np.hstack([closed, self._open_candle(spec, tf, now)[:, None]])
        else:
            cols = self._rows(spec, tf, lo, lo + n)
        open_time = first + tf * np.arange(n, dtype=np.int64)
        closed_flags = open_time + tf <= now
        i = _IDX
        return KlineUnits(
            spec.symbol, tf, spec.price_decimals, spec.qty_decimals, open_time,
            cols[i["open"]], cols[i["high"]], cols[i["low"]], cols[i["close"]], cols[i["volume"]],
            cols[i["quote"]], cols[i["trades"]], cols[i["taker_base"]], cols[i["taker_quote"]], closed_flags,
        )

    def klines(
        self, symbol: str, timeframe: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> pl.DataFrame:
        """Candles with open time in ``[start_ms, end_ms)`` (default genesis..now) as a polars frame.

        Raises
        ------
        ConfigurationError
            On an unknown market or an unsupported timeframe.
        """
        now = self.now_ms()
        lo = self.genesis_ms if start_ms is None else start_ms
        hi = now + 1 if end_ms is None else end_ms
        return self.kline_units(symbol, timeframe, lo, hi, now_ms=now).to_frame()

    def _open_candle(self, spec: SimMarket, tf: int, now: int) -> np.ndarray:
        """The candle containing ``now`` as it stands at ``now`` (columns of :data:`_COLUMNS`)."""
        minute = now // MS_PER_MINUTE
        first_minute = now // tf * tf // MS_PER_MINUTE
        g = self.genesis_ms // MS_PER_MINUTE
        done = self._rows(spec, MS_PER_MINUTE, first_minute - g, minute - g)
        partial = self._partial_minute(spec, minute, (now - minute * MS_PER_MINUTE) // 1000)
        rows = np.hstack([done, partial[:, None]])
        i = _IDX
        out = rows.sum(axis=1)
        out[i["open"]] = rows[i["open"], 0]
        out[i["high"]] = rows[i["high"]].max()
        out[i["low"]] = rows[i["low"]].min()
        out[i["close"]] = rows[i["close"], -1]
        return out

    def _partial_minute(self, spec: SimMarket, minute: int, second: int) -> np.ndarray:
        """A 1-minute candle ``second`` seconds after it opened, consistent with its final form.

        A seeded 61-point path (one per second) runs from the open to the close through the final
        high and low; the values so far are its running extremes, so they only ever widen and the
        path ends exactly at the closed candle.
        """
        row = self._base[spec.symbol].data[:, minute - self.genesis_ms // MS_PER_MINUTE]
        o, h, low, c, v, n, tb = (int(x) for x in row)
        rng = series_rng(self.seed, "intra:" + spec.symbol, minute)
        t_hi, t_lo = (int(t) for t in rng.choice(np.arange(1, 60), size=2, replace=False))
        noise = rng.standard_normal(61)
        weights = rng.exponential(size=60)
        anchors = {0: o, 60: c}
        if h > max(o, c):
            anchors[t_hi] = h
        if low < min(o, c):
            anchors[t_lo] = low
        times = np.array(sorted(anchors))
        values = np.array([anchors[t] for t in times], dtype=float)
        grid = np.arange(61)
        path = np.interp(grid, times, values)
        # bridge-shaped wiggle between anchors: zero at every anchor
        seg = np.searchsorted(times, grid, side="right") - 1
        seg = np.minimum(seg, times.size - 2)
        span = times[seg + 1] - times[seg]
        frac = (grid - times[seg]) / span
        path += noise * np.sin(np.pi * frac) * (h - low) * 0.15
        path = np.clip(np.rint(path), low, h).astype(np.int64)
        path[times] = values.astype(np.int64)
        k = int(second)
        share = float(np.concatenate(([0.0], np.cumsum(weights) / weights.sum()))[k])
        vol = int(v * share)
        out = np.array([o, int(path[: k + 1].max()), int(path[: k + 1].min()), int(path[k]), vol,
                        int(n * share), min(int(tb * share), vol)], dtype=np.int64)
        quote, taker = _quote_units(out[:, None], spec)
        return np.concatenate([out, quote, taker])

    # ---- tickers and books -----------------------------------------------------------------

    def _trade_id_before(self, spec: SimMarket, minute_index: int) -> int:
        """Id of the first trade in the minute ``minute_index`` (counted from genesis)."""
        day, offset = divmod(minute_index, MINUTES_PER_DAY)
        start = day * MINUTES_PER_DAY
        before = self._day_trades[spec.symbol][day] + int(self._base[spec.symbol].data[5, start : start + offset].sum())
        return _TRADE_ID_BASE + before

    def ticker(self, symbol: str, *, now_ms: int | None = None) -> Ticker:
        """Rolling 24 h statistics up to now, with the best bid and ask.

        Raises
        ------
        ConfigurationError
            On an unknown market.
        """
        spec = self.spec(symbol)
        now = self.now_ms() if now_ms is None else now_ms
        day_ago = now - MS_PER_DAY
        candles = self.kline_units(spec.symbol, "1m", day_ago + 1, now + 1, now_ms=now)
        if len(candles) == 0:
            raise DataError(f"{spec.symbol} has no trades before {now}")
        p, q, qq = 10.0**spec.price_decimals, 10.0**spec.qty_decimals, 10.0**QUOTE_DECIMALS
        first_index = (int(candles.open_time[0]) - self.genesis_ms) // MS_PER_MINUTE
        first_id = self._trade_id_before(spec, first_index)
        count = int(candles.trades.sum())
        book = self.order_book(spec.symbol, 1, now_ms=now)
        rng = series_rng(self.seed, "lastqty:" + spec.symbol, now // 1000)
        last_qty = max(1, round(spec.avg_trade_size * rng.exponential() * q)) / q
        return Ticker(
            symbol=spec.symbol,
            time_ms=now,
            open_time_ms=day_ago,
            last=int(candles.close[-1]) / p,
            last_qty=last_qty,
            open=int(candles.open[0]) / p,
            high=int(candles.high.max()) / p,
            low=int(candles.low.min()) / p,
            prev_close=int(candles.open[0]) / p,
            volume=int(candles.volume.sum()) / q,
            quote_volume=int(candles.quote_volume.sum()) / qq,
            bid=float(book.bids[0, 0]),
            bid_qty=float(book.bids[0, 1]),
            ask=float(book.asks[0, 0]),
            ask_qty=float(book.asks[0, 1]),
            first_trade_id=first_id,
            last_trade_id=first_id + count - 1,
            count=count,
        )

    def order_book(self, symbol: str, depth: int = 100, *, now_ms: int | None = None) -> OrderBook:
        """A book of ``depth`` levels a side around the current price, fixed within each second.

        Raises
        ------
        ConfigurationError
            On an unknown market or a depth outside 1..5000.
        """
        spec = self.spec(symbol)
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 5000:
            raise ConfigurationError(f"order book depth must be an int in [1, 5000], got {depth!r}")
        now = self.now_ms() if now_ms is None else now_ms
        minute_open = now // MS_PER_MINUTE * MS_PER_MINUTE
        last = int(self.kline_units(spec.symbol, "1m", minute_open, now + 1, now_ms=now).close[-1])
        rng = series_rng(self.seed, "book:" + spec.symbol, now // 1000)
        spread = max(1, round(last * spec.spread_bps * 1e-4 * rng.lognormal(0.0, 0.3)))
        best_bid = last - int(rng.integers(0, spread + 1))
        gap_mean = max(0.0, last * 5e-6 - 1.0)
        sides = []
        for best, sign in ((best_bid, -1), (best_bid + spread, 1)):
            gaps = 1 + rng.poisson(gap_mean, depth)
            gaps[0] = 0
            prices = best + sign * np.cumsum(gaps)
            size = spec.avg_trade_size * 3.0 * (1.0 + np.arange(depth) / 25.0) * rng.lognormal(0.0, 1.0, depth)
            qty = np.maximum(1, np.rint(size * 10**spec.qty_decimals))
            keep = prices >= 1
            price_scale, qty_scale = 10.0**spec.price_decimals, 10.0**spec.qty_decimals
            sides.append(np.column_stack([prices[keep] / price_scale, qty[keep] / qty_scale]))
        return OrderBook(spec.symbol, now, now, sides[0], sides[1])


def _timeframe(timeframe: str) -> int:
    if timeframe not in TIMEFRAMES:
        raise ConfigurationError(f"unsupported timeframe {timeframe!r}; the simulator serves {', '.join(TIMEFRAMES)}")
    return timeframe_ms(timeframe)


def timeframe_supported(timeframe: str) -> bool:
    """Whether the simulator serves candles of this Binance interval."""
    return timeframe in TIMEFRAMES


def floor_ms(t_ms: int, step_ms: int) -> int:
    """``t_ms`` rounded down to a multiple of ``step_ms``."""
    return t_ms // step_ms * step_ms
