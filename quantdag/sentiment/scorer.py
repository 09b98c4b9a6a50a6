"""Headline scoring: VADER with the crypto overlay, offline (its lexicon ships in its wheel).

A lexicon scorer, not a model: no download at run time, deterministic, tens of thousands of headlines/s on a
core (``benchmarks/sentiment.py``), and every score explainable word by word. It misses sarcasm
and context, which is why the bars keep the dispersion and count next to the mean.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from quantdag.errors import DataError
from quantdag.sentiment.lexicon import CRYPTO_LEXICON, rewrite_phrases


class Scorer:
    """VADER's analyzer with ``overlay`` merged into its lexicon (overlay wins).

    Parameters
    ----------
    overlay
        token -> valence on VADER's -4..4 scale; default :data:`CRYPTO_LEXICON`. ``{}`` is raw VADER.
    phrases
        Rewrite multi-word expressions into overlay tokens first (:func:`rewrite_phrases`).
    """

    def __init__(self, overlay: Mapping[str, float] | None = None, *, phrases: bool = True) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._vader = SentimentIntensityAnalyzer()
        self._vader.lexicon.update({k.lower(): float(v) for k, v in (CRYPTO_LEXICON if overlay is None else overlay).items()})
        self._phrases = phrases

    def score_one(self, text: str) -> float:
        """VADER's compound score of ``text``, in [-1, 1] (0 for an empty text).

        Raises
        ------
        DataError
            If ``text`` is not a string.
        """
        if not isinstance(text, str):
            raise DataError(f"sentiment score needs text (str), got {type(text).__name__}: {text!r:.80}")
        if not text.strip():
            return 0.0
        if self._phrases:
            text = rewrite_phrases(text)
        return float(self._vader.polarity_scores(text)["compound"])

    def score(self, texts: Iterable[str]) -> list[float]:
        """:meth:`score_one` of each text, in order."""
        return [self.score_one(t) for t in texts]


_default: Scorer | None = None
_lock = threading.Lock()


def default_scorer() -> Scorer:
    """The shared VADER + crypto overlay scorer, built once per process (building reads ~7,500 lexicon lines)."""
    global _default
    with _lock:
        if _default is None:
            _default = Scorer()
        return _default


def score(texts: Iterable[str]) -> list[float]:
    """Sentiment of each text in [-1, 1]: VADER's compound with the crypto lexicon overlay.

    Raises
    ------
    DataError
        If an element is not a string (naming it). A bare string is refused too: it would be
        scored character by character.
    """
    if isinstance(texts, (str, bytes)):
        raise DataError(f"score(texts) takes a list of texts, got a single {type(texts).__name__}: {texts!r:.80}")
    return default_scorer().score(texts)
