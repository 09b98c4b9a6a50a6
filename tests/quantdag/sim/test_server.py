"""SimExchange over real HTTP with the real ccxt binance client: endpoints, errors, limits, log."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import ccxt
import numpy as np
import pytest

from quantdag.errors import ConfigurationError
from quantdag.sim import TIMEFRAMES, MarketModel, RateLimits, SimClock, SimExchange, SimRequest, SimResponse
from quantdag.sim.paths import MS_PER_DAY
from quantdag.timeframes import timeframe_ms

from .support import GENESIS, NOW, http, http_json

HOUR = 3_600_000


def _klines(sim: SimExchange, **params: object) -> list[list]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return http_json("GET", f"{sim.api_url}/klines?{query}")


# ---- markets, time, candles ---------------------------------------------------------------


def test_ccxt_load_markets_every_market_spot_and_active(ex: ccxt.binance, model: MarketModel) -> None:
    assert sorted(ex.markets) == sorted(model.symbols)
    for spec in model.markets:
        market = ex.markets[spec.symbol]
        assert market["id"] == spec.id and market["spot"] and market["active"] and market["type"] == "spot"
        assert market["precision"]["price"] == pytest.approx(spec.tick)
        assert market["precision"]["amount"] == pytest.approx(spec.step)
        assert market["limits"]["cost"]["min"] == 5.0


def test_ccxt_fetch_time_is_the_sim_clock(ex: ccxt.binance) -> None:
    assert ex.fetch_time() == NOW


def test_ccxt_fetch_ohlcv_paginated_since_equals_model(ex: ccxt.binance, sim: SimExchange, model: MarketModel) -> None:
    rows: list[list] = []
    since = GENESIS
    while True:
        page = ex.fetch_ohlcv("ETH/USDT", "15m", since=since, limit=1000)
        if not page:
            break
        rows += page
        since = page[-1][0] + timeframe_ms("15m")
    frame = model.klines("ETH/USDT", "15m")
    assert len(rows) == frame.height == 30 * 96 + 55
    got = np.array(rows, dtype=float)
    assert np.array_equal(got[:, 0], frame["open_time"].to_numpy())
    for i, col in enumerate(("open", "high", "low", "close", "volume"), start=1):
        assert np.array_equal(got[:, i], frame[col].to_numpy()), col
    assert [r.path for r in sim.requests] == ["/api/v3/klines"] * 4


def test_ccxt_fetch_ohlcv_without_since_ends_with_open_candle(ex: ccxt.binance, model: MarketModel) -> None:
    rows = ex.fetch_ohlcv("BTC/USDT", "1h", limit=5)
    assert [r[0] for r in rows] == [NOW // HOUR * HOUR - k * HOUR for k in range(4, -1, -1)]
    assert rows[-1][4] == ex.fetch_ticker("BTC/USDT")["last"]  # the open candle's close is the last price


def test_ccxt_fetch_ohlcv_until_param_sets_end_time(ex: ccxt.binance) -> None:
    end = GENESIS + 10 * HOUR
    rows = ex.fetch_ohlcv("BTC/USDT", "1h", since=GENESIS, limit=1000, params={"until": end})
    assert [r[0] for r in rows] == [GENESIS + k * HOUR for k in range(11)]


def test_klines_start_inside_a_candle_starts_at_the_next_open(sim: SimExchange) -> None:
    rows = _klines(sim, symbol="BTCUSDT", interval="1h", startTime=GENESIS + 1, limit=2)
    assert [r[0] for r in rows] == [GENESIS + HOUR, GENESIS + 2 * HOUR]


def test_klines_end_time_only_returns_last_candles_up_to_it(sim: SimExchange) -> None:
    rows = _klines(sim, symbol="BTCUSDT", interval="1h", endTime=GENESIS + 5 * HOUR + 1, limit=3)
    assert [r[0] for r in rows] == [GENESIS + 3 * HOUR, GENESIS + 4 * HOUR, GENESIS + 5 * HOUR]


def test_klines_limit_defaults_to_500_and_is_capped_at_1000(sim: SimExchange) -> None:
    assert len(_klines(sim, symbol="BTCUSDT", interval="1m", startTime=GENESIS)) == 500
    assert len(_klines(sim, symbol="BTCUSDT", interval="1m", startTime=GENESIS, limit=1500)) == 1000


def test_klines_window_clipped_to_genesis_and_now(sim: SimExchange) -> None:
    early = _klines(sim, symbol="BTCUSDT", interval="1d", startTime=GENESIS - 50 * MS_PER_DAY, limit=2)
    assert [r[0] for r in early] == [GENESIS, GENESIS + MS_PER_DAY]
    assert _klines(sim, symbol="BTCUSDT", interval="1m", startTime=NOW + 60_000) == []


def test_klines_rows_have_binance_shape(sim: SimExchange) -> None:
    (row,) = _klines(sim, symbol="BTCUSDT", interval="1h", startTime=GENESIS, limit=1)
    assert len(row) == 12
    assert isinstance(row[0], int) and isinstance(row[6], int) and isinstance(row[8], int)
    assert row[6] == row[0] + HOUR - 1 and row[11] == "0"
    for i in (1, 2, 3, 4, 5, 7, 9, 10):
        assert isinstance(row[i], str) and len(row[i].split(".")[1]) == 8, row[i]


@pytest.mark.parametrize("tf", TIMEFRAMES)
def test_served_klines_every_market_ohlc_invariants(sim: SimExchange, model: MarketModel, tf: str) -> None:
    server_time = http_json("GET", f"{sim.api_url}/time")["serverTime"]
    for spec in model.markets:
        rows = _klines(sim, symbol=spec.id, interval=tf, limit=1000)
        assert len(rows) == min(1000, (NOW - GENESIS) // timeframe_ms(tf) + 1)
        o, h, lo, c, v, q, tb, tq = (np.array([float(r[i]) for r in rows]) for i in (1, 2, 3, 4, 5, 7, 9, 10))
        assert (lo <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all() and (lo > 0).all()
        assert (v > 0).all() and (q > 0).all() and (tb <= v).all() and (tq <= q).all()
        assert all(r[8] >= 1 for r in rows)
        assert [r[6] > server_time for r in rows] == [False] * (len(rows) - 1) + [True]  # only the last is open


# ---- tickers and books --------------------------------------------------------------------


def test_ccxt_fetch_ticker_matches_model(ex: ccxt.binance, model: MarketModel) -> None:
    t = ex.fetch_ticker("SOL/USDT")
    m = model.ticker("SOL/USDT")
    assert t["symbol"] == "SOL/USDT" and t["timestamp"] == NOW
    served = (t["last"], t["open"], t["high"], t["low"], t["bid"], t["ask"])
    assert served == (m.last, m.open, m.high, m.low, m.bid, m.ask)
    assert t["baseVolume"] == pytest.approx(m.volume) and t["quoteVolume"] == pytest.approx(m.quote_volume)
    assert t["percentage"] == pytest.approx(100 * (m.last - m.open) / m.open, abs=1e-3)


def test_ccxt_fetch_tickers_bids_asks_and_last_prices_cover_all_markets(ex: ccxt.binance, model: MarketModel) -> None:
    tickers = ex.fetch_tickers()
    assert sorted(tickers) == sorted(model.symbols)
    books = ex.fetch_bids_asks(["BTC/USDT", "ETH/USDT"])
    assert set(books) == {"BTC/USDT", "ETH/USDT"}
    assert books["BTC/USDT"]["bid"] < books["BTC/USDT"]["ask"]
    prices = ex.fetch_last_prices()
    assert prices["BNB/USDT"]["price"] == tickers["BNB/USDT"]["last"]


def test_ccxt_fetch_order_book_levels_sorted_and_limited(ex: ccxt.binance, model: MarketModel) -> None:
    book = ex.fetch_order_book("BTC/USDT", 20)
    assert len(book["bids"]) == len(book["asks"]) == 20
    bids = [p for p, _ in book["bids"]]
    asks = [p for p, _ in book["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    assert book["nonce"] == NOW
    assert bids == model.order_book("BTC/USDT", 20).bids[:, 0].tolist()


# ---- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error", "code"),
    [
        ({"symbol": "FOOUSDT", "interval": "1h"}, ccxt.BadSymbol, -1121),
        ({"symbol": "BTCUSDT", "interval": "7h"}, ccxt.BadRequest, -1120),
        ({"symbol": "BTCUSDT", "interval": "1w"}, ccxt.BadRequest, -1120),
        ({"interval": "1h"}, ccxt.BadRequest, -1102),
        ({"symbol": "BTCUSDT", "interval": "1h", "limit": "ten"}, ccxt.BadRequest, -1100),
        ({"symbol": "BTCUSDT", "interval": "1h", "limit": 0}, ccxt.BadRequest, -1130),
        ({"symbol": "BTCUSDT", "interval": "1h", "startTime": 5, "endTime": 3}, ccxt.ExchangeError, -1023),
    ],
)
def test_klines_bad_params_binance_error_mapped_by_ccxt(
    ex: ccxt.binance, sim: SimExchange, params: dict, error: type, code: int
) -> None:
    with pytest.raises(error) as info:
        ex.publicGetKlines(params)
    assert type(info.value) is error
    assert f'"code":{code}' in str(info.value)
    assert sim.requests[-1].status == 400


def test_depth_bad_limit_and_unknown_symbol_rejected(ex: ccxt.binance) -> None:
    with pytest.raises(ccxt.BadRequest, match="-1130"):
        ex.fetch_order_book("BTC/USDT", 6000)
    with pytest.raises(ccxt.BadSymbol, match="-1121"):
        ex.publicGetTicker24hr({"symbol": "NOPEUSDT"})


def test_unknown_path_404_and_wrong_method_405(ex: ccxt.binance, sim: SimExchange) -> None:
    with pytest.raises(ccxt.ExchangeNotAvailable, match="404"):
        ex.fetch(f"{sim.api_url}/nothingHere")
    status, _, _ = http("POST", f"{sim.api_url}/klines", {})
    assert status == 405


# ---- weights and rate limits ---------------------------------------------------------------


def _small_sim(**limits: object) -> SimExchange:
    model = MarketModel(3, genesis_ms=GENESIS, clock=SimClock(GENESIS + 2 * MS_PER_DAY + 1000))
    return SimExchange(model, limits=RateLimits(**limits))


def test_weight_header_counts_request_weights(sim: SimExchange) -> None:
    with _small_sim(weight_limit=6000, window_s=3600) as small:
        used = []
        paths = ("/klines?symbol=BTCUSDT&interval=1h", "/exchangeInfo", "/depth?symbol=BTCUSDT&limit=1000", "/ping")
        for path in paths:
            status, headers, _ = http("GET", small.api_url + path)
            assert status == 200
            used.append(int(headers["X-MBX-USED-WEIGHT-1M"]))
        assert used == [2, 22, 72, 73]
        assert [r.weight for r in small.requests] == [2, 20, 50, 1]


def test_weight_limit_exceeded_429_retry_after_ccxt_ddos_protection() -> None:
    """ccxt's binance raises DDoSProtection for 429 as well as 418 (not RateLimitExceeded)."""
    with _small_sim(weight_limit=10, window_s=3600) as small:
        ex = small.ccxt_client()
        for _ in range(5):
            ex.publicGetKlines({"symbol": "BTCUSDT", "interval": "1h", "limit": 1})
        with pytest.raises(ccxt.DDoSProtection, match="429") as info:
            ex.publicGetKlines({"symbol": "BTCUSDT", "interval": "1h", "limit": 1})
        assert type(info.value) is ccxt.DDoSProtection
        assert 3000 <= int(ex.last_response_headers["Retry-After"]) <= 3600
        assert ex.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "12"
        assert [r.status for r in small.requests] == [200] * 5 + [429]
        assert small.requests[-1].fault == "weight_limit"


