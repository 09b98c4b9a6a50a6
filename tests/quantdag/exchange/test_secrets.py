from __future__ import annotations

import logging

import pytest

from quantdag.errors import ConfigurationError
from quantdag.exchange.secrets import Credentials, SecretMaskingFilter, env_names, load_credentials, scrub

CANARY_KEY = "canaryKEY-9f8e7d6c5b4a3210"
CANARY_SECRET = "canarySECRET-0123456789abcdef"


def test_credentials_repr_and_str_hide_values():
    creds = Credentials(api_key=CANARY_KEY, secret=CANARY_SECRET)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert CANARY_KEY not in text and CANARY_SECRET not in text


def test_load_credentials_reads_exchange_specific_env_names():
    key_var, secret_var, _ = env_names("binance")
    assert (key_var, secret_var) == ("QUANTDAG_BINANCE_API_KEY", "QUANTDAG_BINANCE_SECRET")
    creds = load_credentials("binance", {key_var: CANARY_KEY, secret_var: CANARY_SECRET})
    assert creds is not None and creds.api_key == CANARY_KEY
    assert load_credentials("binance", {}) is None


def test_load_credentials_half_pair_names_missing_variable():
    with pytest.raises(ConfigurationError, match="QUANTDAG_KRAKEN_SECRET"):
        load_credentials("kraken", {"QUANTDAG_KRAKEN_API_KEY": CANARY_KEY})


def test_scrub_masks_registered_secrets_anywhere_in_text():
    Credentials(api_key=CANARY_KEY, secret=CANARY_SECRET)
    text = scrub(f"GET /api?apiKey={CANARY_KEY}&x=1 signature from {CANARY_SECRET}")
    assert CANARY_KEY not in text and CANARY_SECRET not in text
    assert text.count("***") == 2


def test_masking_filter_scrubs_message_args_and_traceback(caplog):
    Credentials(api_key=CANARY_KEY, secret=CANARY_SECRET)
    logger = logging.getLogger("test.secrets")
    logger.addFilter(SecretMaskingFilter())
    with caplog.at_level(logging.DEBUG, logger="test.secrets"):
        logger.debug("headers %s", {"X-MBX-APIKEY": CANARY_KEY})
        try:
            raise RuntimeError(f"signed with {CANARY_SECRET}")
        except RuntimeError:
            logger.exception("request failed")
    text = caplog.text
    assert CANARY_KEY not in text and CANARY_SECRET not in text
    assert "***" in text
