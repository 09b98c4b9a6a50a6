"""The exchange as a Dagster resource: one interface, a simulated and a live implementation.

Offline, the resource serves the project's simulated exchange and the real ccxt client talks to
it over real HTTP, so the offline path and the live path are the same code. Without a
``sim_url`` it starts one in this process (once, on first use, never at import), seeded and
anchored to a fixed genesis so every process sees the same market history.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from quantdag.exchange import ExchangeClient, ExchangeConfig, RetryPolicy
from quantdag.exchange.simulated import SIM_GENESIS_MS, in_process_sim_url  # noqa: F401  (re-exported)


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