def test_weight_limit_repeated_violations_escalate_to_ban() -> None:
    with _small_sim(weight_limit=4, window_s=3600, ban_after_violations=2, ban_s=30) as small:
        url = f"{small.api_url}/klines?symbol=BTCUSDT&interval=1h&limit=1"
        statuses = [http("GET", url)[0] for _ in range(5)]
        assert statuses == [200, 200, 429, 418, 418]
        assert 25 < small.banned_for <= 30
        assert [r.fault for r in small.requests][-2:] == ["banned", "banned"]


def test_rate_limits_bad_values_raise() -> None:
    with pytest.raises(ConfigurationError):
        RateLimits(weight_limit=0)
    with pytest.raises(ConfigurationError):
        RateLimits(ban_after_violations=0)


# ---- request log ---------------------------------------------------------------------------


def test_request_log_records_method_path_params_status_in_order(ex: ccxt.binance, sim: SimExchange) -> None:
    ex.fetch_ohlcv("BTC/USDT", "1h", since=GENESIS, limit=3)
    ex.fetch_order_book("ETH/USDT", 5)
    with pytest.raises(ccxt.BadSymbol):
        ex.publicGetDepth({"symbol": "XXXUSDT"})
    log = sim.requests
    assert [(r.method, r.path, r.status) for r in log] == [
        ("GET", "/api/v3/klines", 200), ("GET", "/api/v3/depth", 200), ("GET", "/api/v3/depth", 400)
    ]
    assert log[0].params == {"symbol": "BTCUSDT", "interval": "1h", "limit": "3", "startTime": str(GENESIS)}
    assert [r.seq for r in log] == sorted(r.seq for r in log)
    assert all(r.duration_s is not None and 0 <= r.duration_s < 30 for r in log), [(r.path, r.duration_s) for r in log]


