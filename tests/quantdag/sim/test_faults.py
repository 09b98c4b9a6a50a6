"""Fault injection: the plan itself, then every fault kind as the real ccxt client experiences it."""

from __future__ import annotations

import json
import time
from collections import Counter

import ccxt
import pytest

from quantdag.errors import ConfigurationError
from quantdag.sim import FAULT_KINDS, PAGE_FAULTS, Fault, FaultPlan, SimExchange
from quantdag.sim.faults import NEWS_FAULTS
from quantdag.sim.faults import KLINES_PATH, Draw, rewrite_page

from .support import GENESIS, NOW, http, http_json

HOUR = 3_600_000
SINCE = GENESIS + 24 * HOUR  # a historical page: five closed candles
PAGE = [SINCE + k * HOUR for k in range(5)]


def _page(ex: ccxt.binance, **kwargs: object) -> list[list]:
    return ex.fetch_ohlcv("BTC/USDT", "1h", **{"since": SINCE, "limit": 5, **kwargs})


def _raw_page(sim: SimExchange, limit: int = 5) -> tuple[int, bytes]:
    status, _, raw = http("GET", f"{sim.api_url}/klines?symbol=BTCUSDT&interval=1h&startTime={SINCE}&limit={limit}")
    return status, raw


# ---- the plan -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "meteor"}, "unknown fault kind"),
        ({"kind": "rate_limit", "count": 0}, "count"),
        ({"kind": "server_error", "probability": 1.5}, "probability"),
        ({"kind": "server_error", "status": 404}, "status"),
        ({"kind": "maintenance_html", "status": 500}, "status"),
        ({"kind": "timeout", "path": "api/v3/klines"}, "path"),
        ({"kind": "missing_candles", "fraction": 0.0}, "fraction"),
    ],
)
def test_fault_bad_parameters_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Fault(**kwargs)


def test_fault_page_kinds_match_only_klines() -> None:
    for kind in FAULT_KINDS:
        fault = Fault(kind)
        assert fault.matches(KLINES_PATH) == (kind not in NEWS_FAULTS)
        assert fault.matches("/api/v3/depth") == (kind not in PAGE_FAULTS | NEWS_FAULTS)
        assert fault.matches("/news/feed.json") == (kind not in PAGE_FAULTS)
    assert not Fault("reset", path="/api/v3/depth").matches(KLINES_PATH)


def test_plan_scripted_queue_consumed_in_order_skipping_other_paths() -> None:
    plan = FaultPlan([Fault("server_error", count=2, path="/api/v3/depth"), Fault("empty_page")])
    kinds = [(d.fault.kind if (d := plan.draw(p)) else None)
             for p in ("/api/v3/klines", "/api/v3/depth", "/api/v3/depth", "/api/v3/depth", "/api/v3/time")]
    assert kinds == ["empty_page", "server_error", "server_error", None, None]
    assert plan.scripted == ()


def test_plan_random_faults_reproducible_under_seed() -> None:
    def sequence(seed: int) -> list[str | None]:
        plan = FaultPlan.with_rates({"server_error": 0.2, "timeout": 0.1}, seed=seed)
        return [(d.fault.kind if (d := plan.draw("/api/v3/klines")) else None) for _ in range(2000)]

    first = sequence(3)
    assert first == sequence(3)
    assert first != sequence(4)
    counts = Counter(first)
    assert 330 < counts["server_error"] < 470 and 140 < counts["timeout"] < 260


def test_plan_probabilities_over_one_raise() -> None:
    with pytest.raises(ConfigurationError, match="more than 1"):
        FaultPlan.with_rates({"server_error": 0.7, "reset": 0.6})


def test_plan_dict_round_trip_and_rates_shorthand() -> None:
    scripted = [Fault("timeout", count=3, delay_s=0.5)]
    plan = FaultPlan(scripted, [Fault("reset", probability=0.25, path="/api/v3/time")], seed=9)
    again = FaultPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.to_dict() == plan.to_dict()
    short = FaultPlan.from_dict({"rates": {"empty_page": 0.5}, "path": KLINES_PATH, "seed": 1})
    assert short.random == (Fault("empty_page", probability=0.5, path=KLINES_PATH),)
    with pytest.raises(ConfigurationError, match="unknown fault plan fields"):
        FaultPlan.from_dict({"faults": []})
    with pytest.raises(ConfigurationError, match="unknown fault fields"):
        FaultPlan.from_dict({"scripted": [{"kind": "reset", "times": 2}]})


