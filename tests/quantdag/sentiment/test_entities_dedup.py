"""Entity mapping to the configured universe, and near-duplicate stories counted once."""

from __future__ import annotations

from quantdag.config import load_config
from quantdag.markets import Market
from quantdag.sentiment.dedup import first_copies
from quantdag.sentiment.entities import EntityMap, universe_assets


def test_entity_map_finds_names_tickers_and_aliases_of_the_universe() -> None:
    e = EntityMap.for_assets(["BTC", "ETH", "SOL", "USDC", "USDT"])
    assert e.tag("Bitcoin and $ETH rally") == ("BTC", "ETH")
    assert e.tag("XBT futures open higher") == ("BTC",)
    assert e.tag("Ether slips; ethereum fees fall") == ("ETH",)
    assert e.tag("USD Coin regains its peg") == ("USDC",)
    assert e.tag("Tether prints more") == ("USDT",)
    assert e.tag("a sol y sombra, solana beach") == ("SOL",)  # the lower-case ticker is a word, the name is not
    assert e.tag("Dogecoin jumps") == ()  # not in this universe


def test_entity_map_reads_the_configured_markets_and_knows_an_unlisted_ticker() -> None:
    config = load_config()
    assets = universe_assets(config.markets)
    assert {"BTC", "ETH", "SOL", "USDC", "USDT"} <= set(assets)
    e = EntityMap.for_markets([*config.markets, Market("sim", "PEPE/USDT", "1h")])
    assert e.tag("PEPE and Bitcoin both up") == ("BTC", "PEPE")


def test_first_copies_groups_reworded_copies_and_keeps_distinct_stories_apart() -> None:
    texts = [
        "Bitcoin surges to a new all-time high",
        "Breaking: Bitcoin surges to a new all-time high",
        "Ether slides amid regulatory worries",
        "Bitcoin surges to a new all-time high - report",
        "Bitcoin slides amid regulatory worries",
        "Solana rebounds from support",
    ]
    assert first_copies(texts) == [0, 0, 2, 0, 4, 5]
