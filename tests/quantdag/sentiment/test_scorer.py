"""The scorer: hand-labelled headlines (crypto slang included) get the right sign; bad input is refused."""

from __future__ import annotations

import pytest

from quantdag.errors import DataError
from quantdag.sentiment import Scorer, score

#: Written and labelled by hand for this test: +1 bullish, -1 bearish, 0 neutral.
LABELLED = [
    ("Bitcoin smashes through its all-time high as bulls pile in", 1),
    ("ETH to the moon, wagmi", 1),
    ("Solana is mooning, lambo season is here", 1),
    ("Hodl strong, BTC bullish breakout confirmed", 1),
    ("Spot bitcoin ETF approved by the SEC", 1),
    ("Record inflows lift Ether to a new high", 1),
    ("SOL rebounds as short squeeze hits bears", 1),
    ("Analysts turn bullish on Ethereum after upgrade", 1),
    ("Got rekt on my ETH longs again", -1),
    ("Devs pulled a rug pull, token down 95%", -1),
    ("Bitcoin dumps 10% as liquidations cascade", -1),
    ("USDC loses its peg, panic spreads across DeFi", -1),
    ("Exchange hacked, $200m drained from hot wallet", -1),
    ("Bearish divergence: BTC slides below support", -1),
    ("So much FUD about Solana today, ngmi", -1),
    ("Crypto lender files for bankruptcy", -1),
    ("Ether plunges in a brutal sell-off", -1),
    ("Stablecoin depegs amid bank run fears", -1),
    ("Bitcoin trades sideways ahead of CPI data", 0),
    ("Ethereum developers schedule a call for Thursday", 0),
]


@pytest.mark.parametrize(("text", "label"), LABELLED)
def test_score_hand_labelled_headline_has_its_sign(text: str, label: int) -> None:
    (s,) = score([text])
    assert -1.0 <= s <= 1.0
    if label > 0:
        assert s > 0.05, (text, s)
    elif label < 0:
        assert s < -0.05, (text, s)
    else:
        assert abs(s) < 0.3, (text, s)


def test_score_overlay_fixes_slang_raw_vader_misses() -> None:
    raw = Scorer({}, phrases=False)
    for text in ("ETH to the moon, wagmi", "Got rekt on my ETH longs again", "Hodl strong, BTC bullish"):
        ours, theirs = score([text])[0], raw.score_one(text)
        assert abs(ours) > abs(theirs) + 0.2, (text, ours, theirs)


def test_score_keeps_order_and_length_and_empty_text_is_zero() -> None:
    texts = ["BTC bullish", "", "ETH rekt", "   "]
    out = score(texts)
    assert len(out) == 4 and out[1] == 0.0 and out[3] == 0.0
    assert out[0] > 0 > out[2]


def test_score_refuses_non_text_naming_it() -> None:
    with pytest.raises(DataError, match="got int: 42"):
        score(["fine", 42])  # type: ignore[list-item]
    with pytest.raises(DataError, match="single str"):
        score("BTC bullish")  # a bare string would be scored letter by letter