def test_request_log_monotonic_times_measure_client_spacing(sim: SimExchange) -> None:
    for _ in range(3):
        http("GET", f"{sim.api_url}/ping")
        time.sleep(0.15)
    times = [r.t for r in sim.requests]
    assert len(times) == 3 and min(np.diff(times)) >= 0.15


def test_request_log_complete_under_concurrent_clients(sim: SimExchange) -> None:
    def worker() -> None:
        for _ in range(10):
            http("GET", f"{sim.api_url}/time")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = sim.requests
    assert len(log) == 40 and len({r.seq for r in log}) == 40 and all(r.status == 200 for r in log)


def test_control_requests_endpoint_lists_log_since_seq(sim: SimExchange) -> None:
    http("GET", f"{sim.api_url}/ping")
    http("GET", f"{sim.api_url}/time")
    data = http_json("GET", f"{sim.url}/sim/requests")
    first = data["requests"][0]["seq"]
    assert [r["path"] for r in data["requests"]] == ["/api/v3/ping", "/api/v3/time"]
    later = http_json("GET", f"{sim.url}/sim/requests?since={first}")
    assert [r["path"] for r in later["requests"]] == ["/api/v3/time"]
    http_json("DELETE", f"{sim.url}/sim/requests")
    assert sim.requests == []


