"""Alerts: one line an operator can act on, logged and optionally POSTed to a webhook.

Secrets are scrubbed before anything leaves the process. The webhook URL comes from
``QUANTDAG_ALERT_WEBHOOK`` (read when an alert fires, never at import).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request

from quantdag.exchange.secrets import scrub

log = logging.getLogger("quantdag.alerts")

WEBHOOK_ENV = "QUANTDAG_ALERT_WEBHOOK"


def send_alert(
    text: str, *, context: dict[str, str] | None = None, webhook_url: str | None = None, webhook_env: str = WEBHOOK_ENV
) -> str:
    """Log ``text`` at ERROR as an alert and POST it as JSON to the webhook, if one is set.

    The URL is ``webhook_url`` or the environment variable ``webhook_env`` (the configuration's
    ``alerts.webhook_env``): a webhook URL usually embeds a token, so it never sits in a file.

    A failing webhook is logged, never raised: an alert must not break the run that raised it.
    Returns the scrubbed text that was sent.
    """
    clean = scrub(f"ALERT {text}")
    log.error(clean)
    url = webhook_url or os.environ.get(webhook_env)
    if url:
        body = json.dumps({"text": clean, **{k: scrub(v) for k, v in (context or {}).items()}}).encode()
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=5).close()
        except OSError as exc:
            log.warning("alert webhook (%s) failed: %s", webhook_env, scrub(str(exc)))
    return clean
