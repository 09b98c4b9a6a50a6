"""Constants and plain-HTTP helpers shared by the simulated-exchange tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from quantdag.sim.paths import MS_PER_DAY

GENESIS = 20_340 * MS_PER_DAY  # 2025-09-09, a Tuesday
#: Thirty days after genesis, in the middle of a minute, hour and day.
NOW = GENESIS + 30 * MS_PER_DAY + 13 * 3_600_000 + 37 * 60_000 + 23_456


def http(method: str, url: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
    """Plain HTTP call (no ccxt): status, headers, raw body."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def http_json(method: str, url: str, body: Any = None) -> Any:
    status, _, raw = http(method, url, body)
    assert status == 200, (status, raw[:200])
    return json.loads(raw)
