"""A ccxt exchange with the guards the pipeline relies on: validation, pagination, retries.

The same class talks to a real exchange and to the project's simulated one (``api_url``
pointing at 127.0.0.1): the offline path and the live path are the same code. Everything the
exchange sends is checked before it becomes a row, because exchanges do send garbage
(maintenance pages, truncated JSON, timestamps in seconds, the still-open candle).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import ccxt
import numpy as np
import polars as pl

from quantdag.data.frames import RAW_SCHEMA
from quantdag.errors import ConfigurationError, ExchangeError
from quantdag.exchange.retry import RetryPolicy, call_with_retry
from quantdag.exchange.secrets import Credentials, install_log_masking, load_credentials, masked_print, scrub
from quantdag.timeframes import timeframe_ms

log = logging.getLogger(__name__)

_SECONDS_CUTOFF = 100_000_000_000  # ms timestamps passed this in 1973; seconds reach it in 5138
_MAX_EMPTY_RETRIES = 2
_rng = random.Random()


def empty_raw_frame() -> pl.DataFrame:
    """A raw candle frame with no rows and the right schema."""
    return pl.DataFrame(schema=RAW_SCHEMA)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class TruncatedBody(ccxt.NetworkError):
    """A response body cut off mid-JSON: the connection, not the exchange, failed (retried per request)."""


@dataclass(frozen=True)
class ExchangeConfig:
    """Which exchange to talk to and how.

    Attributes
    ----------
    exchange_id:
        Any ccxt exchange id. Default ``"binance"``.
    venue:
        The name stored in the ``exchange`` column. Defaults to ``exchange_id``; the simulated
        exchange speaks Binance's API but is stored as ``"sim"`` so its candles never mix with
        real ones.
    api_url:
        Base URL replacing the exchange's public and private REST API (e.g. the simulator's
        ``http://127.0.0.1:PORT/api/v3``). None uses the exchange's own.
    sandbox:
        Use the exchange's testnet (ccxt ``set_sandbox_mode``).
    timeout_ms:
        Per-request timeout. Default 10,000 (ccxt's default).
    page_limit:
        Candles per request (Binance serves at most 1000).
    retry:
        Back-off policy for transient faults.
    """

    exchange_id: str = "binance"
    venue: str | None = None
    api_url: str | None = None
    sandbox: bool = False
    timeout_ms: int = 10_000
    page_limit: int = 1000
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.exchange_id not in ccxt.exchanges:
            raise ConfigurationError(f"unknown ccxt exchange id {self.exchange_id!r}")
        if self.timeout_ms <= 0:
            raise ConfigurationError(f"timeout_ms must be > 0, got {self.timeout_ms!r}")
        if not 1 <= self.page_limit <= 5000:
            raise ConfigurationError(f"page_limit must be in [1, 5000], got {self.page_limit!r}")

    @property
    def venue_name(self) -> str:
        return self.venue or self.exchange_id


class ExchangeClient:
    """Market data (and later orders) from one ccxt exchange.

    Parameters
    ----------
    config:
        Exchange settings.
    credentials:
        API keys; by default read from ``QUANTDAG_<EXCHANGE>_API_KEY``/``_SECRET``. Public
        endpoints need none.
    clock:
        Milliseconds since the epoch; injectable so tests can pin "now".
    """

    def __init__(
        self,
        config: ExchangeConfig | None = None,
        *,
        credentials: Credentials | None = None,
        clock: Callable[[], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        install_log_masking()
        self.config = config or ExchangeConfig()
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._sleep = sleep
        creds = credentials if credentials is not None else load_credentials(self.config.exchange_id)
        self.ccxt = self._build(creds)
        self._markets: dict[str, Any] | None = None

    def __repr__(self) -> str:  # never show the ccxt object: it holds the keys
        return f"ExchangeClient({self.config.exchange_id!r}, venue={self.config.venue_name!r})"

    def _build(self, creds: Credentials | None) -> ccxt.Exchange:
        cfg = self.config
        options: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": cfg.timeout_ms,
        }
        if cfg.exchange_id == "binance":
            # spot only, no currency endpoint: the other endpoints need keys or do not exist offline
            options["options"] = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}
        if creds is not None:
            options.update(apiKey=creds.api_key, secret=creds.secret)
            if creds.password:
                options["password"] = creds.password
        ex: ccxt.Exchange = getattr(ccxt, cfg.exchange_id)(options)
        ex.log = masked_print  # ccxt prints requests (headers, signed URLs) there when verbose, whenever it is set
        if cfg.sandbox:
            ex.set_sandbox_mode(True)
        if cfg.api_url:
            api = ex.urls.get("api")
            if isinstance(api, dict):
                for key in list(api):
                    api[key] = cfg.api_url
            else:
                ex.urls["api"] = cfg.api_url
        return ex

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        return call_with_retry(
            fn,
            policy=self.config.retry,
            what=f"{self.config.venue_name} {what}",
            headers=lambda: self.ccxt.last_response_headers,
            sleep=self._sleep,
        )

    # ---- markets -------------------------------------------------------------------------

    def markets(self) -> dict[str, Any]:
        """The exchange's markets, loaded once (with retries)."""
        if self._markets is None:
            markets = self._call(self.ccxt.load_markets, "load_markets")
            if not isinstance(markets, dict) or not markets:
                raise ExchangeError(f"{self.config.venue_name} load_markets returned no markets", kind="BadResponse")
            self._markets = markets
        return self._markets

    def check_market(self, symbol: str, timeframe: str) -> None:
        """Fail before any download if ``symbol`` or ``timeframe`` is unknown to this exchange.

        Raises
        ------
        ConfigurationError
            Naming the unknown symbol (with a few known ones) or timeframe.
        """
        markets = self.markets()
        if symbol not in markets:
            known = ", ".join(sorted(markets)[:8])
            raise ConfigurationError(
                f"unknown symbol {symbol!r} on {self.config.venue_name}; known: {known}, ..."
            )
        if not markets[symbol].get("active", True):
            raise ConfigurationError(f"market {symbol!r} on {self.config.venue_name} is not active")
        supported = self.ccxt.timeframes or {}
        if supported and timeframe not in supported:
            raise ConfigurationError(
                f"timeframe {timeframe!r} not offered by {self.config.venue_name}; "
                f"offered: {', '.join(supported)}"
            )
        timeframe_ms(timeframe)

    # ---- candles -------------------------------------------------------------------------

    def fetch_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> pl.DataFrame:
        """All candles with open time in ``[start_ms, end_ms)``, as fetched (raw frame).

        Pages forward from ``start_ms``. Rows are validated (shape, finite numbers, sane time)
        but not cleaned: duplicates, disorder, gaps and the still-open candle are kept for the
        cleaning step, which is where they are counted and recorded. Each row carries the time
        its page was requested (``fetched_at``), which decides later whether it was closed.

        Raises
        ------
        ConfigurationError
            Unknown symbol or timeframe, or ``start_ms >= end_ms``.
        ExchangeError
            A malformed or hostile answer (naming the page and the offending value), or faults
            that outlast the retries. No partial frame is returned.
        """
        if not (isinstance(start_ms, int) and isinstance(end_ms, int)) or start_ms >= end_ms:
            raise ConfigurationError(f"need integer start_ms < end_ms, got {start_ms!r} >= {end_ms!r}")
        self.check_market(symbol, timeframe)
        tf = timeframe_ms(timeframe)
        pages: list[pl.DataFrame] = []
        cursor = start_ms - start_ms % tf if start_ms % tf else start_ms
        empty_retries = 0
        while cursor < end_ms:
            now = self._clock()
            if cursor > now:
                break  # nothing has opened yet
            what = f"fetch_ohlcv {symbol} {timeframe} since {_iso(cursor)}"
            rows = self._call(lambda: self._fetch_page(symbol, timeframe, cursor), what)
            page = self._parse_page(rows, what=what, tf=tf, fetched_at=now)
            page = page.filter(pl.col("ts") >= cursor)
            if page.is_empty():
                # An empty page while closed candles must exist is a fault, not the end of history.
                if cursor + tf <= now - tf and empty_retries < _MAX_EMPTY_RETRIES:
                    empty_retries += 1
                    log.warning("%s: empty page before now, retrying (%d)", what, empty_retries)
                    self._sleep(self.config.retry.backoff(empty_retries, _rng))
                    continue
                break
            empty_retries = 0
            pages.append(page)
            closed = page.filter(pl.col("ts") + tf <= now)
            if closed.is_empty():
                break  # only the still-open candle is left
            cursor = int(closed["ts"].max()) + tf
            if cursor + tf > now:
                break  # the next candle is the open one
        if not pages:
            return empty_raw_frame()
        out = pl.concat(pages).filter((pl.col("ts") >= start_ms) & (pl.col("ts") < end_ms))
        return out.with_columns(
            pl.lit(self.config.venue_name).alias("exchange"),
            pl.lit(symbol).alias("symbol"),
            pl.lit(timeframe).alias("timeframe"),
        ).select(list(RAW_SCHEMA))

    def _parse_page(self, rows: Any, *, what: str, tf: int, fetched_at: int) -> pl.DataFrame:
        """Validate one ccxt OHLCV page and turn it into columns."""
        if not isinstance(rows, list):
            raise ExchangeError(f"{what}: expected a list of candles, got {scrub(repr(rows))[:200]}", kind="BadResponse")
        if not rows:
            self._check_body_is_json(what)
            return pl.DataFrame(schema={k: RAW_SCHEMA[k] for k in ("ts", "open", "high", "low", "close", "volume", "fetched_at")})
        for i, row in enumerate(rows):
            if not isinstance(row, (list, tuple)) or len(row) < 6:
                raise ExchangeError(f"{what}: row {i} is not [ts, o, h, l, c, v]: {scrub(repr(row))[:200]}", kind="BadResponse")
        try:
            arr = np.array([row[:6] for row in rows], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ExchangeError(f"{what}: non-numeric candle values ({exc})", kind="BadResponse") from None
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argwhere(bad)[0][0])
            raise ExchangeError(f"{what}: non-finite value in row {i}: {rows[i]!r}", kind="BadResponse")
        ts = arr[:, 0]
        if (ts < _SECONDS_CUTOFF).all() and (ts > 0).all():
            log.warning("%s: timestamps are in seconds, converting to ms", what)
            ts = ts * 1000.0
        if (ts != np.floor(ts)).any() or (ts < _SECONDS_CUTOFF).any() or (ts % tf != 0).any():
            i = int(np.argmax((ts != np.floor(ts)) | (ts < _SECONDS_CUTOFF) | (ts % tf != 0)))
            raise ExchangeError(
                f"{what}: open time {rows[i][0]!r} in row {i} is not on the {tf} ms grid", kind="BadResponse"
            )
        if (ts > fetched_at + tf).any():
            i = int(np.argmax(ts > fetched_at + tf))
            raise ExchangeError(f"{what}: candle from the future, open time {_iso(int(ts[i]))}", kind="BadResponse")
        return pl.DataFrame(
            {
                "ts": ts.astype(np.int64),
                "open": arr[:, 1],
                "high": arr[:, 2],
                "low": arr[:, 3],
                "close": arr[:, 4],
                "volume": arr[:, 5],
                "fetched_at": pl.Series([fetched_at] * len(rows), dtype=pl.Int64).cast(pl.Datetime("ms", "UTC")),
            }
        )

    def _fetch_page(self, symbol: str, timeframe: str, since: int) -> Any:
        """One OHLCV page; a body cut off mid-JSON is a transient fault, retried like a dropped connection."""
        rows = self.ccxt.fetch_ohlcv(symbol, timeframe, since=since, limit=self.config.page_limit)
        if not rows:
            body = getattr(self.ccxt, "last_http_response", None)
            if isinstance(body, str) and body.lstrip()[:1] in ("[", "{"):
                try:
                    json.loads(body)
                except ValueError:
                    raise TruncatedBody(f"the body ends mid-JSON after {len(body)} characters") from None
        return rows

    def _check_body_is_json(self, what: str) -> None:
        """ccxt turns an unparseable body into an empty result; make that a typed error instead."""
        body = getattr(self.ccxt, "last_http_response", None)
        if isinstance(body, str) and body.strip():
            try:
                json.loads(body)
            except ValueError:
                raise ExchangeError(
                    f"{what}: the exchange sent a body that is not JSON: {scrub(body[:120])!r}", kind="BadResponse"
                ) from None

    # ---- tickers -------------------------------------------------------------------------

    def fetch_ticker(self, symbol: str) -> Mapping[str, Any]:
        """Last price, bid and ask of ``symbol`` (for paper fills and marking to market)."""
        self.check_market(symbol, "1m")
        ticker = self._call(lambda: self.ccxt.fetch_ticker(symbol), f"fetch_ticker {symbol}")
        last = ticker.get("last") if isinstance(ticker, dict) else None
        if not isinstance(last, (int, float)) or not math.isfinite(last) or last <= 0:
            raise ExchangeError(f"fetch_ticker {symbol}: unusable last price {last!r}", kind="BadResponse")
        return ticker

    def fetch_order_book(self, symbol: str, depth: int = 20) -> Mapping[str, Any]:
        """Bids and asks of ``symbol``, best first."""
        self.check_market(symbol, "1m")
        return self._call(lambda: self.ccxt.fetch_order_book(symbol, depth), f"fetch_order_book {symbol}")

