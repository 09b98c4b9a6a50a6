"""API credentials from the environment, and the masking that keeps them out of every log line.

Keys are read from environment variables only (``QUANTDAG_<EXCHANGE>_API_KEY`` and
``QUANTDAG_<EXCHANGE>_SECRET``), held in a type whose ``repr`` hides them, registered with a
process-wide masker, and scrubbed from log records, exception messages and anything the
pipeline writes as metadata. ccxt logs request headers at DEBUG, so the masking filter is
installed on the root logger's handlers and on the ``ccxt`` logger.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

MASK = "***"
_MIN_SECRET_LEN = 4  # shorter strings would mask innocent text; no real key is this short

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`scrub` and the log filter mask it from now on."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)


def scrub(text: object) -> str:
    """``text`` as a string with every registered secret replaced by ``***``."""
    out = str(text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in out:
            out = out.replace(secret, MASK)
    return out


class SecretMaskingFilter(logging.Filter):
    """Masks registered secrets in a record's message, arguments and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_filter = SecretMaskingFilter()


def install_log_masking() -> None:
    """Attach the masking filter to the root and ``ccxt`` loggers and all their handlers (idempotent)."""
    for name in ("", "ccxt", "quantdag"):
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
        for handler in logger.handlers:
            if _filter not in handler.filters:
                handler.addFilter(_filter)


@dataclass(frozen=True)
class Credentials:
    """An exchange API key pair; ``repr`` and ``str`` never show the values."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for value in (self.api_key, self.secret, self.password):
            register_secret(value)

    def __repr__(self) -> str:
        return f"Credentials(api_key={MASK}, secret={MASK})"

    __str__ = __repr__


def env_names(exchange_id: str) -> tuple[str, str, str]:
    """The environment variable names that hold ``exchange_id``'s key, secret and password."""
    prefix = f"QUANTDAG_{exchange_id.upper().replace('-', '_')}_"
    return prefix + "API_KEY", prefix + "SECRET", prefix + "PASSWORD"


def load_credentials(exchange_id: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for ``exchange_id`` from the environment, or None when none are set.

    Only public endpoints (candles, tickers) work without credentials, which is all the data
    pipeline needs; order placement asks for them.
    """
    env = os.environ if environ is None else environ
    key_var, secret_var, password_var = env_names(exchange_id)
    key, secret = env.get(key_var), env.get(secret_var)
    if not key and not secret:
        return None
    if not key or not secret:
        missing = key_var if not key else secret_var
        from quantdag.errors import ConfigurationError

        raise ConfigurationError(f"{missing} is not set but its pair is: set both or neither")
    return Credentials(api_key=key, secret=secret, password=env.get(password_var) or None)
