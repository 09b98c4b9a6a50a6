"""The in-process simulated exchange every offline process talks to (no Dagster needed).

Started once per process on first use, never at import, seeded and anchored to a fixed genesis so
every process (the pipeline's resource, the ``quantdag`` command, the streamer) sees the same
market history.
"""

from __future__ import annotations

import threading
from typing import Any

_sims: dict[tuple[int, int], Any] = {}
_sims_lock = threading.Lock()

#: Fixed start of the simulated history: every process generates the same market path.
SIM_GENESIS_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z


def in_process_sim_url(seed: int, genesis_ms: int = SIM_GENESIS_MS, *, account: tuple[str, str, dict[str, float]] | None = None) -> str:
    """URL of this process's simulated exchange for ``seed``, starting it on first use.

    ``account`` (api key, secret, balances): the signed order endpoints answer for that key, so
    ``portfolio.broker: ccxt`` trades through the real ccxt client offline (installed once).
    """
    from quantdag.sim import MarketModel, SimExchange  # imported lazily: only offline runs need it

    with _sims_lock:
        sim = _sims.get((seed, genesis_ms))
        if sim is None:
            sim = SimExchange(MarketModel(seed=seed, genesis_ms=genesis_ms))
            sim.start()
            _sims[(seed, genesis_ms)] = sim
        if account is not None and getattr(sim, "orders", None) is None:
            from quantdag.sim.orders import install_orders

            key, secret, balances = account
            install_orders(sim, api_key=key, secret=secret, balances=balances)
        return sim.url
