"""Who may use the dashboard: one user, a password hashed at start, signed sessions, CSRF tokens,
and a per-client limit on failed logins.

The password is read from the environment once, hashed with scrypt and dropped: the process keeps
only the salt and the hash, so a memory dump or a traceback never shows it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from quantdag.errors import ConfigurationError

USER_ENV = "QUANTDAG_DASHBOARD_USER"
PASSWORD_ENV = "QUANTDAG_DASHBOARD_PASSWORD"
SECRET_ENV = "QUANTDAG_DASHBOARD_SECRET"
DEFAULT_USER = "admin"

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


@dataclass(frozen=True, repr=False)
class Credentials:
    """The one user's name and the scrypt hash of its password (never the password itself)."""

    user: str
    salt: bytes
    digest: bytes

    def __repr__(self) -> str:  # a log line or a traceback must not carry the hash either
        return f"Credentials(user={self.user!r})"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Credentials:
        """The user and password from the environment; no password, no dashboard.

        Raises
        ------
        ConfigurationError
            If ``QUANTDAG_DASHBOARD_PASSWORD`` is unset or empty.
        """
        env = os.environ if environ is None else environ
        password = env.get(PASSWORD_ENV, "")
        if not password:
            raise ConfigurationError(
                f"{PASSWORD_ENV} is not set: the dashboard refuses to start without a password "
                f"(user: {USER_ENV}, default {DEFAULT_USER!r})"
            )
        salt = secrets.token_bytes(16)
        return cls(env.get(USER_ENV) or DEFAULT_USER, salt, _hash(password, salt))

    def check(self, user: str, password: str) -> bool:
        """Constant-time comparison of both the name and the password's hash."""
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_pass = hmac.compare_digest(_hash(password, self.salt), self.digest)
        return ok_user and ok_pass


def session_secret(environ: dict[str, str] | None = None) -> str:
    """The key that signs session cookies: ``QUANTDAG_DASHBOARD_SECRET`` (sessions survive a restart)
    or a random one per process (a restart logs everyone out)."""
    env = os.environ if environ is None else environ
    return env.get(SECRET_ENV) or secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(session_token: str | None, sent: str | None) -> bool:
    """The token sent with a state-changing request equals the session's (constant time)."""
    return bool(session_token) and bool(sent) and hmac.compare_digest(str(session_token), str(sent))


class LoginLimiter:
    """At most ``attempts`` failed logins per client in a sliding ``window`` of seconds."""

    def __init__(self, attempts: int = 5, window: float = 60.0) -> None:
        self.attempts, self.window = attempts, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        q = self._failures.setdefault(client, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def blocked(self, client: str) -> float:
        """Seconds ``client`` must wait before trying again (0: it may try now)."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(client, now)
            return 0.0 if len(q) < self.attempts else max(0.0, self.window - (now - q[0]))

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
