"""The exchange client with the real ccxt binance class over real HTTP to the simulator."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from quantdag.data import clean_candles
from quantdag.errors import ConfigurationError, ExchangeError, ExchangeUnavailable
from quantdag.exchange import Credentials, ExchangeClient, ExchangeConfig, RetryPolicy
from quantdag.sim import Fault, FaultPlan

DAY = 86_400_000
HOUR = 3_600_000
FAST_RETRY = RetryPolicy(max_retries=4, base_delay=0.01, max_delay=0.05, max_ban_wait=5)


@pytest.fixture
def client(sim):
    sim.faults = None
    yield ExchangeClient(
        ExchangeConfig(venue="sim", api_url=sim.api_url, timeout_ms=1000, page_limit=50, retry=FAST_RETRY)
    )
    sim.faults = None


def _window(days: int = 3) -> tuple[int, int]:
    end = int(datetime.now(timezone.utc).timestamp() * 1000) // DAY * DAY - DAY
    return end - days * DAY, end


def _clean(raw: pl.DataFrame, start: int, end: int):
    return clean_candles(raw, start=start, end=end)


def test_fetch_candles_paginates_window_exactly_matching_model(client, sim):
    start, end = _window(3)
    raw = client.fetch_candles("BTC/USDT", "1h", start, end)
    assert raw.height == 72
    assert raw["ts"].to_list() == list(range(start, end, HOUR))
    assert set(raw["exchange"]) == {"sim"} and set(raw["symbol"]) == {"BTC/USDT"}
    model = sim.model.klines("BTC/USDT", "1h", start, end)
    assert raw["close"].to_list() == pytest.approx(model["close"].to_list(), rel=1e-12)


def test_fetch_candles_respects_exchange_rate_limit(client, sim):
    start, end = _window(12)
    seq = sim.last_seq
    client.fetch_candles("ETH/USDT", "1h", start, end)  # 288 candles / 50 per page = 6 pages
    recs = [r for r in sim.requests_since(seq) if r.path == "/api/v3/klines"]
    times = [r.t for r in recs]
    assert len(times) >= 6 and all(r.status == 200 for r in recs)
    # ccxt spaces calls by rateLimit x the endpoint's weight (klines: 0.4 of Binance's 1200/min); its
    # token bucket lets one call through early after idling
    per_call = client.ccxt.rateLimit * client.ccxt.api["public"]["get"]["klines"]["cost"] / 1000
    assert times[-1] - times[0] >= (len(times) - 2) * per_call * 0.9


def test_fetch_candles_unknown_symbol_names_it(client):
    with pytest.raises(ConfigurationError, match="'DOGE/XYZ'"):
        client.fetch_candles("DOGE/XYZ", "1h", *_window(1))


def test_fetch_candles_unknown_timeframe_names_it(client):
    with pytest.raises(ConfigurationError, match="'7m'"):
        client.fetch_candles("BTC/USDT", "7m", *_window(1))


def test_fetch_candles_empty_or_reversed_window_rejected(client):
    start, end = _window(1)
    with pytest.raises(ConfigurationError, match=str(end)):
        client.fetch_candles("BTC/USDT", "1h", end, start)


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("rate_limit", {"count": 2, "retry_after_s": 1}),
        ("server_error", {"count": 3}),
        ("timeout", {"count": 1, "delay_s": 2.0}),
        ("reset", {"count": 2}),
        ("maintenance_html", {"count": 2, "status": 503}),
        ("empty_page", {"count": 1}),
    ],
)
def test_transient_fault_is_retried_and_result_equals_clean_run(client, sim, kind, params):
    start, end = _window(2)
    golden = client.fetch_candles("SOL/USDT", "1h", start, end)
    sim.inject(kind, path="/api/v3/klines", **params)
    seq = sim.last_seq
    got = client.fetch_candles("SOL/USDT", "1h", start, end)
    faulted = [r for r in sim.requests_since(seq) if r.fault == kind]
    assert len(faulted) == params["count"]
    assert got.drop("fetched_at").equals(golden.drop("fetched_at"))


def test_rate_limit_retry_after_means_no_request_until_it_ends(client, sim):
    start, end = _window(1)
    sim.inject("rate_limit", count=1, path="/api/v3/klines", retry_after_s=1)
    seq = sim.last_seq
    client.fetch_candles("BTC/USDT", "1h", start, end)
    recs = [r for r in sim.requests_since(seq) if r.path == "/api/v3/klines"]
    assert recs[0].status == 429
    assert recs[1].t - recs[0].t >= 1.0


def test_ban_418_waits_out_ban_with_zero_requests_during_it(client, sim):
    start, end = _window(1)
    sim.inject("ban", count=1, path="/api/v3/klines", retry_after_s=1)
    seq = sim.last_seq
    raw = client.fetch_candles("BTC/USDT", "1h", start, end)
    assert raw.height == 24
    recs = sim.requests_since(seq)
    banned = [r for r in recs if r.status == 418]
    assert len(banned) == 1  # the client did not knock again during the ban
    after = [r for r in recs if r.seq > banned[0].seq]
    assert after and after[0].t - banned[0].t >= 1.0


def test_ban_longer_than_budget_fails_fast_with_typed_error(client, sim):
    sim.inject("ban", count=1, path="/api/v3/klines", retry_after_s=60)
    with pytest.raises(ExchangeUnavailable, match="wait 60s"):
        client.fetch_candles("BTC/USDT", "1h", *_window(1))
    sim.unban()


def test_persistent_server_errors_give_up_after_bounded_retries(client, sim):
    sim.inject("server_error", count=50, path="/api/v3/klines")
    seq = sim.last_seq
    with pytest.raises(ExchangeUnavailable, match="gave up after 5 attempts"):
        client.fetch_candles("BTC/USDT", "1h", *_window(1))
    assert len([r for r in sim.requests_since(seq) if r.path == "/api/v3/klines"]) == 5


def test_truncated_json_page_is_retried_alone_and_the_fetch_completes(client, sim):
    """#14: a body cut off mid-JSON is a transient fault: that one request is retried, not the backfill."""
    start, end = _window(1)
    golden = client.fetch_candles("BTC/USDT", "1h", start, end)
    sim.inject("malformed_json", count=1, path="/api/v3/klines")
    seq = sim.last_seq
    got = client.fetch_candles("BTC/USDT", "1h", start, end)
    assert got.drop("fetched_at").equals(golden.drop("fetched_at"))
    assert len([r for r in sim.requests_since(seq) if r.path == "/api/v3/klines"]) == 2


