"""The crypto lexicon we maintain on top of VADER's: slang and market words VADER scores 0 or wrongly.

Weights are on VADER's scale (-4 .. +4, a typical strong word ~ 2-3). VADER was built on social
media in general: "moon", "hodl", "rekt", "pump", "rug", "ATH" mean nothing to it, and a few
words it knows mean something else in markets ("bubble" is neutral to it, "greed" negative where a
trader means euphoria). Multi-word expressions are rewritten into one token first
(:data:`PHRASES`), because VADER looks words up one at a time.

Edit here, and add a hand-labelled headline to ``tests/quantdag/sentiment/test_scorer.py`` for
every term whose sign matters.
"""

from __future__ import annotations

import re

#: token (lower case) -> valence on VADER's scale. Overrides VADER's own entry where both exist.
CRYPTO_LEXICON: dict[str, float] = {
    # trader slang
    "bullish": 2.4, "bull": 1.5, "bulls": 1.2, "bearish": -2.4, "bear": -1.5, "bears": -1.2,
    "moon": 2.2, "mooning": 2.6, "moons": 2.2, "tothemoon": 2.8, "lambo": 1.8,
    "hodl": 1.2, "hodling": 1.2, "wagmi": 1.8, "ngmi": -1.8, "gm": 0.4,
    "rekt": -2.6, "rugpull": -3.2, "rug": -2.8, "rugged": -3.0, "scam": -2.9, "ponzi": -2.9,
    "pump": 1.2, "pumps": 1.2, "pumping": 1.4, "pumped": 1.2, "dump": -2.0, "dumps": -2.0, "dumping": -2.2, "dumped": -2.0,
    "fud": -1.8, "fomo": 0.8, "shill": -1.0, "shilling": -1.0, "capitulation": -2.4, "capitulate": -2.2,
    "ath": 2.4, "alltimehigh": 2.4, "atl": -2.4, "alltimelow": -2.4, "bagholder": -1.8, "bagholders": -1.8,
    "liquidated": -2.2, "liquidation": -1.8, "liquidations": -1.8, "shortsqueeze": 1.6,
    # market moves
    "rally": 2.0, "rallies": 2.0, "rallied": 2.0, "surge": 2.0, "surges": 2.0, "surged": 2.0,
    "soar": 2.3, "soars": 2.3, "soared": 2.3, "jump": 1.4, "jumps": 1.4, "jumped": 1.4,
    "climb": 1.2, "climbs": 1.2, "gain": 1.3, "gains": 1.4, "rebound": 1.6, "rebounds": 1.6,
    "recovery": 1.4, "recovers": 1.5, "breakout": 1.8, "uptrend": 1.6, "outperform": 1.5, "outperforms": 1.5,
    "plunge": -2.4, "plunges": -2.4, "plunged": -2.4, "crash": -2.8, "crashes": -2.8, "crashed": -2.8,
    "slump": -2.0, "slumps": -2.0, "tumble": -2.0, "tumbles": -2.0, "tank": -2.0, "tanks": -2.0,
    "selloff": -2.2, "sell-off": -2.2, "bleed": -1.8, "bleeding": -1.8, "dip": -0.8, "dips": -0.8,
    "slide": -1.4, "slides": -1.4, "drop": -1.4, "drops": -1.4, "falls": -1.3, "fall": -1.2, "sinks": -1.6,
    "downtrend": -1.6, "correction": -1.0, "underperform": -1.5, "volatile": -0.6,
    # events
    "hack": -2.6, "hacked": -2.8, "exploit": -2.6, "exploited": -2.8, "drained": -2.6, "breach": -2.4,
    "depeg": -2.8, "depegs": -2.8, "depegged": -2.8, "insolvent": -3.0, "insolvency": -3.0,
    "bankrupt": -3.0, "bankruptcy": -3.0, "halt": -1.6, "halts": -1.6, "delist": -2.0, "delisted": -2.0,
    "delisting": -2.0, "crackdown": -2.0, "lawsuit": -1.6, "sued": -1.8, "probe": -1.2, "fraud": -3.0,
    "outflows": -1.2, "inflows": 1.2, "adoption": 1.6, "approval": 2.2, "approved": 2.0, "approves": 2.0,
    "etf": 0.4, "listing": 1.0, "listed": 0.8, "upgrade": 1.2, "partnership": 1.4, "integrates": 1.0,
    "whale": 0.0, "bubble": -1.2, "greed": 0.6, "euphoria": 1.8, "panic": -2.8, "fear": -2.2,
    "record": 1.2, "milestone": 1.4,
}

#: Multi-word expressions -> the one token of :data:`CRYPTO_LEXICON` that stands for them.
PHRASES: dict[str, str] = {
    r"all[- ]time[- ]highs?": "alltimehigh",
    r"all[- ]time[- ]lows?": "alltimelow",
    r"to the moon": "tothemoon",
    r"rug[- ]?pull(?:ed|s)?": "rugpull",
    r"short[- ]squeeze": "shortsqueeze",
    r"sell[- ]off": "selloff",
    r"bag[- ]?holders?": "bagholder",
    r"new highs?": "alltimehigh",
    r"losing (?:its|the) peg|loses (?:its|the) peg|breaks? (?:its|the) peg": "depeg",
    r"de-peg(?:s|ged)?": "depeg",
}

_PHRASE_RE = re.compile("|".join(f"(?:{p})" for p in PHRASES), re.IGNORECASE)
_COMPILED = [(re.compile(p, re.IGNORECASE), token) for p, token in PHRASES.items()]


def rewrite_phrases(text: str) -> str:
    """``text`` with every expression of :data:`PHRASES` replaced by its token (one regex pass when none match)."""
    if not _PHRASE_RE.search(text):
        return text
    for pattern, token in _COMPILED:
        text = pattern.sub(token, text)
    return text
