from __future__ import annotations

import random

import ccxt
import pytest

from quantdag.errors import ConfigurationError, ExchangeError, ExchangeUnavailable
from quantdag.exchange.retry import RetryPolicy, call_with_retry, retry_after_seconds


class Flaky:
    """Raises the given errors in order, then returns 'ok'."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _call(fn, policy=RetryPolicy(), headers=None, sleeps=None):
    return call_with_retry(
        fn, policy=policy, what="test call", headers=lambda: headers,
        sleep=(sleeps.append if sleeps is not None else lambda s: None), rng=random.Random(1),
    )


@pytest.mark.parametrize(
    "error", [ccxt.RequestTimeout("t"), ccxt.ExchangeNotAvailable("503"), ccxt.RateLimitExceeded("429"),
              ccxt.DDoSProtection("418"), ccxt.NetworkError("reset")],
)
def test_call_with_retry_network_error_is_retried_until_success(error):
    fn = Flaky(error, error)
    assert _call(fn) == "ok"
    assert fn.calls == 3


@pytest.mark.parametrize(
    "error", [ccxt.BadSymbol("x"), ccxt.InsufficientFunds("x"), ccxt.InvalidOrder("x"),
              ccxt.AuthenticationError("x"), ccxt.BadResponse("x"), ccxt.ExchangeError("x")],
)
def test_call_with_retry_deterministic_error_is_not_retried(error):
    fn = Flaky(error)
    with pytest.raises(ExchangeError) as info:
        _call(fn)
    assert fn.calls == 1
    assert info.value.kind == type(error).__name__
    assert not isinstance(info.value, ExchangeUnavailable)


def test_call_with_retry_exhausted_retries_make_exactly_max_plus_one_calls():
    fn = Flaky(*[ccxt.RequestTimeout("t")] * 10)
    sleeps: list[float] = []
    with pytest.raises(ExchangeUnavailable, match="gave up after 4 attempts"):
        _call(fn, RetryPolicy(max_retries=3, base_delay=1.0, max_delay=4.0), sleeps=sleeps)
    assert fn.calls == 4
    assert len(sleeps) == 3


def test_backoff_is_jittered_and_bounded():
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(3)
    waits = [policy.backoff(a, rng) for a in range(1, 10) for _ in range(50)]
    assert all(0 <= w <= 8.0 for w in waits)
    assert len({round(w, 6) for w in waits}) > 100  # jittered: not lock-step
    assert RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=False).backoff(3, rng) == 4.0


def test_ban_retry_after_is_waited_out_before_next_request():
    fn = Flaky(ccxt.DDoSProtection("418 banned"))
    sleeps: list[float] = []
    assert _call(fn, RetryPolicy(base_delay=0.1, max_delay=0.2), headers={"Retry-After": "7"}, sleeps=sleeps) == "ok"
    assert sleeps == [7.0]


def test_ban_longer_than_max_ban_wait_fails_fast_naming_wait():
    fn = Flaky(ccxt.DDoSProtection("418 banned"))
    with pytest.raises(ExchangeUnavailable, match="wait 600s"):
        _call(fn, RetryPolicy(max_ban_wait=60), headers={"retry-after": "600"})
    assert fn.calls == 1


def test_retry_after_parsing_ignores_garbage():
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds(None) is None


def test_retry_policy_negative_retries_rejected_naming_value():
    with pytest.raises(ConfigurationError, match="-1"):
        RetryPolicy(max_retries=-1)
