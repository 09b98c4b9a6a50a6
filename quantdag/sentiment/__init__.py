"""Sentiment: news and social posts scored offline, aligned to candles point in time.

``score(texts) -> list[float]`` in [-1, 1] is the public scorer (VADER + :mod:`.lexicon`'s crypto
overlay). :mod:`.entities` maps names and tickers to the universe's assets, :mod:`.dedup` counts
near-duplicate stories once, :mod:`.feeds` turns RSS/Atom, the simulator's JSON and the Fear &
Greed index into :class:`~quantdag.sentiment.feeds.NewsItem` rows, :mod:`.bars` aggregates scored
items per candle using only what was both published and fetched before the candle closed.
"""

from quantdag.sentiment.scorer import Scorer, default_scorer, score

__all__ = ["Scorer", "default_scorer", "score"]
