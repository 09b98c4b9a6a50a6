"""Account leases: one order manager trades an account (broker name) at a time.

A lease is a ``paper.leases`` row (account, holder, acquired_at, expires_at). The holder id is
``host:pid:uuid``: unique per manager, and telling which process holds it. A lease is free when it
expired, or when its holder is a process of this host that no longer exists (killed: no need to wait
out the TTL). The SQL lives in :class:`~quantdag.execution.store.OrderStore`.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from quantdag.errors import QuantdagError

#: Default lease time to live: a manager that neither renews nor releases it for this long loses it.
DEFAULT_TTL_S = 120.0


class AccountLocked(QuantdagError):
    """Another live order manager holds the account's lease (the message names account and holder)."""

    def __init__(self, account: str, holder: str, expires_ms: int) -> None:
        super().__init__(f"account {account!r} is traded by another order manager ({holder}) "
                         f"until its lease expires at {expires_ms} ms")
        self.account = account
        self.holder = holder
        self.expires_ms = expires_ms


@dataclass(frozen=True)
class Lease:
    account: str
    holder: str
    acquired_ms: int
    expires_ms: int

    def live(self, now_ms: int) -> bool:
        """Still binding: not expired and its holder not known dead."""
        return self.expires_ms > now_ms and holder_alive(self.holder)


def new_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


def holder_alive(holder: str) -> bool:
    """False only for a holder on this host whose process is gone; anything else counts as alive."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
