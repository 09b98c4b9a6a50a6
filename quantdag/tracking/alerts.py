"""Alerts: one line an operator can act on, logged, optionally POSTed to a webhook and sent through
Apprise (Telegram, Discord, Slack, ntfy, email, ... : ``alerts.urls_env``).

Each alert has an event kind (``quantdag.config.ALERT_EVENTS``) whose setting in the configuration's
``alerts.events`` says on (sent), silent (sent without a sound where the channel has the notion:
Telegram) or off (logged only). Secrets are scrubbed before anything leaves the process; URLs come
from the environment (read when an alert fires, never at import).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any

from quantdag.exchange.secrets import scrub

log = logging.getLogger("quantdag.alerts")

WEBHOOK_ENV = "QUANTDAG_ALERT_WEBHOOK"


def alert_settings() -> Any:
    """The configuration's ``alerts`` section (its defaults when the file cannot be read: an alert
    must still go out while the configuration is broken)."""
    from quantdag.config import AlertSettings, load_config
    from quantdag.errors import ConfigurationError

    try:
        return load_config().alerts
    except ConfigurationError:
        return AlertSettings()


def _silenced(url: str) -> str:
    """Telegram's silent delivery (no sound); other channels have no such mode and get the alert as is."""
    if url.startswith(("tgram://", "telegram://")):
        return url + ("&" if "?" in url else "?") + "silent=yes"
    return url


def notify_apprise(urls: list[str], text: str, *, silent: bool = False, title: str = "quantdag") -> bool:
    """Send ``text`` to every Apprise URL; False (logged, never raised) if any channel failed."""
    import apprise

    ap = apprise.Apprise()
    for url in urls:
        if not ap.add(_silenced(url) if silent else url):
            log.warning("alert: an Apprise URL was not understood (scheme %s)", url.split("://")[0][:16])
    if not len(ap):
        return False
    ok = bool(ap.notify(body=text, title=title, timeout=5))
    if not ok:
        log.warning("alert: at least one Apprise channel failed")
    return ok


def send_alert(
    text: str, *, event: str = "other", context: dict[str, str] | None = None, webhook_url: str | None = None,
    webhook_env: str = WEBHOOK_ENV, settings: Any = None,
) -> str:  # fmt: skip
    """Log ``text`` as an alert of kind ``event`` and send it where the configuration says.

    The webhook URL is ``webhook_url`` or the environment variable ``webhook_env`` (the
    configuration's ``alerts.webhook_env``); Apprise URLs are in ``alerts.urls_env``. A URL usually
    embeds a token, so it never sits in a file. ``settings``: an ``AlertSettings`` (default: read
    from the configuration).

    A failing channel is logged, never raised: an alert must not break the run that raised it.
    Returns the scrubbed text (sent, or only logged when the event is off).
    """
    settings = settings or alert_settings()
    mode = settings.events.get(event, "on")
    clean = scrub(f"ALERT {text}")
    if mode == "off":
        log.info("%s (alert %s: off)", clean, event)
        return clean
    log.error(clean)
    silent = mode == "silent"
    url = webhook_url or os.environ.get(webhook_env)
    if url:
        payload = {"text": clean, "event": event, "silent": silent, **{k: scrub(v) for k, v in (context or {}).items()}}
        req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=5).close()
        except OSError as exc:
            log.warning("alert webhook (%s) failed: %s", webhook_env, scrub(str(exc)))
    urls = os.environ.get(settings.urls_env, "").split()
    if urls:
        notify_apprise(urls, clean, silent=silent)
    return clean
