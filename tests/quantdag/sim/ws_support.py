"""Raw websocket helpers shared by the stream tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect


def connect(url: str) -> Any:
    """A raw client that buffers without limit, so closing it never waits behind unread messages."""
    return ws_connect(url, max_queue=None, close_timeout=1)


def run(coro: Any, timeout: float = 20.0) -> Any:
    """Run a test coroutine with a hard deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def recv(ws: ClientConnection, timeout: float = 5.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))