# ---- routing, control, lifecycle ------------------------------------------------------------


def test_add_route_custom_handler_served_weighted_and_logged() -> None:
    def echo(req: SimRequest) -> SimResponse:
        return SimResponse(payload={"method": req.method, "qty": req.params.get("quantity"), "query": req.query})

    with _small_sim() as small:
        small.add_route("POST", "/api/v3/order/test", echo, weight=7)
        body = b"symbol=BTCUSDT&quantity=0.5"
        req = urllib.request.Request(f"{small.api_url}/order/test?timestamp=1&signature=ab", data=body,
                                     method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read()) == {"method": "POST", "qty": "0.5", "query": "timestamp=1&signature=ab"}
            assert resp.headers["X-MBX-USED-WEIGHT-1M"] == "7"
        assert small.requests[-1].params == {"symbol": "BTCUSDT", "quantity": "0.5", "timestamp": "1", "signature": "ab"}


def test_control_info_and_clock_move_the_exchange_time() -> None:
    with _small_sim() as small:
        info = http_json("GET", f"{small.url}/sim/info")
        assert info["seed"] == 3 and info["genesis_ms"] == GENESIS and len(info["symbols"]) == 6
        ex = small.ccxt_client()
        start = ex.fetch_time()
        assert http_json("POST", f"{small.url}/sim/clock", {"advance_ms": 90_000})["now_ms"] == start + 90_000
        assert ex.fetch_time() == start + 90_000
        http_json("POST", f"{small.url}/sim/clock", {"now_ms": start + MS_PER_DAY})
        assert ex.fetch_ohlcv("BTC/USDT", "1d", limit=1)[0][0] == (start + MS_PER_DAY) // MS_PER_DAY * MS_PER_DAY
        status, _, raw = http("POST", f"{small.url}/sim/clock", {"yesterday": 1})
        assert status == 400 and b"unknown clock field" in raw


def test_control_ban_and_unban_over_http() -> None:
    with _small_sim() as small:
        http_json("POST", f"{small.url}/sim/ban", {"seconds": 30})
        assert http("GET", f"{small.api_url}/ping")[0] == 418
        http_json("DELETE", f"{small.url}/sim/ban")
        assert http("GET", f"{small.api_url}/ping")[0] == 200


def test_stop_closes_kept_alive_connections_and_refuses_new_ones() -> None:
    small = _small_sim().start()
    ex = small.ccxt_client(timeout=1000)
    assert ex.fetch_time() > 0  # opens a kept-alive connection
    small.stop()
    assert not small.running
    with pytest.raises(ccxt.NetworkError):
        ex.fetch_time()


def test_sim_exchange_bad_model_raises() -> None:
    with pytest.raises(ConfigurationError, match="MarketModel"):
        SimExchange("seven")  # type: ignore[arg-type]