def test_rewrite_page_same_draw_same_rewrite() -> None:
    rows = [[t, "1", "2", "0.5", "1.5", "3", t + 59_999, "4", 5, "1", "2", "0"] for t in range(0, 60_000 * 20, 60_000)]
    draw = Draw(Fault("missing_candles", fraction=0.3), index=4, seed=1)
    first = rewrite_page(draw, rows, overlap=[], open_row=None, limit=20)
    assert first == rewrite_page(draw, rows, overlap=[], open_row=None, limit=20)
    assert len(first) == 14 and first[0] == rows[0] and first[-1] == rows[-1]
    other = rewrite_page(Draw(draw.fault, index=5, seed=1), rows, overlap=[], open_row=None, limit=20)
    assert other != first


# ---- every kind through the real ccxt client -------------------------------------------------


def test_rate_limit_429_retry_after_ccxt_ddos_protection(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("rate_limit", retry_after_s=1.5)
    with pytest.raises(ccxt.DDoSProtection, match="429") as info:
        _page(ex)
    assert type(info.value) is ccxt.DDoSProtection  # ccxt's binance maps 429 like 418, not to RateLimitExceeded
    assert ex.last_response_headers["Retry-After"] == "2"
    assert len(_page(ex)) == 5  # one fault only
    assert [(r.status, r.fault) for r in sim.requests] == [(429, "rate_limit"), (200, None)]


def test_ban_418_then_every_request_banned_until_it_expires(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("ban", retry_after_s=0.6, path=KLINES_PATH)
    with pytest.raises(ccxt.DDoSProtection, match="418") as info:
        _page(ex)
    assert type(info.value) is ccxt.DDoSProtection
    assert ex.last_response_headers["Retry-After"] == "1"
    with pytest.raises(ccxt.DDoSProtection, match="IP banned until"):
        ex.fetch_time()  # another path: still banned
    assert 0 < sim.banned_for <= 0.6
    time.sleep(0.65)
    assert ex.fetch_time() == NOW
    assert [(r.status, r.fault) for r in sim.requests] == [(418, "ban"), (418, "banned"), (200, None)]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_5xx_ccxt_exchange_not_available(ex: ccxt.binance, sim: SimExchange, status: int) -> None:
    sim.inject("server_error", status=status)
    with pytest.raises(ccxt.ExchangeNotAvailable, match=str(status)) as info:
        _page(ex)
    assert type(info.value) is ccxt.ExchangeNotAvailable
    assert sim.requests[-1].status == status


def test_server_error_without_status_seeded_choice(sim: SimExchange) -> None:
    sim.faults = FaultPlan([Fault("server_error", count=12)], seed=5)
    statuses = [_raw_page(sim)[0] for _ in range(12)]
    sim.faults = FaultPlan([Fault("server_error", count=12)], seed=5)
    assert [_raw_page(sim)[0] for _ in range(12)] == statuses
    assert set(statuses) == {500, 502, 503}


def test_timeout_connection_held_ccxt_request_timeout(ex: ccxt.binance, sim: SimExchange) -> None:
    ex.timeout = 500
    sim.inject("timeout", delay_s=1.5)
    t0 = time.monotonic()
    with pytest.raises(ccxt.RequestTimeout) as info:
        _page(ex)
    assert type(info.value) is ccxt.RequestTimeout
    assert 0.45 < time.monotonic() - t0 < 1.4
    assert len(_page(ex)) == 5
    assert [(r.status, r.fault) for r in sim.requests] == [(None, "timeout"), (200, None)]


def test_reset_connection_dropped_ccxt_network_error(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("reset")
    with pytest.raises(ccxt.NetworkError) as info:
        _page(ex)
    assert type(info.value) is ccxt.NetworkError
    assert len(_page(ex)) == 5
    assert [(r.status, r.fault) for r in sim.requests] == [(None, "reset"), (200, None)]


def test_malformed_json_200_ccxt_passes_garbage_through(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("malformed_json", count=3)
    status, raw = _raw_page(sim)
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    assert _page(ex) == []  # the text is parsed character by character, then filtered by since
    rows = ex.fetch_ohlcv("BTC/USDT", "1h", limit=3)  # without since the characters come through
    assert len(rows) == 3 and all(r[1:] == [None] * 5 for r in rows)


def test_maintenance_html_503_ccxt_exchange_not_available(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("maintenance_html")
    with pytest.raises(ccxt.ExchangeNotAvailable, match="maintenance") as info:
        _page(ex)
    assert type(info.value) is ccxt.ExchangeNotAvailable


def test_maintenance_html_200_ccxt_returns_empty_ticker(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("maintenance_html", status=200)
    ticker = ex.fetch_ticker("BTC/USDT")
    assert ticker["last"] is None and ticker["bid"] is None and ticker["timestamp"] is None
    assert sim.requests[-1].status == 200


def test_empty_page_ccxt_returns_no_candles(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("empty_page", path=KLINES_PATH)
    assert _page(ex) == []
    assert len(_page(ex)) == 5


def test_duplicate_rows_repeat_previous_page_and_in_page_rows(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("duplicate_rows", count=2, fraction=0.4)
    status, raw = _raw_page(sim)
    rows = json.loads(raw)
    assert status == 200 and [r[0] for r in rows[:2]] == [SINCE - 2 * HOUR, SINCE - HOUR]  # overlap
    assert len(rows) == 9 and len({r[0] for r in rows}) == 7
    times = [r[0] for r in _page(ex)]  # ccxt drops the overlap (before since) but keeps duplicates
    assert len(times) == 5 and len(set(times)) < 5 and set(times) <= set(PAGE)


def test_out_of_order_page_shuffled_ccxt_sorts_it_back(ex: ccxt.binance, sim: SimExchange) -> None:
    clean = _page(ex)
    sim.inject("out_of_order", count=2)
    raw_times = [r[0] for r in json.loads(_raw_page(sim)[1])]
    assert sorted(raw_times) == PAGE and raw_times != PAGE
    assert _page(ex) == clean


def test_missing_candles_interior_rows_removed(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("missing_candles", fraction=0.4)
    times = [r[0] for r in _page(ex)]
    assert times[0] == PAGE[0] and times[-1] == PAGE[-1] and len(times) == 3 and set(times) < set(PAGE)


def test_open_last_candle_historical_page_ends_with_candle_open_at_now(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("open_last_candle")
    rows = _page(ex)
    assert [r[0] for r in rows] == [*PAGE[:4], NOW // HOUR * HOUR]
    sim.inject("open_last_candle")
    raw = json.loads(_raw_page(sim)[1])
    assert raw[-1][6] > NOW  # its close time is still in the future


def test_open_candle_at_now_served_without_any_fault(sim: SimExchange) -> None:
    rows = json.loads(http("GET", f"{sim.api_url}/klines?symbol=BTCUSDT&interval=1h&limit=2")[2])
    assert rows[-1][0] == NOW // HOUR * HOUR and rows[-1][6] > NOW and rows[0][6] < NOW


def test_seconds_timestamps_ccxt_filters_page_away_or_passes_seconds(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("seconds_timestamps", count=3)
    raw = json.loads(_raw_page(sim)[1])
    assert [r[0] for r in raw] == [t // 1000 for t in PAGE] and raw[0][6] == (PAGE[0] + HOUR - 1) // 1000
    assert _page(ex) == []  # every timestamp is before since
    rows = ex.fetch_ohlcv("BTC/USDT", "1h", limit=2)
    assert [r[0] for r in rows] == [(NOW // HOUR * HOUR - HOUR) // 1000, NOW // HOUR * HOUR // 1000]


def test_fault_restricted_to_path_spares_other_endpoints(ex: ccxt.binance, sim: SimExchange) -> None:
    sim.inject("server_error", status=503, path="/api/v3/depth")
    assert len(_page(ex)) == 5
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.fetch_order_book("BTC/USDT", 5)


def test_random_faults_seeded_rate_observed_in_request_log(sim: SimExchange) -> None:
    sim.faults = FaultPlan.with_rates({"server_error": 0.3}, seed=11, path=KLINES_PATH, status=502)
    statuses = [_raw_page(sim)[0] for _ in range(60)]
    assert 8 <= statuses.count(502) <= 30 and statuses.count(200) == 60 - statuses.count(502)
    assert [r.status for r in sim.requests] == statuses
    sim.faults = FaultPlan.with_rates({"server_error": 0.3}, seed=11, path=KLINES_PATH, status=502)
    assert [_raw_page(sim)[0] for _ in range(60)] == statuses


# ---- control over HTTP (as a pipeline in another process would) --------------------------------


def test_control_post_faults_scripted_plan_applies_to_ccxt(ex: ccxt.binance, sim: SimExchange) -> None:
    plan = {"seed": 2, "scripted": [{"kind": "server_error", "status": 502, "count": 2, "path": KLINES_PATH}]}
    assert http_json("POST", f"{sim.url}/sim/faults", plan)["scripted"][0]["count"] == 2
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            _page(ex)
    assert len(_page(ex)) == 5
    assert http_json("GET", f"{sim.url}/sim/faults")["scripted"] == []


def test_control_inject_and_clear_over_http(ex: ccxt.binance, sim: SimExchange) -> None:
    http_json("POST", f"{sim.url}/sim/faults/inject", {"kind": "ban", "retry_after_s": 30})
    with pytest.raises(ccxt.DDoSProtection):
        ex.fetch_time()
    http_json("DELETE", f"{sim.url}/sim/faults")  # clears the plan and lifts the ban
    assert ex.fetch_time() == NOW and sim.faults is None


def test_control_bad_fault_json_rejected_with_400(sim: SimExchange) -> None:
    status, _, raw = http("POST", f"{sim.url}/sim/faults", {"scripted": [{"kind": "meteor"}]})
    assert status == 400 and b"unknown fault kind" in raw
    status, _, _ = http("GET", f"{sim.url}/sim/nothing")
    assert status == 404
