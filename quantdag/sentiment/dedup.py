"""Near-duplicate stories counted once: MinHash over normalised word shingles, banded LSH.

The same wire story reaches several outlets with a changed word or a source tag ("Bitcoin hits
record high - Reuters" / "BREAKING: Bitcoin hits a record high"); counting each copy would let one
event weigh three times in a bar's mean and count. Texts are lower-cased, stripped of punctuation
and stop words, and cut into word pairs (single words for one-word texts); 32 seeded hash
permutations give each text a signature whose agreement estimates the Jaccard similarity of the
shingle sets. Banding (8 bands of 4 rows) finds candidates without comparing every pair, so
adding a text costs O(1) on average. Deterministic: crc32 and a fixed seed, not Python's salted ``hash``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the of to in on for and or is are was were be by at as with from its it this that breaking update "
    "says said report reports via news just now new".split()
)
_PRIME = np.uint64((1 << 61) - 1)


def shingles(text: str) -> set[str]:
    """Normalised word pairs of ``text`` (its single words if it has fewer than two)."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    if len(words) < 2:
        return set(words)
    return {f"{a} {b}" for a, b in zip(words, words[1:])}


class NearDuplicates:
    """Texts seen so far; :meth:`add` says which earlier one a new text nearly repeats.

    Parameters
    ----------
    threshold
        Estimated Jaccard similarity of shingle sets at or above which a text is a duplicate.
    num_perm, bands
        Signature length and LSH bands (``num_perm`` must be a multiple of ``bands``).
    """

    def __init__(self, threshold: float = 0.7, *, num_perm: int = 32, bands: int = 8, seed: int = 1) -> None:
        if not 0.0 < threshold <= 1.0 or num_perm % bands:
            raise ValueError(f"need 0 < threshold <= 1 and num_perm % bands == 0, got {threshold}, {num_perm}, {bands}")
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, (1 << 61) - 1, size=num_perm, dtype=np.uint64)
        self._b = rng.integers(0, (1 << 61) - 1, size=num_perm, dtype=np.uint64)
        self.threshold = threshold
        self._rows = num_perm // bands
        self._bands = bands
        self._buckets: dict[tuple[int, bytes], list[int]] = {}
        self._sigs: list[np.ndarray] = []

    def signature(self, text: str) -> np.ndarray | None:
        """MinHash signature of ``text`` (None: nothing left after normalising)."""
        sh = shingles(text)
        if not sh:
            return None
        h = np.fromiter((zlib.crc32(s.encode()) for s in sh), dtype=np.uint64, count=len(sh))
        with np.errstate(over="ignore"):
            return ((self._a[:, None] * h[None, :] + self._b[:, None]) % _PRIME).min(axis=1)

    def add(self, text: str, since: int = 0) -> int | None:
        """Record ``text``; return the index (order of :meth:`add` calls) of the earliest text from
        index ``since`` on that it nearly repeats, or None if it is new. A duplicate is recorded too
        (under its own index)."""
        index = len(self._sigs)
        sig = self.signature(text)
        self._sigs.append(sig if sig is not None else np.empty(0, dtype=np.uint64))
        if sig is None:
            return None
        best: int | None = None
        keys = [(band, sig[band * self._rows:(band + 1) * self._rows].tobytes()) for band in range(self._bands)]
        for key in keys:
            for other in self._buckets.get(key, ()):
                if other >= since and (best is None or other < best) and float(np.mean(self._sigs[other] == sig)) >= self.threshold:
                    best = other
        for key in keys:
            self._buckets.setdefault(key, []).append(index)
        return best


def first_copies(texts: Sequence[str] | Iterable[str], threshold: float = 0.7) -> list[int]:
    """For each text, the index of the first text of its near-duplicate group (its own index if new)."""
    seen = NearDuplicates(threshold)
    out: list[int] = []
    for i, t in enumerate(texts):
        dup = seen.add(t)
        out.append(i if dup is None else out[dup])
    return out
