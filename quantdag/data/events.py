"""Market events over clean candles: jumps, volume spikes, gaps, dislocations, depegs, vol regimes.

Every detector flags candles, and consecutive flagged candles of one series become one event
(``ts_start`` / ``ts_end`` are the open times of its first and last candle; ``score`` is the
statistic at the most extreme candle, signed where a direction exists).

**Look-ahead free.** A flag at candle *t* depends only on candles up to *t*: the robust sigma,
the volume median, the ratio median and the volatility percentiles are rolling statistics of
candles *strictly before* *t* (``shift(1)``), and the hysteresis states are forward fills from
the start of the history. An event's severity and score depend only on its own candles. So the
events found on a prefix of the history equal the events of the full history restricted to that
prefix, except the ones still open at the prefix's last candle (they may go on).

Rolling windows are counted in candles (like the indicators), so the same config reads as
"288 candles = one day of 5m candles". Filled (synthetic) and zero-volume candles carry no new
price: they are left out of every statistic and never flagged themselves (an illiquid pair's
stale prints would otherwise shrink its sigma and turn every trade into a "jump").
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import polars as pl

from quantdag.data.frames import (
    CANDLE_KEY,
    CANDLES_SCHEMA,
    EVENT_TYPES,
    EVENTS_SCHEMA,
    GAPS_SCHEMA,
    MARKET_KEY,
    SEVERITIES,
    empty_frame,
    require_columns,
    utc_ms,
)
from quantdag.errors import ConfigurationError, DataError
from quantdag.timeframes import timeframe_ms

_GROUP = list(MARKET_KEY)
_IQR_TO_SIGMA = 1.349  # IQR of a standard normal


@dataclass(frozen=True)
class EventConfig:
    """Thresholds of :func:`detect_events`; windows in candles, deviations in basis points.

    Defaults were checked on the shared 2023 Kraken (5m, 1h) and Binance.US (1m) BTC candles:
    a liquid market gets a few jumps and volume spikes a day at 1m, and the USDC depeg of
    2023-03-11..13 is one critical episode per venue.
    """

    #: Past log returns used for the robust (IQR) sigma of a price jump.
    jump_window: int = 288
    jump_min_periods: int = 48
    #: |log return| > ``jump_k`` x sigma flags a jump; warning / critical above the next two.
    jump_k: float = 8.0
    jump_k_warning: float = 12.0
    jump_k_critical: float = 20.0
    #: Floor of the sigma (log-return units, 1e-4 = 1 bp), so a market that barely trades does
    #: not flag every tick.
    jump_sigma_floor: float = 1e-4
    #: Past volumes whose median is the baseline of a volume spike.
    volume_window: int = 288
    volume_min_periods: int = 48
    #: volume > ``volume_k`` x median flags a spike; warning / critical above the next two.
    volume_k: float = 20.0
    volume_k_warning: float = 50.0
    volume_k_critical: float = 200.0
    #: A gap lasting at least this long is a warning (any unfilled gap is too) / critical.
    gap_warning_ms: int = 3_600_000
    gap_critical_ms: int = 86_400_000
    #: Past price ratios whose median is the fair ratio of two markets of one base asset.
    dislocation_window: int = 288
    dislocation_min_periods: int = 48
    #: |ratio / median - 1| above ``dislocation_bps`` starts a dislocation, below
    #: ``dislocation_exit_bps`` ends it (hysteresis, so noise at the threshold is one event).
    dislocation_bps: float = 50.0
    dislocation_exit_bps: float = 25.0
    #: Peak deviation for warning / critical; lasting ``dislocation_persist_bars`` candles or
    #: more raises the severity one level (a persistent dislocation is worse than a blip).
    dislocation_warning_bps: float = 100.0
    dislocation_critical_bps: float = 300.0
    dislocation_persist_bars: int = 12
    #: Assets expected to be worth one unit of a reference, watched for depegs.
    stablecoins: tuple[str, ...] = ("USDT", "USDC", "DAI", "BUSD", "TUSD", "USDP", "FDUSD", "PYUSD")
    #: Units a stablecoin's price is measured in, most trusted first. A market like USDC/USDT
    #: at 0.93 does not say which coin moved, so the rank decides: a stablecoin is measured only
    #: against references ranked above it (one not listed ranks below them all), and on each
    #: venue and timeframe only against the best-ranked of those it has a price in. USDC/USDT at
    #: 0.93 is then USDC depegged (USDT is never measured in USDC), and where USD markets exist
    #: every stablecoin is measured in USD alone. The event's symbol is ``COIN/REFERENCE``.
    peg_references: tuple[str, ...] = ("USD", "USDT", "USDC", "DAI", "FDUSD")
    #: |implied price - 1| above ``depeg_bps`` starts a depeg, below ``depeg_exit_bps`` ends it;
    #: a peak beyond ``depeg_critical_bps`` makes it critical (else warning).
    depeg_bps: float = 100.0
    depeg_exit_bps: float = 50.0
    depeg_critical_bps: float = 300.0
    #: Trailing median of the implied price over this many candles (1 = none): damps stale
    #: prints of an illiquid stablecoin pair without looking ahead.
    depeg_smooth_bars: int = 3
    #: Realised vol = RMS of the last ``vol_window`` log returns; its regime is judged against
    #: the percentiles of the previous ``vol_lookback`` values.
    vol_window: int = 60
    vol_lookback: int = 1440
    vol_min_periods: int = 288
    #: Entering above ``vol_high_pct`` / below ``vol_low_pct``, leaving when crossing the median.
    vol_high_pct: float = 0.95
    vol_low_pct: float = 0.05
    #: A high regime whose peak vol reaches these multiples of the median is a warning /
    #: critical (else info: a stationary market spends 5% of its time above its 95th
    #: percentile); a low regime is info.
    vol_warning_ratio: float = 2.0
    vol_critical_ratio: float = 4.0

    @property
    def lookback_bars(self) -> int:
        """Candles of context before a window so its rolling statistics equal a full-history run.

        The longest window of any detector (realised vol needs ``vol_window`` returns for each of
        ``vol_lookback`` past values) plus one for the return's previous close. Hysteresis
        states reach further back in principle, but agree as soon as an episode has ended.
        """
        return (
            max(self.jump_window, self.volume_window, self.dislocation_window,
                self.vol_window + self.vol_lookback, self.depeg_smooth_bars)
            + 1
        )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not value > 0:
                raise ConfigurationError(f"EventConfig.{f.name} must be > 0, got {value!r}")
        for window, minimum in (
            ("jump_window", "jump_min_periods"),
            ("volume_window", "volume_min_periods"),
            ("dislocation_window", "dislocation_min_periods"),
            ("vol_lookback", "vol_min_periods"),
        ):
            if getattr(self, minimum) > getattr(self, window):
                raise ConfigurationError(
                    f"EventConfig.{minimum} ({getattr(self, minimum)}) must be <= {window} ({getattr(self, window)})"
                )
        for chain in (
            ("jump_k", "jump_k_warning", "jump_k_critical"),
            ("volume_k", "volume_k_warning", "volume_k_critical"),
            ("gap_warning_ms", "gap_critical_ms"),
            ("dislocation_exit_bps", "dislocation_bps", "dislocation_warning_bps", "dislocation_critical_bps"),
            ("depeg_exit_bps", "depeg_bps", "depeg_critical_bps"),
            ("vol_low_pct", "vol_high_pct"),
            ("vol_warning_ratio", "vol_critical_ratio"),
        ):
            values = [getattr(self, name) for name in chain]
            if values != sorted(values):
                raise ConfigurationError(f"EventConfig needs {' <= '.join(chain)}, got {values}")
        if not 0 < self.vol_low_pct < 0.5 < self.vol_high_pct < 1:
            raise ConfigurationError(
                "EventConfig needs 0 < vol_low_pct < 0.5 < vol_high_pct < 1, "
                f"got {self.vol_low_pct}, {self.vol_high_pct}"
            )
        for name in ("stablecoins", "peg_references"):
            assets = getattr(self, name)
            if not isinstance(assets, tuple) or not all(isinstance(a, str) and a for a in assets):
                raise ConfigurationError(f"EventConfig.{name} must be a tuple of asset codes, got {assets!r}")
            if not assets:
                raise ConfigurationError(f"EventConfig.{name} must not be empty")
            repeated = sorted({a for a in assets if assets.count(a) > 1})
            if repeated:
                raise ConfigurationError(f"EventConfig.{name} lists {', '.join(repeated)} more than once: {assets!r}")


def detect_events(
    candles: pl.DataFrame, *, gaps: pl.DataFrame | None = None, config: EventConfig | None = None
) -> pl.DataFrame:
    """EVENTS frame of one or more markets' CANDLES (and optionally their GAPS).

    Parameters
    ----------
    candles
        CANDLES frame (unique on the key, any order). Cross-market detectors pair markets of
        the same timeframe and base asset (``BTC/USD`` with ``BTC/USDC``, Kraken with Binance).
    gaps
        GAPS frame from cleaning; each gap becomes a ``gap`` event.
    config
        Thresholds; :class:`EventConfig` defaults when omitted.

    Returns
    -------
    pl.DataFrame
        EVENTS frame (:data:`quantdag.data.frames.EVENTS_SCHEMA`), sorted by market, ts_start,
        event_type.

    Raises
    ------
    DataError
        If columns are missing or ``candles`` has duplicate keys.
    """
    config = config or EventConfig()
    require_columns(candles, CANDLES_SCHEMA, "candles")
    if candles.select(pl.struct(CANDLE_KEY).is_duplicated().any()).item():
        raise DataError("detect_events needs candles unique on (exchange, symbol, timeframe, ts)")
    frame = _prepare(candles)
    parts = [
        _price_jumps(frame, config),
        _volume_spikes(frame, config),
        _vol_regimes(frame, config),
        _dislocations(frame, config),
        _depegs(frame, config),
    ]
    if gaps is not None:
        require_columns(gaps, GAPS_SCHEMA, "gaps")
        parts.append(_gap_events(gaps, config))
    events = pl.concat([p.select(list(EVENTS_SCHEMA)).cast(dict(EVENTS_SCHEMA)) for p in parts])
    unknown = events.filter(~pl.col("event_type").is_in(EVENT_TYPES) | ~pl.col("severity").is_in(SEVERITIES))
    if unknown.height:  # the stored vocabulary is a contract (README, dashboards): a new detector must extend it
        row = unknown.row(0, named=True)
        raise DataError(f"detector produced event_type {row['event_type']!r} / severity {row['severity']!r}, "
                        f"not in {EVENT_TYPES} / {SEVERITIES}")
    return events.sort(*MARKET_KEY, "ts_start", "event_type", "ts_end", "detail")


# --- shared pieces -----------------------------------------------------------------------------


def _prepare(candles: pl.DataFrame) -> pl.DataFrame:
    """Sorted candles with ``active`` (traded, not filled) and the log return into active candles."""
    return (
        candles.select(list(CANDLES_SCHEMA))
        .with_columns(utc_ms(candles, "ts"))
        .sort(CANDLE_KEY)
        .with_columns(active=~pl.col("filled") & (pl.col("volume") > 0))
        .with_columns(
            ret=pl.when("active").then((pl.col("close") / pl.col("close").shift(1)).log().over(_GROUP))
        )
    )


def _hysteresis(enter: pl.Expr, leave: pl.Expr, over: list[str] | str) -> pl.Expr:
    """State that switches on at ``enter``, off at ``leave``, and otherwise keeps its last value."""
    return (
        pl.when(enter).then(True).when(leave).then(False).otherwise(None).forward_fill().over(over).fill_null(False)
    )


def _runs(frame: pl.DataFrame, group: list[str], flag: str, score: str, *extra: pl.Expr) -> pl.DataFrame:
    """Collapse consecutive flagged rows (per ``group``, in ts order) into one row per run.

    Returns ``group`` columns, ts_start, ts_end, bars, peak (``score`` at its largest absolute
    value in the run) and any ``extra`` aggregations.
    """
    change = (pl.col(flag) != pl.col(flag).shift(1)).fill_null(True)
    return (
        frame.with_columns(run=change.cum_sum().over(group))
        .filter(pl.col(flag))
        .group_by(*group, "run")
        .agg(
            pl.col("ts").min().alias("ts_start"),
            pl.col("ts").max().alias("ts_end"),
            pl.len().alias("bars"),
            pl.col(score).get(pl.col(score).abs().arg_max()).alias("peak"),
            *extra,
        )
        .drop("run")
    )


def _tiered(value: pl.Expr, warning: float, critical: float) -> pl.Expr:
    return pl.when(value >= critical).then(pl.lit("critical")).when(value >= warning).then(pl.lit("warning")).otherwise(
        pl.lit("info")
    )


def _fmt(value: pl.Expr, decimals: int) -> pl.Expr:
    return value.round(decimals).cast(pl.String)


# --- single-market detectors -------------------------------------------------------------------


def _price_jumps(frame: pl.DataFrame, cfg: EventConfig) -> pl.DataFrame:
    """|log return| > k x robust sigma of the previous ``jump_window`` returns."""
    quantile = pl.col("ret").rolling_quantile
    iqr = quantile(0.75, "linear", cfg.jump_window, min_samples=cfg.jump_min_periods) - quantile(
        0.25, "linear", cfg.jump_window, min_samples=cfg.jump_min_periods
    )
    sigma = (iqr / _IQR_TO_SIGMA).clip(lower_bound=cfg.jump_sigma_floor).shift(1).over(_GROUP)  # null while warming
    flagged = frame.with_columns(z=pl.col("ret") / sigma).with_columns(
        flag=(pl.col("active") & (pl.col("z").abs() > cfg.jump_k)).fill_null(False)
    )
    runs = _runs(flagged, _GROUP, "flag", "z", pl.col("ret").get(pl.col("z").abs().arg_max()).alias("ret"))
    return runs.select(
        *_GROUP,
        event_type=pl.lit("price_jump"),
        ts_start="ts_start",
        ts_end="ts_end",
        severity=_tiered(pl.col("peak").abs(), cfg.jump_k_warning, cfg.jump_k_critical),
        score="peak",
        detail=pl.format(
            "log return {} ({} robust sigmas) over {} candle(s)",
            _fmt(pl.col("ret"), 5), _fmt(pl.col("peak"), 1), pl.col("bars"),
        ),
    )


def _volume_spikes(frame: pl.DataFrame, cfg: EventConfig) -> pl.DataFrame:
    """volume > k x median volume of the previous ``volume_window`` active candles."""
    median = (
        pl.when("active").then(pl.col("volume"))
        .rolling_median(cfg.volume_window, min_samples=cfg.volume_min_periods)
        .shift(1)
        .over(_GROUP)
    )
    flagged = frame.with_columns(median=median).with_columns(
        ratio=pl.when(pl.col("median") > 0).then(pl.col("volume") / pl.col("median"))
    ).with_columns(flag=(pl.col("active") & (pl.col("ratio") > cfg.volume_k)).fill_null(False))
    runs = _runs(flagged, _GROUP, "flag", "ratio", pl.col("volume").max().alias("volume"))
    return runs.select(
        *_GROUP,
        event_type=pl.lit("volume_spike"),
        ts_start="ts_start",
        ts_end="ts_end",
        severity=_tiered(pl.col("peak"), cfg.volume_k_warning, cfg.volume_k_critical),
        score="peak",
        detail=pl.format(
            "volume {} = {}x the rolling median over {} candle(s)",
            _fmt(pl.col("volume"), 4), _fmt(pl.col("peak"), 1), pl.col("bars"),
        ),
    )


def _vol_regimes(frame: pl.DataFrame, cfg: EventConfig) -> pl.DataFrame:
    """Realised vol entering its high (low) percentile regime; the regime lasts until the median."""

    def past_quantile(q: float) -> pl.Expr:
        return pl.col("rv").rolling_quantile(q, "linear", cfg.vol_lookback, min_samples=cfg.vol_min_periods).shift(1)

    rv = (pl.col("ret") ** 2).rolling_mean(cfg.vol_window, min_samples=max(2, cfg.vol_window // 2)).sqrt()
    stats = frame.with_columns(rv=rv.over(_GROUP)).with_columns(
        hi=past_quantile(cfg.vol_high_pct).over(_GROUP),
        mid=past_quantile(0.5).over(_GROUP),
        lo=past_quantile(cfg.vol_low_pct).over(_GROUP),
    )
    stats = stats.with_columns(
        high=_hysteresis(pl.col("rv") > pl.col("hi"), pl.col("rv") < pl.col("mid"), _GROUP),
        low=_hysteresis(pl.col("rv") < pl.col("lo"), pl.col("rv") > pl.col("mid"), _GROUP),
        ratio=pl.col("rv") / pl.col("mid"),
    )
    out = []
    for regime, score in (("high", pl.col("ratio")), ("low", 1 / pl.col("ratio"))):
        peak_rv = pl.col("rv").get(pl.col("s").arg_max()).alias("rv")
        runs = _runs(stats.with_columns(s=score), _GROUP, regime, "s", peak_rv)
        ratio = pl.col("peak") if regime == "high" else 1 / pl.col("peak")
        severity = (
            _tiered(pl.col("peak"), cfg.vol_warning_ratio, cfg.vol_critical_ratio)
            if regime == "high"
            else pl.lit("info")
        )
        out.append(
            runs.select(
                *_GROUP,
                event_type=pl.lit("vol_regime"),
                ts_start="ts_start",
                ts_end="ts_end",
                severity=severity,
                score=ratio,
                detail=pl.format(
                    "{} volatility regime for {} candle(s): realised vol {} per candle, {}x its rolling median",
                    pl.lit(regime), pl.col("bars"), _fmt(pl.col("rv"), 6), _fmt(ratio, 2),
                ),
            )
        )
    return pl.concat(out)


def _gap_events(gaps: pl.DataFrame, cfg: EventConfig) -> pl.DataFrame:
    """One event per recorded gap; severity by duration, and at least warning if left unfilled."""
    if gaps.height == 0:
        return empty_frame(EVENTS_SCHEMA)
    lengths = {tf: timeframe_ms(tf) for tf in gaps["timeframe"].unique().to_list()}
    tf_ms = pl.col("timeframe").replace_strict(lengths, return_dtype=pl.Int64)
    duration = pl.col("missing") * tf_ms
    severity = (
        pl.when(duration >= cfg.gap_critical_ms).then(pl.lit("critical"))
        .when((duration >= cfg.gap_warning_ms) | ~pl.col("filled")).then(pl.lit("warning"))
        .otherwise(pl.lit("info"))
    )
    return gaps.select(
        *_GROUP,
        event_type=pl.lit("gap"),
        ts_start=pl.col("gap_start"),
        ts_end=pl.col("gap_end"),
        severity=severity,
        score=pl.col("missing").cast(pl.Float64),
        detail=pl.format(
            "{} missing {} candle(s), {}",
            pl.col("missing"), pl.col("timeframe"),
            pl.when("filled").then(pl.lit("filled flat at the previous close"))
            .otherwise(pl.lit("not filled: no earlier close known")),
        ),
    )


# --- cross-market detectors --------------------------------------------------------------------


def _market_table(frame: pl.DataFrame) -> pl.DataFrame:
    """Distinct markets with base and quote parsed from the ccxt symbol (``BTC/USDT:USDT`` too)."""
    parts = pl.col("symbol").str.split("/")
    return (
        frame.select(_GROUP)
        .unique()
        .with_columns(base=parts.list.get(0, null_on_oob=True), quote=parts.list.get(1, null_on_oob=True))
        .with_columns(pl.col("quote").str.split(":").list.first())
        .filter(pl.col("base").is_not_null() & pl.col("quote").is_not_null())
        .sort(_GROUP)
    )


def _pair_frame(frame: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """Candles of both legs of every pair aligned on ts: pair, ts, close_a, close_b, active (both)."""
    legs = frame.select(*_GROUP, "ts", "close", "active")
    a = pairs.join(legs, left_on=["exchange_a", "symbol_a", "timeframe"], right_on=_GROUP)
    b = legs.rename({"exchange": "exchange_b", "symbol": "symbol_b", "close": "close_b", "active": "active_b"})
    return (
        a.join(b, on=["exchange_b", "symbol_b", "timeframe", "ts"])
        .with_columns(active=pl.col("active") & pl.col("active_b"))
        .rename({"close": "close_a"})
        .sort("pair", "ts")
    )


def _dislocations(frame: pl.DataFrame, cfg: EventConfig) -> pl.DataFrame:
    """Price ratio of two markets of one base asset leaving its rolling median, by > threshold bps."""
    markets = _market_table(frame)
    pairs = (
        markets.join(markets, on=["base", "timeframe"], suffix="_b")
        .filter(
            (pl.col("exchange") < pl.col("exchange_b"))
            | ((pl.col("exchange") == pl.col("exchange_b")) & (pl.col("symbol") < pl.col("symbol_b")))
        )
        .select(
            pl.col("exchange").alias("exchange_a"), pl.col("symbol").alias("symbol_a"), "timeframe",
            "exchange_b", "symbol_b",
        )
        .sort(pl.all())
        .with_row_index("pair")
    )
    if pairs.height == 0:
        return empty_frame(EVENTS_SCHEMA)
    ratio = pl.when("active").then(pl.col("close_a") / pl.col("close_b"))
    median = ratio.rolling_median(cfg.dislocation_window, min_samples=cfg.dislocation_min_periods).shift(1)
    aligned = _pair_frame(frame, pairs).with_columns(median=median.over("pair"))
    aligned = aligned.with_columns(dev=(ratio / pl.col("median") - 1) * 1e4).with_columns(
        flag=_hysteresis(
            pl.col("dev").abs() > cfg.dislocation_bps, pl.col("dev").abs() < cfg.dislocation_exit_bps, "pair"
        )
    )
    keys = ["pair", "exchange_a", "symbol_a", "timeframe", "exchange_b", "symbol_b"]
    runs = _runs(aligned, keys, "flag", "dev")
    size = _tiered(pl.col("peak").abs(), cfg.dislocation_warning_bps, cfg.dislocation_critical_bps)
    escalated = pl.when(pl.col("bars") < cfg.dislocation_persist_bars).then(size).otherwise(
        pl.when(size == "info").then(pl.lit("warning")).otherwise(pl.lit("critical"))
    )
    return runs.select(
        pl.col("exchange_a").alias("exchange"),
        pl.col("symbol_a").alias("symbol"),
        "timeframe",
        event_type=pl.lit("dislocation"),
        ts_start="ts_start",
        ts_end="ts_end",
        severity=escalated,
        score="peak",
        detail=pl.format(
            "{} {} vs {} {}: price ratio {} bps from its rolling median at peak, over {} candle(s)",
            "exchange_a", "symbol_a", "exchange_b", "symbol_b", _fmt(pl.col("peak"), 1), pl.col("bars"),
        ),
    )


def _depegs(frame: pl.DataFrame, cfg: EventConfig) -> pl.DataFrame:
    """A stablecoin's price in its reference leaving 1.0, merged into episodes.

    The price comes from the same venue and timeframe: directly from a ``COIN/REF`` market (or
    ``1 / close`` of a ``REF/COIN`` one), or implied as ``close(BASE/REF) / close(BASE/COIN)``
    for every base quoted in both (e.g. BTC/USD / BTC/USDC, BTC/USDT / BTC/USDC); several
    sources at one ts are combined by their median. Which reference a coin is measured in is
    decided by trust rank (see :attr:`EventConfig.peg_references`), from the markets present.
    """
    markets = _market_table(frame)
    coins, refs = list(cfg.stablecoins), list(cfg.peg_references)
    via_coin = markets.filter(pl.col("quote").is_in(coins)).rename({"symbol": "symbol_coin", "quote": "coin"})
    via_ref = markets.filter(pl.col("quote").is_in(refs)).rename({"symbol": "symbol_ref", "quote": "ref"})
    implied = (
        via_coin.join(via_ref, on=["exchange", "timeframe", "base"])
        .filter(pl.col("coin") != pl.col("ref"))
        .select("exchange", "timeframe", "coin", "ref", "symbol_coin", "symbol_ref",
                pl.format("{}÷{}", "symbol_ref", "symbol_coin").alias("source"))
    )
    direct = pl.concat([
        markets.filter(pl.col("base").is_in(coins) & pl.col("quote").is_in(refs)).select(
            "exchange", "timeframe", "symbol", pl.col("base").alias("coin"), pl.col("quote").alias("ref"),
            pl.col("symbol").alias("source"), inverse=pl.lit(False),
        ),
        markets.filter(pl.col("quote").is_in(coins) & pl.col("base").is_in(refs)).select(
            "exchange", "timeframe", "symbol", pl.col("quote").alias("coin"), pl.col("base").alias("ref"),
            pl.format("1÷{}", "symbol").alias("source"), inverse=pl.lit(True),
        ),
    ]).filter(pl.col("coin") != pl.col("ref"))
    implied, direct = _most_trusted_reference(implied, direct, refs)
    legs = frame.select(*_GROUP, "ts", "close", "active")
    prices = []
    if implied.height:
        coin_leg = legs.rename({"symbol": "symbol_coin", "close": "close_coin", "active": "active_coin"})
        ref_leg = legs.rename({"symbol": "symbol_ref", "close": "close_ref", "active": "active_ref"})
        prices.append(
            implied.join(coin_leg, on=["exchange", "timeframe", "symbol_coin"])
            .join(ref_leg, on=["exchange", "timeframe", "symbol_ref", "ts"])
            .select("exchange", "timeframe", "coin", "ref", "source", "ts",
                    pl.when(pl.col("active_coin") & pl.col("active_ref"))
                    .then(pl.col("close_ref") / pl.col("close_coin")).alias("price"))
        )
    if direct.height:
        close = pl.when("inverse").then(1 / pl.col("close")).otherwise(pl.col("close"))
        prices.append(
            direct.join(legs, on=_GROUP).select(
                "exchange", "timeframe", "coin", "ref", "source", "ts", pl.when("active").then(close).alias("price"),
            )
        )
    if not prices:
        return empty_frame(EVENTS_SCHEMA)
    series = ["exchange", "timeframe", "coin", "ref"]
    per_ts = (
        pl.concat(prices)
        .group_by(*series, "ts")
        .agg(pl.col("price").median(), pl.col("source").sort().str.join(", ").alias("sources"))
        .sort(*series, "ts")
    )
    smooth = pl.col("price").rolling_median(cfg.depeg_smooth_bars, min_samples=1).over(series)
    flagged = per_ts.with_columns(price=smooth).with_columns(dev=(pl.col("price") - 1) * 1e4).with_columns(
        flag=_hysteresis(pl.col("dev").abs() > cfg.depeg_bps, pl.col("dev").abs() < cfg.depeg_exit_bps, series)
    )
    runs = _runs(
        flagged, series, "flag", "dev",
        pl.col("price").get(pl.col("dev").abs().arg_max()).alias("price"),
        pl.col("sources").first(),
    )
    return runs.select(
        "exchange",
        pl.format("{}/{}", "coin", "ref").alias("symbol"),
        "timeframe",
        event_type=pl.lit("depeg"),
        ts_start="ts_start",
        ts_end="ts_end",
        severity=pl.when(pl.col("peak").abs() >= cfg.depeg_critical_bps).then(pl.lit("critical"))
        .otherwise(pl.lit("warning")),
        score="peak",
        detail=pl.format(
            "{} at {} {} at peak ({} bps from the peg) over {} candle(s); implied from {}",
            "coin", _fmt(pl.col("price"), 4), "ref", _fmt(pl.col("peak"), 1), pl.col("bars"), "sources",
        ),
    )


def _most_trusted_reference(
    implied: pl.DataFrame, direct: pl.DataFrame, refs: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the price routes of each venue's coin in its best-ranked reference above the coin.

    Ranking a coin only against more trusted references makes a stablecoin pair name one
    culprit (USDC/USDT at 0.93 is USDC's depeg, never USDT's at 1.075 in USDC); taking the best
    reference present keeps the USD view wherever USD markets exist.
    """
    rank = {ref: i for i, ref in enumerate(refs)}

    def ranked(col: str) -> pl.Expr:
        return pl.col(col).replace_strict(rank, default=len(refs), return_dtype=pl.Int64)

    series = ["exchange", "timeframe", "coin"]
    best = (
        pl.concat([implied.select(*series, "ref"), direct.select(*series, "ref")])
        .filter(ranked("ref") < ranked("coin"))
        .with_columns(rank=ranked("ref"))
        .filter(pl.col("rank") == pl.col("rank").min().over(series))
        .select(*series, "ref")
        .unique()
    )
    keys = [*series, "ref"]
    return implied.join(best, on=keys, how="semi"), direct.join(best, on=keys, how="semi")
