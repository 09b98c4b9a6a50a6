"""The exchange as a Dagster resource: one interface, a simulated and a live implementation.

Offline, the resource serves the project's simulated exchange and the real ccxt client talks to
it over real HTTP, so the offline path and the live path are the same code. Without a
``sim_url`` it starts one in this process (once, on first use, never at import), seeded and
anchored to a fixed genesis so every process sees the same market history.
"""

from __future__ import annotations

import threading
from typing import Any

import dagster as dg
from pydantic import Field

from quantdag.exchange import ExchangeClient, ExchangeConfig, RetryPolicy

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


class ExchangeResource(dg.ConfigurableResource):
    """Where candles and prices come from: assets ask for this interface, never a flavour of it.

    The configuration picks the implementation (``exchange.mode`` in ``quantdag.yaml``):
    :class:`SimulatedExchangeResource` or :class:`LiveExchangeResource`. API keys are read from
    the environment by the client, never from configuration.
    """

    exchange_id: str = Field(default="binance", description="the ccxt exchange id (the simulator speaks Binance's API)")
    timeout_ms: int = 10_000
    max_retries: int = 5
    max_ban_wait: float = 120.0

    @property
    def venue(self) -> str:
        """The value stored in the ``exchange`` column."""
        raise NotImplementedError

    def _api_url(self) -> str | None:
        return None

    def _sandbox(self) -> bool:
        return False

    def client(self) -> ExchangeClient:
        config = ExchangeConfig(
            exchange_id=self.exchange_id,
            venue=self.venue,
            api_url=self._api_url(),
            sandbox=self._sandbox(),
            timeout_ms=self.timeout_ms,
            retry=RetryPolicy(max_retries=self.max_retries, max_ban_wait=self.max_ban_wait),
        )
        return ExchangeClient(config)


class SimulatedExchangeResource(ExchangeResource):
    """The project's simulated exchange on 127.0.0.1, through the real ccxt client over real HTTP."""

    sim_url: str | None = Field(default=None, description="an external simulator, e.g. http://127.0.0.1:8765")
    sim_seed: int = Field(default=7, description="seed of the in-process simulator")

    @property
    def venue(self) -> str:
        return "sim"

    sim_balances: dict[str, float] = Field(default_factory=lambda: {"USDT": 10_000.0},
                                           description="starting balances of the in-process simulator's order account")

    def _api_url(self) -> str | None:
        if self.sim_url:
            return f"{self.sim_url.rstrip('/')}/api/v3"
        from quantdag.exchange.secrets import load_credentials

        creds = load_credentials(self.exchange_id)  # keys in the environment: its order endpoints accept them
        account = (creds.api_key, creds.secret, dict(self.sim_balances)) if creds is not None else None
        return f"{in_process_sim_url(self.sim_seed, account=account).rstrip('/')}/api/v3"


class LiveExchangeResource(ExchangeResource):
    """A real venue through ccxt (its testnet with ``sandbox``)."""

    sandbox: bool = Field(default=False, description="the exchange's testnet")

    @property
    def venue(self) -> str:
        return self.exchange_id

    def _sandbox(self) -> bool:
        return self.sandbox
