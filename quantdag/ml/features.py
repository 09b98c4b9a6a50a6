"""Model features: groups of causal, finite-window features, expanded over periods, timeframes and markets.

The feature set is a registry of **feature groups** (:func:`register_feature_group`), in the spirit
of FreqAI's ``feature_engineering_expand_*``: each group turns one market's candles (plus, for
cross-market groups, its peers' aligned closes, and for data groups such as the sentiment
branch's ``sentiment.bars``, their aligned columns) into named columns. :class:`FeatureConfig`
picks the groups and the expansion (periods, higher timeframes, correlated markets).

Two rules make a candle's features honest and reproducible:

* **causal** -- the value at candle ``t`` uses candles ``<= t`` only, and a higher-timeframe
  candle only once it has closed (joined on its last base candle);
* **finite window** -- the value depends on a fixed number of earlier candles
  (:meth:`FeatureConfig.warmup`), computed from scratch (:mod:`quantdag.ml.nb`), never on a
  recursive state (EMA, Wilder's RSI/ADX) seeded at the start of the history. So the features of
  a candle are bit-identical whichever history start or backtest window contains it; recursive
  indicators from ``features.indicators`` are therefore *not* used as model inputs (their value
  depends on the history start to ~1e-6, enough to flip a tree's split).

Candles must be gap-free (``market.candles`` is gap-filled): windows are counted in candles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import polars.selectors as cs

from quantdag.data.event_starts import EVENT_COLUMNS
from quantdag.data.frames import CANDLE_KEY, MARKET_KEY, UTC_MS, require_columns, utc_ms
from quantdag.data.resample import resample
from quantdag.errors import ConfigurationError, DataError
from quantdag.markets import peer_close_column, symbol_tag
from quantdag.ml import nb
from quantdag.timeframes import SUPPORTED, timeframe_ms

#: Groups computed unless configured otherwise (all single-market, so a strategy can compute them).
DEFAULT_GROUPS = ("returns", "volatility", "indicators", "timeframes", "regime", "events", "calendar")


@dataclass(frozen=True)
class FeatureConfig:
    """Which feature groups, over which periods, timeframes and correlated markets.

    Parameters
    ----------
    groups
        Registered group names (:func:`feature_groups`).
    periods
        Look-back lengths in candles each group is expanded over (FreqAI's
        ``indicator_periods_candles``).
    timeframes
        Coarser timeframes resampled from the stored candles (``"4h"``, ``"1d"``).
    correlated
        Peer symbols (same exchange and timeframe) for the ``markets`` group.
    rank_window
        Candles a volatility is ranked against for the regime label.
    jump_sigma
        A 1-candle return beyond this many trailing standard deviations is a jump event.
    """

    groups: tuple[str, ...] = DEFAULT_GROUPS
    periods: tuple[int, ...] = (6, 24, 96)
    timeframes: tuple[str, ...] = ("4h",)
    correlated: tuple[str, ...] = ()
    rank_window: int = 240
    jump_sigma: float = 4.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "periods", tuple(self.periods))
        object.__setattr__(self, "timeframes", tuple(self.timeframes))
        object.__setattr__(self, "correlated", tuple(self.correlated))
        unknown = [g for g in self.groups if g not in _GROUPS]
        if unknown or not self.groups or len(set(self.groups)) != len(self.groups):
            raise ConfigurationError(f"feature groups must be distinct registered names {sorted(_GROUPS)}, got {list(self.groups)}")
        if not self.periods or any(isinstance(p, bool) or not isinstance(p, int) or p < 2 for p in self.periods):
            raise ConfigurationError(f"feature periods must be ints >= 2, got {list(self.periods)}")
        if len(set(self.periods)) != len(self.periods):
            raise ConfigurationError(f"feature periods must be distinct, got {list(self.periods)}")
        bad_tf = [tf for tf in self.timeframes if tf not in SUPPORTED]
        if bad_tf:
            raise ConfigurationError(f"feature timeframes {bad_tf} are not among {SUPPORTED}")
        if isinstance(self.rank_window, bool) or not isinstance(self.rank_window, int) or self.rank_window < 10:
            raise ConfigurationError(f"rank_window must be an int >= 10, got {self.rank_window!r}")
        if not (isinstance(self.jump_sigma, (int, float)) and self.jump_sigma > 0):
            raise ConfigurationError(f"jump_sigma must be > 0, got {self.jump_sigma!r}")
        if "markets" in self.groups and not self.correlated:
            raise ConfigurationError("the 'markets' feature group needs correlated symbols (correlated=...)")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> FeatureConfig:
        """From a JSON/YAML mapping (e.g. a model version's tag); unknown keys are refused."""
        values = dict(values or {})
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(f"unknown feature setting(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready settings (lists for tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @property
    def cross_market(self) -> bool:
        """Whether some group needs other markets' candles (then one market alone is not enough)."""
        return any(_GROUPS[g].cross_market for g in self.groups)

    @property
    def frame_ready(self) -> bool:
        """Whether a strategy's frame can give every input: tables whose columns the frame carries
        (:data:`FRAME_INPUTS`), and the peers' closes, which a strategy asks its frame for
        (:attr:`peers`): then a strategy can compute the features itself."""
        return all(t in FRAME_INPUTS for t in self.inputs)

    @property
    def peers(self) -> tuple[str, ...]:
        """Other markets' symbols the features read (their closes), or () for single-market features."""
        return self.correlated if self.cross_market else ()

    @property
    def inputs(self) -> tuple[str, ...]:
        """Extra tables the groups read besides candles (e.g. ``sentiment.bars``)."""
        return tuple(dict.fromkeys(t for g in self.groups for t in _GROUPS[g].inputs))

    def warmup(self, timeframe: str) -> int:
        """Candles before ``t`` that feature values at ``t`` may depend on (earlier rows are null)."""
        return max(_GROUPS[g].window(self, timeframe_ms(timeframe)) for g in self.groups)


@dataclass(frozen=True)
class MarketData:
    """One market's gap-free candles as arrays, plus aligned peers and extra columns."""

    ts: np.ndarray  # epoch ms, int64
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    timeframe: str
    peers: Mapping[str, np.ndarray] = field(default_factory=dict)  # symbol -> close on the same ts (NaN if absent)
    extra: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)  # table -> column -> values

    @property
    def log_ret(self) -> np.ndarray:
        """1-candle log returns (NaN at row 0)."""
        r = np.full(self.close.shape[0], np.nan)
        r[1:] = np.diff(np.log(self.close))
        return r


Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class FeatureGroup:
    """A named family of features: how to compute it and how much history it needs."""

    name: str
    compute: Callable[[MarketData, FeatureConfig], Columns]
    #: candles of history (base timeframe of ``ms`` milliseconds) a value depends on
    window: Callable[[FeatureConfig, int], int]
    cross_market: bool = False
    #: extra tables (besides candles) the stage must load and align, e.g. ``("sentiment.bars",)``
    inputs: tuple[str, ...] = ()
    description: str = ""


_GROUPS: dict[str, FeatureGroup] = {}


def register_feature_group(group: FeatureGroup) -> FeatureGroup:
    """Make ``group`` available by name (a data branch such as sentiment adds its own).

    Raises
    ------
    ConfigurationError
        If the name is not an identifier or belongs to another group.
    """
    if not group.name.replace("_", "").isalnum():
        raise ConfigurationError(f"feature group name must be an identifier, got {group.name!r}")
    known = _GROUPS.get(group.name)
    if known is not None and known.compute is not group.compute:
        raise ConfigurationError(f"feature group {group.name!r} is already registered")
    _GROUPS[group.name] = group
    return group


def unregister_feature_group(name: str) -> None:
    """Remove a group (tests, notebooks)."""
    _GROUPS.pop(name, None)


def feature_groups() -> dict[str, FeatureGroup]:
    """Registered groups by name."""
    return dict(_GROUPS)


# -- the built-in groups ------------------------------------------------------------------------
def _log_ret_over(close: np.ndarray, p: int) -> np.ndarray:
    out = np.full(close.shape[0], np.nan)
    if close.shape[0] > p:
        out[p:] = np.log(close[p:] / close[:-p])
    return out


def _returns(m: MarketData, cfg: FeatureConfig) -> Columns:
    return {f"ret_{p}": _log_ret_over(m.close, p) for p in cfg.periods}


def _volatility(m: MarketData, cfg: FeatureConfig) -> Columns:
    r = m.log_ret
    hl = np.log(m.high / m.low)
    out: Columns = {}
    for p in cfg.periods:
        out[f"vol_{p}"] = nb.rolling_std_nb(r, p)
        out[f"range_{p}"] = nb.rolling_mean_nb(hl, p)
    return out


def _indicators(m: MarketData, cfg: FeatureConfig) -> Columns:
    c, v = m.close, m.volume
    d = np.full(c.shape[0], np.nan)
    d[1:] = np.diff(c)
    gain, loss = np.where(d > 0, d, 0.0), np.where(d < 0, -d, 0.0)
    gain[:1] = np.nan
    loss[:1] = np.nan
    out: Columns = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for p in cfg.periods:
            mean, std = nb.rolling_mean_nb(c, p), nb.rolling_std_nb(c, p)
            hi, lo = nb.rolling_max_nb(m.high, p), nb.rolling_min_nb(m.low, p)
            g, lo_sum = nb.rolling_mean_nb(gain, p), nb.rolling_mean_nb(loss, p)
            vm, vs = nb.rolling_mean_nb(v, p), nb.rolling_std_nb(v, p)
            out[f"sma_ratio_{p}"] = c / mean - 1.0
            out[f"zscore_{p}"] = np.where(std > 0, (c - mean) / std, 0.0)
            out[f"rsi_{p}"] = np.where(g + lo_sum > 0, 100.0 * g / (g + lo_sum), 50.0)  # Cutler's RSI (simple means)
            out[f"stoch_{p}"] = np.where(hi > lo, (c - lo) / (hi - lo), 0.5)
            out[f"volume_z_{p}"] = np.where(vs > 0, (v - vm) / vs, 0.0)
            for name in (f"zscore_{p}", f"rsi_{p}", f"stoch_{p}", f"volume_z_{p}"):
                out[name][np.isnan(mean if name != f"volume_z_{p}" else vm)] = np.nan
            out[f"stoch_{p}"][np.isnan(hi)] = np.nan
            out[f"rsi_{p}"][np.isnan(g)] = np.nan
    return out


def timeframe_name(ms: int) -> str:
    for tf in SUPPORTED:
        if timeframe_ms(tf) == ms:
            return tf
    raise DataError(f"candles {ms} ms apart are not of a supported timeframe {SUPPORTED}")


def _timeframes(m: MarketData, cfg: FeatureConfig) -> Columns:
    base_ms = timeframe_ms(m.timeframe)
    out: Columns = {}
    n = m.ts.shape[0]
    for tf in cfg.timeframes:
        tf_ms = timeframe_ms(tf)
        if tf_ms <= base_ms or tf_ms % base_ms:
            raise ConfigurationError(f"feature timeframe {tf} must be coarser than and a multiple of the candles' {m.timeframe}")
        names = [f"tf{tf}_ret_1", *(f"tf{tf}_{k}_{p}" for p in cfg.periods for k in ("ret", "vol"))]
        if n == 0:
            out.update({k: np.empty(0) for k in names})
            continue
        frame = pl.DataFrame({
            "exchange": "", "symbol": "", "timeframe": m.timeframe, "ts": pl.Series(m.ts).cast(UTC_MS),
            "open": m.open, "high": m.high, "low": m.low, "close": m.close, "volume": m.volume, "filled": False,
        })  # fmt: skip
        coarse = resample(frame, tf)  # complete buckets only: a partial one would be a wrong candle
        cc = coarse["close"].to_numpy()
        cr = np.full(cc.shape[0], np.nan)
        cr[1:] = np.diff(np.log(cc))
        cols: Columns = {f"tf{tf}_ret_1": cr}
        for p in cfg.periods:
            cols[f"tf{tf}_ret_{p}"] = _log_ret_over(cc, p)
            cols[f"tf{tf}_vol_{p}"] = nb.rolling_std_nb(cr, p)
        # a coarse candle is known from its last base candle on (its close time)
        known = coarse["ts"].dt.epoch("ms").to_numpy() + tf_ms - base_ms
        pos = np.searchsorted(known, m.ts, side="right") - 1
        ok = pos >= 0
        for name, values in cols.items():
            col = np.full(n, np.nan)
            col[ok] = values[pos[ok]]
            out[name] = col
    return out


def _timeframes_window(cfg: FeatureConfig, base_ms: int) -> int:
    ratios = [timeframe_ms(tf) // base_ms for tf in cfg.timeframes] or [1]
    return (max(cfg.periods) + 2) * max(ratios)


def _regime(m: MarketData, cfg: FeatureConfig) -> Columns:
    r = m.log_ret
    p = max(cfg.periods)
    short = min(cfg.periods)
    vol = nb.rolling_std_nb(r, short)
    vol_pct = nb.rolling_pct_rank_nb(vol, cfg.rank_window)
    with np.errstate(invalid="ignore", divide="ignore"):
        trend = _log_ret_over(m.close, p) / (nb.rolling_std_nb(r, p) * math.sqrt(p))
    code = (vol_pct > 0.5).astype(np.float64) * 2.0 + (np.abs(trend) > 1.0).astype(np.float64)
    code[np.isnan(vol_pct) | np.isnan(trend)] = np.nan
    return {"vol_pct": vol_pct, "trend_t": trend, "regime": code}


def _events(m: MarketData, cfg: FeatureConfig) -> Columns:
    r = m.log_ret
    p = max(cfg.periods)
    n = r.shape[0]
    prev_sd = np.full(n, np.nan)
    prev_sd[1:] = nb.rolling_std_nb(r, p)[:-1]  # the trailing window before this candle
    prev_vm, prev_vs = np.full(n, np.nan), np.full(n, np.nan)
    prev_vm[1:] = nb.rolling_mean_nb(m.volume, p)[:-1]
    prev_vs[1:] = nb.rolling_std_nb(m.volume, p)[:-1]
    with np.errstate(invalid="ignore"):
        jump = (np.abs(r) > cfg.jump_sigma * prev_sd).astype(np.float64)
        spike = (m.volume > prev_vm + 3.0 * prev_vs).astype(np.float64)
    jump[np.isnan(prev_sd) | np.isnan(r)] = np.nan
    spike[np.isnan(prev_vs)] = np.nan
    return {"jump": jump, f"jumps_{p}": nb.rolling_mean_nb(jump, p) * p, "volume_spike": spike}


def _calendar(m: MarketData, cfg: FeatureConfig) -> Columns:
    hours = (m.ts // 3_600_000).astype(np.int64)
    return {"hour": (hours % 24).astype(np.float64), "weekday": ((hours // 24 + 3) % 7).astype(np.float64)}  # 0 = Monday


#: the sentiment group's input table and its columns; a strategy's candle frame carries the same
#: columns (``quantdag.stages.common.read_candles``), so a model with them predicts inside a strategy too
SENTIMENT_TABLE = "sentiment.bars"
SENTIMENT_INPUTS = ("sent_count", "sent_mean", "sent_dispersion", "sent_decayed")
#: the stored market events as per-candle start counts (:mod:`quantdag.data.event_starts`), which a
#: strategy frame carries too
EVENTS_TABLE = "market.events"
FRAME_INPUTS = {SENTIMENT_TABLE: SENTIMENT_INPUTS, EVENTS_TABLE: EVENT_COLUMNS}


def _sentiment(m: MarketData, cfg: FeatureConfig) -> Columns:
    """News sentiment known at each candle's close (``sentiment.bars`` is point in time): the decayed
    score and the dispersion as they are, the mean score and the news count over each period. A
    candle without news is 0 (nothing known), so the table's missing rows and a strategy frame's
    zeros give the same features."""
    bars = m.extra[SENTIMENT_TABLE]
    col = {c: np.nan_to_num(np.asarray(bars[c], dtype=np.float64), nan=0.0) for c in SENTIMENT_INPUTS}
    out: Columns = {"sent_decayed": col["sent_decayed"], "sent_dispersion": col["sent_dispersion"]}
    for p in cfg.periods:
        out[f"sent_mean_{p}"] = nb.rolling_mean_nb(col["sent_mean"], p)
        out[f"sent_count_{p}"] = nb.rolling_mean_nb(np.log1p(col["sent_count"]), p)
    return out


def _market_events(m: MarketData, cfg: FeatureConfig) -> Columns:
    """Stored market events (``market.events``: jumps, volume spikes, gaps, dislocations, depegs,
    volatility regimes, and a depeg anywhere on the venue) that started within each period. Only
    starts count: an event's end and peak are not known while it goes on."""
    ev = m.extra[EVENTS_TABLE]
    out: Columns = {}
    for c in EVENT_COLUMNS:
        starts = np.nan_to_num(np.asarray(ev[c], dtype=np.float64), nan=0.0)
        name = "ev_" + c.removeprefix("event_")
        for p in cfg.periods:
            out[f"{name}_{p}"] = np.round(nb.rolling_mean_nb(starts, p) * p)  # a count: exact whatever the sum's rounding
    return out


def _markets(m: MarketData, cfg: FeatureConfig) -> Columns:
    out: Columns = {}
    own = m.log_ret
    p = max(cfg.periods)
    for sym in cfg.correlated:
        pc = m.peers[sym]
        tag = symbol_tag(sym)
        for q in cfg.periods:
            out[f"{tag}_ret_{q}"] = _log_ret_over(pc, q)
        pr = np.full(pc.shape[0], np.nan)
        pr[1:] = np.diff(np.log(pc))
        out[f"{tag}_corr_{p}"] = nb.rolling_corr_nb(own, pr, p)
    return out


for _g in (
    FeatureGroup("returns", _returns, lambda c, ms: max(c.periods), description="log returns over each period"),
    FeatureGroup("volatility", _volatility, lambda c, ms: max(c.periods) + 1, description="std of returns, mean high/low range"),
    FeatureGroup("indicators", _indicators, lambda c, ms: max(c.periods) + 1,
                 description="SMA ratio, z-score, simple RSI, stochastic, volume z-score per period"),
    FeatureGroup("timeframes", _timeframes, _timeframes_window, description="returns and volatility of resampled coarser candles"),
    FeatureGroup("regime", _regime, lambda c, ms: c.rank_window + max(c.periods) + 1,
                 description="volatility percentile, trend t-stat, regime code 0..3"),
    FeatureGroup("events", _events, lambda c, ms: 2 * max(c.periods) + 2, description="jumps and volume spikes"),
    FeatureGroup("calendar", _calendar, lambda c, ms: 0, description="hour of day, weekday (UTC)"),
    FeatureGroup("markets", _markets, lambda c, ms: max(c.periods) + 1, cross_market=True,
                 description="correlated markets' returns and rolling correlation"),
    FeatureGroup("market_events", _market_events, lambda c, ms: max(c.periods), inputs=(EVENTS_TABLE,),
                 description="stored market events (market.events) that started within each period, by type"),
    FeatureGroup("sentiment", _sentiment, lambda c, ms: max(c.periods), inputs=(SENTIMENT_TABLE,),
                 description="news sentiment known at the close: decayed score, dispersion, mean and count per period"),
):  # fmt: skip
    register_feature_group(_g)


# -- computing ------------------------------------------------------------------------------------
def market_features(m: MarketData, cfg: FeatureConfig) -> Columns:
    """Every configured group's columns for one market (NaN where not yet defined), in group order.

    Raises
    ------
    ConfigurationError
        If two groups produce the same column.
    """
    out: Columns = {}
    for name in cfg.groups:
        cols = _GROUPS[name].compute(m, cfg)
        clash = [c for c in cols if c in out or c in CANDLE_KEY]
        if clash:
            raise ConfigurationError(f"feature group {name!r} produces column(s) {clash} already produced")
        out.update(cols)
    return out


def feature_columns(cfg: FeatureConfig, timeframe: str = "1h") -> list[str]:
    """Column names ``cfg`` produces, in table order."""
    empty = np.empty(0)
    m = MarketData(np.empty(0, dtype=np.int64), empty, empty, empty, empty, empty, timeframe,
                   peers={s: empty for s in cfg.correlated},
                   extra={t: _EmptyColumns() for t in cfg.inputs})  # fmt: skip
    return list(market_features(m, cfg))


class _EmptyColumns(dict):
    """Any column of an extra table, empty (to list a group's column names)."""

    def __missing__(self, key: str) -> np.ndarray:
        return np.empty(0)


def features_schema(cfg: FeatureConfig, timeframe: str = "1h") -> dict[str, pl.DataType]:
    """``ml.features`` columns: the candle key, then a Float64 per feature."""
    return {"exchange": pl.String(), "symbol": pl.String(), "timeframe": pl.String(), "ts": UTC_MS,
            **{c: pl.Float64() for c in feature_columns(cfg, timeframe)}}  # fmt: skip


def _to_frame(key: pl.DataFrame, cols: Columns) -> pl.DataFrame:
    return key.with_columns(pl.Series(k, v, dtype=pl.Float64).fill_nan(None) for k, v in cols.items())


def compute_features(
    candles: pl.DataFrame,
    cfg: FeatureConfig,
    *,
    warm_start: int | None = None,
    extra: Mapping[str, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Feature frame of one or more markets' CANDLES (key columns + :func:`feature_columns`).

    Parameters
    ----------
    candles
        CANDLES rows (exchange, symbol, timeframe, ts, OHLCV), gap-free per market, unique on the key.
        Correlated markets must be present (same exchange and timeframe) when ``markets`` is configured.
    cfg
        The feature settings.
    warm_start
        Epoch ms; rows before it only warm the windows and are dropped from the output.
    extra
        Extra tables named by :attr:`FeatureConfig.inputs`, keyed by the candle key; their
        columns are aligned to the candles (null where absent).

    Raises
    ------
    DataError
        On missing columns, duplicate keys, non-finite prices, or a missing correlated market.
    """
    require_columns(candles, (*CANDLE_KEY, "open", "high", "low", "close", "volume"), "candles")
    frame = candles.with_columns(utc_ms(candles, "ts")).sort(CANDLE_KEY)
    if frame.select(pl.struct(CANDLE_KEY).is_duplicated().any()).item():
        raise DataError("compute_features needs candles unique on (exchange, symbol, timeframe, ts)")
    prices = ("open", "high", "low", "close")
    if frame.height and not frame.select(pl.all_horizontal(pl.col(prices).is_finite() & (pl.col(prices) > 0)).all()).item():
        raise DataError("compute_features needs finite, positive prices")
    missing_inputs = [t for t in cfg.inputs if not extra or t not in extra]
    if missing_inputs:
        raise DataError(f"feature groups need table(s) {missing_inputs}, which were not given")
    parts: list[pl.DataFrame] = []
    for (exchange, symbol, timeframe), rows in frame.group_by(MARKET_KEY, maintain_order=True):
        ts = rows["ts"].dt.epoch("ms").to_numpy()
        peers: dict[str, np.ndarray] = {}
        for sym in cfg.correlated:
            peer = frame.filter((pl.col("exchange") == exchange) & (pl.col("symbol") == sym) & (pl.col("timeframe") == timeframe))
            if peer.height == 0:
                raise DataError(f"correlated market {sym!r} ({exchange} {timeframe}) has no candles beside {symbol!r}")
            peers[sym] = rows.select("ts").join(peer.select("ts", "close"), on="ts", how="left")["close"].to_numpy()
        aligned = {
            t: {c: s.to_numpy() for c, s in rows.select(CANDLE_KEY).join(extra[t], on=list(CANDLE_KEY), how="left")
                .drop(CANDLE_KEY).select(cs.numeric()).cast(pl.Float64).to_dict().items()}  # labels (e.g. asset) left out
            for t in cfg.inputs
        } if extra else {}  # fmt: skip
        m = MarketData(ts, *(rows[c].cast(pl.Float64).to_numpy() for c in (*prices, "volume")), timeframe=str(timeframe),
                       peers=peers, extra=aligned)  # fmt: skip
        parts.append(_to_frame(rows.select(CANDLE_KEY), market_features(m, cfg)))
    schema = features_schema(cfg, str(frame["timeframe"][0]) if frame.height else "1h")
    out = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
    if warm_start is not None:
        out = out.filter(pl.col("ts") >= pl.lit(warm_start).cast(UTC_MS))
    return out.cast(schema)


def ohlcv_features(candles: pl.DataFrame, cfg: FeatureConfig, timeframe: str | None = None) -> pl.DataFrame:
    """Features of one market given as a strategy sees it (``ts`` + OHLCV): ``ts`` + feature columns.

    The timeframe is inferred from the smallest candle spacing unless given.

    Peers' closes (``cfg.peers``) come from the frame's :func:`~quantdag.markets.peer_close_column`
    columns (``read_candles(..., peers=...)``).

    Raises
    ------
    ConfigurationError
        If ``cfg`` needs other markets' closes or extra tables whose columns the frame does not carry
        (every strategy's frame carries ``sentiment.bars``' and ``market.events``').
    """
    from_frame = [t for t in cfg.inputs if t in FRAME_INPUTS and all(c in candles.columns for c in FRAME_INPUTS[t])]
    lacking = [peer_close_column(s) for s in cfg.peers if peer_close_column(s) not in candles.columns]
    if lacking or len(from_frame) < len(cfg.inputs):
        raise ConfigurationError(f"these features need other markets or tables the frame lacks ({lacking or sorted(set(cfg.inputs) - set(from_frame))})")
    ts = candles["ts"]
    ms = ts.dt.epoch("ms") if isinstance(ts.dtype, pl.Datetime) else ts.cast(pl.Int64)
    if timeframe is None:
        step = int(ms.diff().min()) if candles.height > 1 else timeframe_ms("1h")  # type: ignore[arg-type]
        timeframe = timeframe_name(step)
    extra = {t: {c: candles[c].cast(pl.Float64).to_numpy() for c in FRAME_INPUTS[t]} for t in from_frame}
    peers = {s: candles[peer_close_column(s)].cast(pl.Float64).fill_null(np.nan).to_numpy() for s in cfg.peers}
    m = MarketData(ms.to_numpy(), *(candles[c].cast(pl.Float64).to_numpy() for c in ("open", "high", "low", "close", "volume")),
                   timeframe=timeframe, peers=peers, extra=extra)  # fmt: skip
    return _to_frame(candles.select("ts"), market_features(m, cfg))


def check_feature_causality(
    candles: pl.DataFrame, cfg: FeatureConfig, cuts: Sequence[int] | None = None, *, rtol: float = 0.0
) -> list[str]:
    """Recompute the features on truncated histories and report every value that changed.

    Two truncations: dropping candles *after* a cut (a peek shows) and dropping candles *before*
    ``warmup`` of the cut (a dependence on the history start shows). Returns human-readable
    differences; empty means causal and finite-window. ``rtol=0``: bit-identical is required.
    """
    full = compute_features(candles, cfg).sort(CANDLE_KEY)
    tf = str(candles["timeframe"][0])
    warm = cfg.warmup(tf)
    times = full["ts"].unique().sort()
    n = times.len()
    cuts = list(cuts) if cuts is not None else sorted({int(n * f) for f in (0.5, 0.75)} | {n - 1})
    problems: list[str] = []
    cols = [c for c in full.columns if c not in CANDLE_KEY]
    for k in cuts:
        if not warm < k < n:
            continue
        t_cut = times[k]
        head = compute_features(candles.filter(pl.col("ts") <= t_cut), cfg)
        start = times[k - warm]
        tail = compute_features(candles.filter(pl.col("ts") >= start), cfg).filter(pl.col("ts") == t_cut)
        ref = full.filter(pl.col("ts") == t_cut)
        for label, other in (("after", head.filter(pl.col("ts") == t_cut)), ("before", tail)):
            for c in cols:
                a, b = ref[c].to_numpy(), other[c].to_numpy()
                same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else (a == b)
                if rtol and a.dtype.kind == "f":
                    same |= np.abs(a - b) <= rtol * np.abs(a)
                if not same.all():
                    what = "later candles" if label == "after" else "candles older than its warm-up"
                    problems.append(f"feature {c!r} at ts={t_cut} changes when {what} are removed: {a.tolist()} vs {b.tolist()}")
    return problems
