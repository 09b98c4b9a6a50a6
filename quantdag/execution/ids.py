"""Deterministic client order ids: the idempotency key of every order.

The same decision (strategy, market, intent) always yields the same id, so a re-run of the same
decision finds its order already written ahead instead of sending a second one. Ids are legal
Binance ``newClientOrderId`` values: at most 36 characters of ``[A-Za-z0-9-_]``.
"""

from __future__ import annotations

import hashlib
import re

from quantdag.errors import ConfigurationError

MAX_LEN = 36
_LEGAL = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_PREFIX = re.compile(r"^[A-Za-z0-9]{1,8}$")


def client_order_id(strategy: str, symbol: str, intent: str | int, *, prefix: str = "qd") -> str:
    """``<prefix>-<hash>``: a 32-hex-digit SHA-256 prefix of ``strategy|symbol|intent``.

    ``intent`` identifies the decision: a decision timestamp plus a leg/slice number, an intent
    sequence number, a parent id plus child index...
    """
    if not _PREFIX.match(prefix):
        raise ConfigurationError(f"client order id prefix must be 1-8 alphanumerics, got {prefix!r}")
    if not strategy or not symbol or intent == "":
        raise ConfigurationError("client order ids need a strategy, a symbol and an intent")
    digest = hashlib.sha256(f"{strategy}|{symbol}|{intent}".encode()).hexdigest()
    cid = f"{prefix}-{digest[: MAX_LEN - len(prefix) - 1]}"
    assert is_legal(cid)
    return cid


def is_legal(cid: str) -> bool:
    """Whether ``cid`` is a legal Binance client order id."""
    return bool(_LEGAL.match(cid))
