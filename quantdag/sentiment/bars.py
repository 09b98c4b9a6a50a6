"""Scored items -> one sentiment row per candle, using only what the candle could have known.

A candle closing at ``c`` sees a version of an item only if its ``published_at`` AND its
``fetched_at`` are before ``c``; of an item's versions it sees the latest such one (a revision
replaces the score from the moment it was fetched, a deletion removes the item from then on), so
a later revision never changes an earlier candle. Near-duplicates (``duplicate_of`` set) are left
out: a story counts once.

Per candle (columns :data:`SENTIMENT_COLUMNS`):

* ``sent_count``, ``sent_mean``, ``sent_dispersion``: number, mean and population standard
  deviation of the scores of the items that became known in the ``window`` before the close
  (an item becomes known at ``max(published_at, fetched_at)`` of its first version); mean and
  dispersion are null without items;
* ``sent_decayed``: every item known in the last ``lookback``, weighted ``0.5 ** (age / half_life)``,
  as ``sum(w * score) / (1 + sum(w))``: the 1 is a neutral prior, so one old item weighs little and
  a burst of fresh ones dominates; 0 without items.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from quantdag.data.frames import UTC_MS
from quantdag.errors import ConfigurationError

#: The sentiment columns of a candle (``sentiment.bars``, and the frame strategies get).
SENTIMENT_COLUMNS = ("sent_count", "sent_mean", "sent_dispersion", "sent_decayed")
#: Columns of ``sentiment.bars`` (``sql/create_sentiment_bars.sql``); key (exchange, symbol, timeframe, ts).
BARS_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(), "symbol": pl.String(), "timeframe": pl.String(), "ts": UTC_MS, "asset": pl.String(),
    "sent_count": pl.Int32(), "sent_mean": pl.Float64(), "sent_dispersion": pl.Float64(), "sent_decayed": pl.Float64(),
}  # fmt: skip
MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class BarSettings:
    """How items are summed up per candle: the count/mean window and the decay's half-life (hours)."""

    window_hours: float = 6.0
    half_life_hours: float = 6.0
    lookback_half_lives: float = 8.0

    def __post_init__(self) -> None:
        if not (self.window_hours > 0 and self.half_life_hours > 0 and self.lookback_half_lives > 0):
            raise ConfigurationError(f"sentiment bar settings must be > 0, got {self}")

    @property
    def lookback_ms(self) -> int:
        """How far back an item can still count: the larger of the window and the decay's horizon."""
        return int(max(self.window_hours, self.half_life_hours * self.lookback_half_lives) * MS_PER_HOUR)


def sentiment_bars(candles: pl.DataFrame, items: pl.DataFrame, timeframe_ms: int, settings: BarSettings = BarSettings()) -> pl.DataFrame:
    """:data:`BARS_SCHEMA` rows, one per candle of ``candles`` (exchange, symbol, timeframe, ts of ONE
    market and timeframe), from ``items`` (``sentiment.items`` rows of the market's base asset,
    including enough history: :attr:`BarSettings.lookback_ms` before the first candle)."""
    if candles.height == 0:
        return pl.DataFrame(schema=BARS_SCHEMA)
    asset = candles["symbol"][0].split("/", 1)[0]
    window_ms, half_ms = int(settings.window_hours * MS_PER_HOUR), settings.half_life_hours * MS_PER_HOUR
    c = candles.select("exchange", "symbol", "timeframe", "ts").with_columns(
        _close=pl.col("ts").dt.epoch("ms") + timeframe_ms
    )
    v = items.filter(pl.col("asset") == asset).with_columns(
        _known=pl.max_horizontal(pl.col("published_at").dt.epoch("ms"), pl.col("fetched_at").dt.epoch("ms"))
    ).with_columns(_first=pl.col("_known").min().over("feed", "item_id"))
    v = v.select("feed", "item_id", "revision", "score", "deleted", "duplicate_of", "_known", "_first")
    pairs = c.select("ts", "_close").join_where(
        v, pl.col("_known") < pl.col("_close"), pl.col("_first") >= pl.col("_close") - settings.lookback_ms
    )
    seen = (
        pairs.sort("_known", "revision")
        .group_by("ts", "feed", "item_id", maintain_order=True)
        .last()
        .filter(~pl.col("deleted") & pl.col("duplicate_of").is_null() & pl.col("score").is_not_null())
        .with_columns(
            _in=pl.col("_first") >= pl.col("_close") - window_ms,
            _w=pl.lit(0.5).pow((pl.col("_close") - pl.col("_first")) / half_ms),
        )
    )
    agg = seen.group_by("ts").agg(
        sent_count=pl.col("_in").sum().cast(pl.Int32),
        sent_mean=pl.col("score").filter(pl.col("_in")).mean(),
        sent_dispersion=pl.col("score").filter(pl.col("_in")).std(ddof=0),
        sent_decayed=(pl.col("_w") * pl.col("score")).sum() / (1.0 + pl.col("_w").sum()),
    )
    out = c.join(agg, on="ts", how="left").with_columns(
        asset=pl.lit(asset),
        sent_count=pl.col("sent_count").fill_null(0),
        sent_decayed=pl.col("sent_decayed").fill_null(0.0),
    )
    return out.select(list(BARS_SCHEMA)).cast(BARS_SCHEMA).sort("ts")