def test_truncated_json_every_time_gives_up_as_unavailable_naming_the_call(client, sim):
    sim.inject("malformed_json", count=50, path="/api/v3/klines")
    seq = sim.last_seq
    with pytest.raises(ExchangeUnavailable, match=r"fetch_ohlcv BTC/USDT 1h.*TruncatedBody"):
        client.fetch_candles("BTC/USDT", "1h", *_window(1))
    assert len([r for r in sim.requests_since(seq) if r.path == "/api/v3/klines"]) == 5


def test_maintenance_page_with_200_is_a_typed_error(client, sim):
    sim.inject("maintenance_html", count=1, path="/api/v3/klines", status=200)
    with pytest.raises(ExchangeError, match="BTC/USDT"):
        client.fetch_candles("BTC/USDT", "1h", *_window(1))


@pytest.mark.parametrize("kind", ["duplicate_rows", "out_of_order", "open_last_candle", "seconds_timestamps"])
def test_page_fault_cleans_to_the_golden_candles(client, sim, kind):
    start, end = _window(3)
    golden = _clean(client.fetch_candles("ETH/USDT", "1h", start, end), start, end).candles
    sim.inject(kind, count=2, path="/api/v3/klines")
    seq = sim.last_seq
    raw = client.fetch_candles("ETH/USDT", "1h", start, end)
    assert any(r.fault == kind for r in sim.requests_since(seq))
    res = _clean(raw, start, end)
    assert res.candles.equals(golden)
    assert res.gaps.height == 0


def test_missing_candles_fault_is_filled_and_recorded_as_gaps(client, sim):
    start, end = _window(3)
    golden = _clean(client.fetch_candles("ETH/USDT", "1h", start, end), start, end).candles
    sim.inject("missing_candles", count=1, path="/api/v3/klines", fraction=0.1)
    res = _clean(client.fetch_candles("ETH/USDT", "1h", start, end), start, end)
    assert res.candles.height == golden.height  # gap-free grid
    assert res.gaps.height >= 1 and int(res.gaps["missing"].sum()) == int(res.candles["filled"].sum())
    real = res.candles.filter(~pl.col("filled"))
    assert real.equals(golden.join(real.select("ts"), on="ts", how="semi"))


def test_seeded_random_faults_of_every_transient_kind_still_yield_golden_candles(client, sim):
    start, end = _window(5)
    golden = _clean(client.fetch_candles("BTC/USDT", "1h", start, end), start, end).candles
    kinds = ("rate_limit", "server_error", "reset", "duplicate_rows", "out_of_order", "seconds_timestamps")
    sim.faults = FaultPlan(
        random=[Fault(k, probability=0.08, path="/api/v3/klines", **({"retry_after_s": 1} if k == "rate_limit" else {})) for k in kinds],
        seed=11,
    )
    for _ in range(3):
        res = _clean(client.fetch_candles("BTC/USDT", "1h", start, end), start, end)
        assert res.candles.equals(golden)


def test_canary_secrets_never_reach_logs_errors_or_repr(sim, caplog, monkeypatch):
    key, secret = "canaryAPIKEY-1234567890abcdef", "canarySECRET-fedcba0987654321"
    monkeypatch.setenv("QUANTDAG_BINANCE_API_KEY", key)
    monkeypatch.setenv("QUANTDAG_BINANCE_SECRET", secret)
    client = ExchangeClient(ExchangeConfig(venue="sim", api_url=sim.api_url, timeout_ms=1000, retry=FAST_RETRY))
    assert client.ccxt.apiKey == key  # the keys are in use
    texts = [repr(client), str(client.config)]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("ccxt").setLevel(logging.DEBUG)
        client.ccxt.verbose = False
        client.fetch_candles("BTC/USDT", "1h", *_window(1))
        for bad in (lambda: client.fetch_candles("NOPE/USDT", "1h", *_window(1)),):
            try:
                bad()
            except Exception as exc:  # noqa: BLE001 - scanning every error text
                texts.append(f"{exc!r} {exc}")
        sim.inject("server_error", count=10, path="/api/v3/klines")
        try:
            client.fetch_candles("BTC/USDT", "1h", *_window(1))
        except ExchangeError as exc:
            texts.append(str(exc))
        logging.getLogger("quantdag").warning("keys were %s %s", key, secret)
    sim.faults = None
    texts.append(caplog.text)
    blob = "\n".join(texts)
    assert key not in blob and secret not in blob
    assert "***" in caplog.text
