"""Streaming market data: websocket streams (ccxt.pro) into an append-only landing area that the
warehouse ingests (see :mod:`quantdag.stream.landing` for why)."""
