"""API credentials from the environment, and the masking that keeps them out of every log line.

Keys are read from environment variables only (``QUANTDAG_<EXCHANGE>_API_KEY`` and
``QUANTDAG_<EXCHANGE>_SECRET``), held in a type whose ``repr`` hides them, registered with a
process-wide masker, and scrubbed from log records, exception messages and anything the
pipeline writes as metadata. ccxt logs request headers (``X-MBX-APIKEY``) and signed URLs at
DEBUG, and prints them with ``verbose``: every log record is scrubbed when it is created (a
wrapper around the log record factory, installed with the first secret), so no handler, whatever
logger it sits on and whenever it was added, sees a key; the client routes ccxt's ``verbose``
printing through :func:`masked_print`. Masking is by value (the registered keys, and
``signature=`` query parameters), not by logger name.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MASK = "***"
_MIN_SECRET_LEN = 4  # shorter strings would mask innocent text; no real key is this short
# ccxt's signed query strings and form bodies (Binance and the simulator): HMAC hex, or URL-encoded
# base64 for RSA/Ed25519 keys. Not the secret, but a replayable proof of it within recvWindow.
_SIGNATURE_PARAM = "signature="
_SIGNATURE_RE = re.compile(r"(signature=)[0-9A-Za-z%._~+/=-]{16,}")

_lock = threading.Lock()
_secrets: set[str] = set()
_known: tuple[str, ...] = ()  # _secrets, longest first; replaced whole, so readers take no lock
_DONE = "_quantdag_secrets_scrubbed"  # set on a record once scrubbed (factories may be stacked)


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`scrub` and every log record mask it from now on.

    The first secret installs the log masking (:func:`install_log_masking`).
    """
    global _known
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)
            _known = tuple(sorted(_secrets, key=len, reverse=True))
        install_log_masking()


def _holds_secret(text: str) -> bool:
    if _SIGNATURE_PARAM in text:
        return True
    for secret in _known:  # a loop, not any(<generator>): this runs for every log record
        if secret in text:
            return True
    return False


def scrub(text: object) -> str:
    """``text`` as a string with every registered secret and request signature replaced by ``***``."""
    out = str(text)
    for secret in _known:
        if secret in out:
            out = out.replace(secret, MASK)
    if _SIGNATURE_PARAM in out:
        out = _SIGNATURE_RE.sub(r"\1" + MASK, out)
    return out


_exc_formatter = logging.Formatter()


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask secrets in ``record``'s message, exception and stack text, in place.

    A clean record is left as it was (its ``msg``, ``args`` and ``exc_info`` intact, for handlers
    that read them); one holding a secret gets the scrubbed text as ``msg`` with ``args`` None,
    and the scrubbed traceback as ``exc_text`` with ``exc_info`` None, so that no formatter can
    render the original again. A message whose arguments do not format becomes a note naming
    them (scrubbed) instead of the logging error that would print them raw.
    """
    if record.__dict__.get(_DONE):
        return record
    try:
        message = record.getMessage() if record.args else str(record.msg)
    except Exception:  # noqa: BLE001 - a bad format string is the caller's bug, not a reason to leak
        record.msg, record.args = scrub(f"{record.msg!r} (log arguments do not format: {record.args!r})"), None
    else:
        if _holds_secret(message):
            record.msg, record.args = scrub(message), None
    exc_info = record.exc_info
    if exc_info and exc_info[1] is not None:
        text = _exc_formatter.formatException(exc_info)
        if _holds_secret(text):
            record.exc_text, record.exc_info = scrub(text), None
    elif record.exc_text and _holds_secret(record.exc_text):
        record.exc_text = scrub(record.exc_text)
    if record.stack_info and _holds_secret(record.stack_info):
        record.stack_info = scrub(record.stack_info)
    record.__dict__[_DONE] = True
    return record


class SecretMaskingFilter(logging.Filter):
    """Masks registered secrets in a record's message, arguments and exception text.

    Not needed on handlers any more (every record is scrubbed when it is made, see
    :func:`install_log_masking`); kept for records built outside ``Logger.makeRecord``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def install_log_masking() -> None:
    """Scrub every log record as it is created, before any logger, filter or handler sees it.

    Wraps the process's log record factory (``logging.setLogRecordFactory``), so it holds for
    every logger (``ccxt.base.exchange``, urllib3, the pipeline's), every handler whenever it was
    added, and whatever level. Idempotent: the factory is wrapped again only if someone replaced
    it since; a record already scrubbed by an inner wrapper is not scrubbed twice.
    """
    with _lock:
        current = logging.getLogRecordFactory()
        if getattr(current, _DONE, False):
            return

        def masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return scrub_record(current(*args, **kwargs))

        setattr(masking_factory, _DONE, True)
        logging.setLogRecordFactory(masking_factory)


def masked_print(*args: object) -> None:
    """``print`` with secrets and signatures scrubbed: ccxt's ``Exchange.log`` (its ``verbose`` output)."""
    print(scrub(" ".join(str(a) for a in args)))


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
