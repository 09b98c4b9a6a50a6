"""Exchange access through ccxt: validated, paginated, retried, with secrets kept out of logs."""

from quantdag.exchange.client import RAW_SCHEMA, ExchangeClient, ExchangeConfig, empty_raw_frame
from quantdag.exchange.retry import RetryPolicy, call_with_retry
from quantdag.exchange.secrets import Credentials, load_credentials, scrub

__all__ = [
    "RAW_SCHEMA",
    "Credentials",
    "ExchangeClient",
    "ExchangeConfig",
    "RetryPolicy",
    "call_with_retry",
    "empty_raw_frame",
    "load_credentials",
    "scrub",
]
