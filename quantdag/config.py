"""The one configuration file, ``quantdag.yaml``: typed, validated, with documented defaults.

Everything a user changes without editing code lives here: the exchange (simulated or live), the
universe, indicators, strategies and their parameter sets, which of them trade on paper, the pipeline's
backtest settings, optimization and promotion, risk limits, alerts and automation, the data dir.
``QUANTDAG_CONFIG=path`` picks another file; ``QUANTDAG_DATA_DIR`` overrides ``data_dir`` (so
``DATA_DIR=... make ui`` moves the warehouse and MLflow with the Dagster home). Relative paths
are relative to the file. A malformed file is a :class:`~quantdag.errors.ConfigurationError`
naming the key and the value, raised before any work starts.
"""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from quantdag.errors import ConfigurationError
from quantdag.markets import Market, market_by_key
from quantdag.timeframes import SUPPORTED, timeframe_ms

CONFIG_ENV = "QUANTDAG_CONFIG"
DATA_DIR_ENV = "QUANTDAG_DATA_DIR"
#: The repository's own file, used when neither an argument nor ``QUANTDAG_CONFIG`` names one.
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "quantdag.yaml"


class _Section(BaseModel):
    """Frozen, and a misspelt key is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulatorSettings(_Section):
    url: str | None = Field(None, description="an external simulator (make sim), else one starts in-process")
    seed: int = Field(7, description="seed of the in-process simulator's market model")


class ExchangeSettings(_Section):
    id: str = Field("binance", description="any ccxt exchange id")
    mode: Literal["simulated", "live"] = Field("simulated", description="the offline simulator or the real venue")
    sandbox: bool = Field(False, description="the venue's testnet (live mode)")
    simulator: SimulatorSettings = SimulatorSettings()
    timeout_ms: int = Field(10_000, gt=0)
    max_retries: int = Field(5, ge=0)
    max_ban_wait: float = Field(120.0, gt=0)
    gap_refetches: int = Field(3, ge=0, description="times candles missing inside a fetched page are asked for again")
    enable_ws: bool = Field(True, description="stream the markets over the venue's websockets (quantdag.stream, ccxt.pro); "
                                              "false: the daily REST jobs only")  # fmt: skip

    @property
    def venue(self) -> str:
        """The value stored in every table's ``exchange`` column."""
        return "sim" if self.mode == "simulated" else self.id


class MarketEntry(_Section):
    """A symbol downloaded at ``timeframes``, with coarser ones built from the finest of them."""

    symbol: str
    timeframes: list[str] = Field(default_factory=lambda: ["1h"], min_length=1)
    resampled: list[str] = Field(default_factory=list)

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        if "/" not in v:
            raise ValueError(f"{v!r} is not 'BASE/QUOTE'")
        return v

    @field_validator("timeframes", "resampled")
    @classmethod
    def _timeframes(cls, v: list[str]) -> list[str]:
        bad = [tf for tf in v if tf not in SUPPORTED]
        if bad:
            raise ValueError(f"{bad} not among the supported timeframes {list(SUPPORTED)}")
        return v


class UniverseSettings(_Section):
    start_date: date | str = Field(
        "90d", description="first day of the market-data partitions: a date, or 'Nd' for N days before today (UTC)"
    )
    markets: list[MarketEntry] = Field(min_length=1)
    research_markets: list[str] = Field(min_length=1, description="'SYMBOL:TF' keys every parameter set runs on")
    accept_holes: bool = Field(
        False, description="backtest across holes in the stored candles (days never materialised) as if continuous"
    )

    @field_validator("start_date")
    @classmethod
    def _start_date(cls, v: date | str) -> date | str:
        if isinstance(v, str) and not re.fullmatch(r"[1-9][0-9]*d", v):
            try:
                return date.fromisoformat(v)
            except ValueError:
                raise ValueError("expected a date (2025-06-01) or a number of days back such as '90d'") from None
        return v

    def start(self, today: date | None = None) -> date:
        """The first partition day: ``start_date``, or that many days before ``today`` (UTC)."""
        if isinstance(self.start_date, date):
            return self.start_date
        today = today or datetime.now(timezone.utc).date()
        return today - timedelta(days=int(self.start_date[:-1]))

    def markets_on(self, venue: str) -> tuple[Market, ...]:
        """Every market, downloaded ones first (in file order), then the resampled ones."""
        fetched = [Market(venue, e.symbol, tf) for e in self.markets for tf in e.timeframes]
        built = [
            Market(venue, e.symbol, tf, resample_from=min(e.timeframes, key=timeframe_ms))
            for e in self.markets
            for tf in e.resampled
        ]
        return tuple(fetched + built)

    @model_validator(mode="after")
    def _consistent(self) -> UniverseSettings:
        markets = self.markets_on("check")  # raises ConfigurationError on a bad resample
        keys = [m.key for m in markets]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"markets listed twice: {dupes}")
        for k in self.research_markets:
            market_by_key(markets, k)
        return self


class ParamSetEntry(_Section):
    strategy: str
    params: dict[str, Any] = Field(default_factory=dict)


class StrategySettings(_Section):
    defaults: bool = Field(True, description="a parameter set per registered strategy, at its defaults")
    param_sets: list[ParamSetEntry] = Field(default_factory=list)
    paper: list[str] = Field(default_factory=list, description="strategies whose parameter sets trade on paper")


class PromotionSettings(_Section):
    max_pbo: float = Field(0.5, ge=0, le=1, description="a sweep's best is promoted only if PBO <= this")
    min_dsr: float = Field(0.5, ge=0, le=1, description="... and its deflated Sharpe ratio >= this")


class OptimizationSettings(_Section):
    strategies: list[str] = Field(default_factory=lambda: ["sma_cross"], description="swept by make demo")
    market: str | None = Field(None, description="'SYMBOL:TF' swept on; default the first research market")
    objective: str = "sharpe"
    min_trades: int = Field(5, ge=0)
    n_trials: int = Field(200, gt=0)
    seed: int = 0
    top_k: int = Field(5, ge=0, description="best combinations logged as nested MLflow runs")
    max_grid: int = Field(5000, gt=0, description="above this many grid points the sweep samples randomly")
    search: Literal["auto", "grid", "random", "bayes"] = Field(
        "auto", description="auto: the grid up to max_grid points, else random; bayes: Optuna TPE over n_trials"
    )
    shards: int = Field(
        1, ge=1, le=1024, description="partitions a sweep is split into (strategy x shard); 1: one process, no shard asset"
    )
    optuna_storage: str | None = Field(
        None, description="RDB URL of the study sharded Optuna searches share; ${VAR} reads it from the environment; "
        "default sqlite:///<data_dir>/optuna.db",
    )  # fmt: skip
    promotion: PromotionSettings = PromotionSettings()

    @model_validator(mode="before")
    @classmethod
    def _optuna_storage(cls, data: Any) -> Any:
        """Checked on the section (a mapping), so an error never echoes the URL, which may hold a password."""
        v = data.get("optuna_storage") if isinstance(data, dict) else None
        if not isinstance(v, str) or re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", v.strip()):
            return data
        if "://" not in v:
            raise ValueError("optuna_storage: expected an RDB URL (sqlite:///path, postgresql://user@host/db) or ${ENV_VAR}")
        from urllib.parse import urlsplit

        if urlsplit(v).password is not None:
            raise ValueError("optuna_storage: a password never goes in the file; put the URL in an environment "
                             "variable and write ${THAT_VARIABLE}")  # fmt: skip
        return data


class LeaderboardSettings(_Section):
    min_trades: int = Field(5, ge=0, description="runs with fewer trades are listed apart, not ranked")


class PaperSettings(_Section):
    capital: float = Field(10_000.0, gt=0, description="starting capital of each paper account")
    quote: str = "USDT"
    cash_buffer: float = Field(0.01, ge=0, lt=1, description="kept in cash so costs never block the last buy")
    drift_tolerance_bps: float = Field(50.0, gt=0)


class RiskSettings(_Section):
    """The risk rules (quantdag.portfolio.RiskRules) of the portfolio backtest and every paper account
    alike; fractions of equity; null turns a limit off."""

    max_drawdown: float = Field(0.2, gt=0, lt=1, description="kill switch: drawdown from the equity peak, open P&L included")
    daily_loss_limit: float = Field(0.05, gt=0, lt=1, description="only reductions for the rest of a UTC day lost this fraction")
    max_orders_per_cycle: int = Field(20, gt=0, description="orders of one rebalance; the rest wait for the next")
    max_gross: float | None = Field(None, gt=0, description="gross exposure / equity")
    max_net: float | None = Field(None, gt=0, description="|net exposure| / equity")
    max_asset: float | None = Field(None, gt=0, description="|weight| of any one market")
    max_correlated: float | None = Field(None, gt=0, description="same-direction exposure to markets correlated above corr_threshold")
    corr_threshold: float = Field(0.7, ge=-1, le=1)
    window: int = Field(720, ge=2, description="candles of returns for the correlation and expected-shortfall rules")
    max_es: float | None = Field(None, gt=0, description="historical expected shortfall of one candle, as a fraction")
    es_level: float = Field(0.95, ge=0.5, lt=1)
    resume: Literal["manual", "candles", "recovery"] = Field("manual", description="how a halted account resumes")
    resume_after: int = Field(24, ge=1, description="candles (paper: cycles) after a halt, for resume: candles")
    resume_drawdown: float = Field(0.0, ge=0, lt=1, description="drawdown to recover to, for resume: recovery")
    halt_action: Literal["flatten", "freeze"] = Field("flatten", description="a halt closes positions, or holds them")

    def rules(self) -> Any:
        """The :class:`~quantdag.portfolio.RiskRules` these settings describe."""
        from quantdag.portfolio.risk import RiskRules

        return RiskRules(
            max_gross=self.max_gross, max_net=self.max_net, max_asset=self.max_asset, max_correlated=self.max_correlated,
            corr_threshold=self.corr_threshold, window=self.window, max_drawdown=self.max_drawdown,
            daily_loss=self.daily_loss_limit, max_es=self.max_es, es_level=self.es_level,
            max_orders=self.max_orders_per_cycle, resume=self.resume, resume_after=self.resume_after,
            resume_drawdown=self.resume_drawdown, halt_action=self.halt_action,
        )  # fmt: skip


class AllocationSettings(_Section):
    method: Literal["equal_weight", "inverse_vol", "vol_target", "erc", "hrp", "min_cvar", "max_sharpe"] = Field(
        "equal_weight", description="quantdag.portfolio.allocate: how capital is split across the markets")
    lookback: int = Field(720, ge=2, description="candles of trailing returns each fit sees")
    every: int | Literal["daily", "weekly", "monthly"] = Field("weekly", description="refit every N candles or period")
    vol_target: float = Field(0.2, gt=0)
    turnover_penalty: float = Field(0.001, ge=0)


class ExecutionSettings(_Section):
    algo: Literal["twap", "vwap"] = Field("twap", description="how a parent order above the threshold is sliced")
    above_notional: float = Field(2500.0, gt=0, description="parent orders above this notional (quote) are sliced")
    slices: int = Field(3, ge=2)
    duration_s: float = Field(3.0, gt=0, description="seconds a sliced parent is spread over")


class PortfolioSettings(_Section):
    """One account trading several parameter sets' targets (quantdag.portfolio.run_portfolio), backtested and paper-traded."""

    name: str = Field("research", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    strategies: list[str] = Field(default_factory=lambda: ["sma_cross", "regime_ma", "consensus"], min_length=1,
                                  description="parameter-set keys, or strategy names (their defaults)")
    shares: dict[str, float] = Field(default_factory=dict, description="capital share per entry of strategies; empty: equal")
    allocation: AllocationSettings = AllocationSettings()
    rebalance: Literal["signal", "daily", "weekly", "monthly", "drift"] = "signal"
    drift_band: float = Field(0.05, gt=0, description="for rebalance: drift")
    turnover_cap: float | None = Field(None, gt=0, description="the most one candle trades, as a fraction of equity")
    min_notional: float = Field(10.0, ge=0, description="smaller orders are skipped (and counted)")
    allow_short: bool = Field(False, description="negative signal targets become short weights (else flat)")
    broker: Literal["paper", "ccxt"] = Field("paper", description="paper: simulated fills; ccxt: the exchange's (sandbox) order API")
    execution: ExecutionSettings = ExecutionSettings()
    drift_tolerance: float = Field(0.02, gt=0, description="paper vs backtest: positions and P&L apart by more, of equity")


class StreamSettings(_Section):
    """What ``python -m quantdag.stream`` watches besides every market's closed 1m candles."""

    trades: Literal["all", "none"] | list[str] = Field("all", description="markets whose trades are streamed and stored")
    order_book: Literal["all", "none"] | list[str] = Field("all", description="markets whose order book is kept and sampled")
    book_levels: int = Field(10, ge=1, le=1000, description="levels summed into a book sample's depth")
    book_sample_s: float = Field(1.0, gt=0, description="venue seconds between stored book samples")
    watchdog_s: float = Field(5.0, gt=0, description="a candle stream quiet this long is reconnected (~2x its 2 s cadence)")
    recycle_s: float = Field(3600.0, gt=0, description="connections are reopened this often")
    trades_retention_days: float | None = Field(7.0, gt=0, description="market.trades rows kept this long; null: forever")
    book_retention_days: float | None = Field(7.0, gt=0, description="market.book samples kept this long; null: forever")

    def retention(self) -> dict[str, float | None]:
        """Days each kind of tick is kept (:func:`quantdag.stream.landing.prune`)."""
        return {"trades": self.trades_retention_days, "book": self.book_retention_days}

    def symbols(self, channel: Literal["trades", "order_book"], configured: list[str]) -> list[str]:
        """The markets of ``channel``: all, none, or the listed ones (each must be a configured market)."""
        v = getattr(self, channel)
        if v == "all":
            return list(configured)
        if v == "none":
            return []
        unknown = sorted(set(v) - set(configured))
        if unknown:
            raise ConfigurationError(f"stream.{channel}: {unknown} not among universe.markets {configured}")
        return list(v)


#: every kind of alert and its default: on (sent), silent (sent without sound where the channel can: Telegram), off (logged only)
ALERT_EVENTS = {"run_failure": "on", "risk": "on", "paper": "on", "drift": "on", "oms": "on", "paper_switch": "silent",
                "digest": "on", "heartbeat": "silent"}  # fmt: skip


class TelegramSettings(_Section):
    """The Telegram bot (``python -m quantdag.tracking.telegram_bot``); its token only from the environment."""

    token_env: str = Field("QUANTDAG_TELEGRAM_TOKEN", description="env var holding the bot token (a secret)")
    allowed_users: list[int] = Field(default_factory=list, description="Telegram user ids it answers; everyone else gets nothing")
    base_url: str = Field("https://api.telegram.org", description="the Bot API server (a local one in tests)")


class AlertSettings(_Section):
    webhook_env: str = Field("QUANTDAG_ALERT_WEBHOOK", description="env var holding the webhook URL (a secret)")
    urls_env: str = Field("QUANTDAG_ALERT_URLS", description="env var holding Apprise URLs, space-separated (they embed tokens)")
    events: dict[str, Literal["on", "silent", "off"]] = Field(default_factory=lambda: dict(ALERT_EVENTS),
                                                             description=f"per event kind ({', '.join(ALERT_EVENTS)}): on | silent | off")
    digest_hour: int | None = Field(8, ge=0, le=23, description="UTC hour of the daily digest (null: none)")
    heartbeat_hours: int = Field(0, ge=0, description="hours between heartbeats (0: none)")
    telegram: TelegramSettings = TelegramSettings()

    @field_validator("events", mode="before")
    @classmethod
    def _yaml_booleans(cls, v: Any) -> Any:
        """YAML reads a bare on/off as true/false: take them as "on"/"off"."""
        if isinstance(v, dict):
            return {k: ("on" if x else "off") if isinstance(x, bool) else x for k, x in v.items()}
        return v

    @field_validator("events")
    @classmethod
    def _events(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(ALERT_EVENTS))
        if unknown:
            raise ValueError(f"unknown alert event(s) {unknown}; known: {sorted(ALERT_EVENTS)}")
        return {**ALERT_EVENTS, **v}


class DashboardSettings(_Section):
    """The web dashboard (``make dashboard``). Its port, user and password come from the environment
    (QUANTDAG_DASHBOARD_PORT / _USER / _PASSWORD), never from this file."""

    dagster_url: str = Field("http://127.0.0.1:3000", description="the Dagster webserver (its GraphQL API and UI links)")
    mlflow_url: str = Field("http://127.0.0.1:5000", description="the MLflow UI (links to runs)")
    lock_timeout: float = Field(0.25, gt=0, le=10, description="seconds a page waits for a writer before serving its cached copy")
    poll_interval: float = Field(0.5, gt=0, le=60, description="seconds between the live feed's looks at the warehouse")
    login_attempts: int = Field(5, ge=1, description="failed logins allowed per client per minute")


#: the pipeline's model features: the engine's default groups plus the stored market events
#: (``market.events``) and the news sentiment (``sentiment.bars``)
ML_FEATURE_GROUPS = ("returns", "volatility", "indicators", "timeframes", "regime", "events", "calendar", "market_events", "sentiment")


class MlSettings(_Section):
    """The machine-learning pipeline (``quantdag.ml``): features, labels, a model retrained on a schedule."""

    enabled: bool = Field(True, description="build ml.features/labels/predictions and train the model")
    model_name: str = Field("quantdag_ml", description="registered MLflow model (the ml_model strategy's default)")
    markets: list[str] = Field(default_factory=list, description="'SYMBOL:TF' trained on; empty: the research markets")
    features: dict[str, Any] = Field(default_factory=lambda: {"groups": list(ML_FEATURE_GROUPS)},
                                     description="quantdag.ml.features.FeatureConfig fields")  # fmt: skip
    labels: dict[str, Any] = Field(default_factory=dict, description="quantdag.ml.labels.LabelConfig fields")
    model: str = Field("lightgbm", description="lightgbm | logistic")
    params: dict[str, Any] = Field(default_factory=dict, description="model parameters over the defaults")
    seed: int = 0
    n_splits: int = Field(4, ge=1, description="walk-forward out-of-sample blocks")
    cpcv: tuple[int, int] | None = Field(None, description="(n_folds, n_test_folds): also score combinatorial purged CV paths")
    outliers: dict[str, Any] = Field(default_factory=dict, description="quantdag.ml.outliers.OutlierConfig fields: method di | none, "
                                     "threshold (DI), reference_rows")  # fmt: skip
    threshold: float = Field(0.55, ge=0.5, lt=1.0, description="P(up) above which the out-of-sample backtest is long")
    long_short: bool = False
    min_training_rows: int = Field(500, ge=50, description="labelled candles below which a training is skipped")
    retrain_cron: str = Field("0 3 * * 1", description="the retraining schedule (UTC cron): Mondays 03:00")

    @model_validator(mode="after")
    def _valid(self) -> MlSettings:
        self.training_config()
        return self

    def training_config(self) -> Any:
        """The :class:`~quantdag.ml.training.TrainingConfig` these settings describe."""
        from quantdag.ml.features import FeatureConfig
        from quantdag.ml.labels import LabelConfig
        from quantdag.ml.outliers import OutlierConfig
        from quantdag.ml.training import TrainingConfig

        try:
            features = FeatureConfig.from_mapping(self.features)
            labels = LabelConfig(**self.labels)
            if labels.kind == "meta" and not labels.rule:
                raise ConfigurationError("labels.kind 'meta' labels a rule strategy's entries: name it in labels.rule "
                                         "(and its parameters in labels.rule_params)")  # fmt: skip
            thresholds = tuple(sorted({0.5, 0.525, 0.55, 0.575, 0.6, self.threshold}))
            if self.cpcv is not None and not 1 <= self.cpcv[1] < self.cpcv[0]:
                raise ConfigurationError(f"cpcv must be (n_folds, n_test_folds) with 1 <= n_test_folds < n_folds, got {self.cpcv}")
            return TrainingConfig(features, labels, self.model, dict(self.params), self.seed, self.n_splits,
                                  threshold=self.threshold, long_short=self.long_short, thresholds=thresholds,
                                  cpcv=tuple(self.cpcv) if self.cpcv else None, min_rows=self.min_training_rows,
                                  outliers=OutlierConfig(**self.outliers))  # fmt: skip
        except (ConfigurationError, TypeError) as exc:
            raise ValueError(str(exc)) from None


class AutomationSettings(_Section):
    """Which sensors and schedules start running when the daemon starts (``make ui``)."""

    run_failure_alert: bool = True
    register_param_sets: bool = True
    promote_best_params: bool = True
    daily_schedules: bool = Field(True, description="data, events and backtests every day")
    paper_trading: bool = Field(False, description="sensors and schedules that place paper orders")


#: The environment variable holding the PostgreSQL password of the Dagster instance (never in the file).
PG_PASSWORD_ENV = "QUANTDAG_PG_PASSWORD"


class PostgresSettings(_Section):
    """Where a PostgreSQL-backed Dagster instance keeps runs, events and schedules (the password: ``QUANTDAG_PG_PASSWORD``)."""

    host: str = Field("127.0.0.1", min_length=1, description="the server's host name or address")
    port: int = Field(5432, ge=1, le=65535, description="the server's TCP port")
    db: str = Field("dagster", min_length=1, description="the database (created by make postgres)")
    user: str = Field("dagster", min_length=1, description="the role the instance logs in as")

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            raise ValueError(f"password: never read from the file (set the environment variable {PG_PASSWORD_ENV})")
        return data


class InstanceSettings(_Section):
    """The Dagster instance's storage (``python -m pipelines.instance`` writes ``$DAGSTER_HOME/dagster.yaml`` from it)."""

    storage: Literal["sqlite", "postgres"] = Field(
        "sqlite", description="sqlite: files in the Dagster home | postgres: the server of `postgres` (dagster-postgres)"
    )
    postgres: PostgresSettings = PostgresSettings()


class WarehouseSettings(_Section):
    """Where the heavy per-parameter-set outputs live (``quantdag.store.parquet``)."""

    outputs: Literal["duckdb", "parquet"] = Field(
        "duckdb", description="duckdb: every table in the DuckDB file | parquet: signals, trades and equity as Parquet files"
    )
    parquet_dir: Path | None = Field(None, description="the Parquet folder (default <data_dir>/parquet); every worker must see it")


class FeedEntry(_Section):
    """A live RSS/Atom feed: its name (stored in ``raw.news.feed``) and URL."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(..., pattern=r"^https?://")


class SentimentSettings(_Section):
    """News and social sentiment (``quantdag.sentiment``): where items come from and how bars sum them up."""

    source: Literal["simulated", "live"] = Field(
        "simulated", description="simulated: the simulator's seeded feed (offline) | live: `feeds` and `fear_greed_url`"
    )
    feeds: list[FeedEntry] = Field(default_factory=list, description="live RSS/Atom feeds")
    fear_greed_url: str | None = Field(None, pattern=r"^https?://", description="live: alternative.me's /fng/ JSON, e.g. ?limit=30")
    timeout_s: float = Field(10.0, gt=0)
    retries: int = Field(3, ge=0, description="retries of a 5xx/timeout before the feed counts as unavailable")
    window_hours: float = Field(6.0, gt=0, description="sent_count/sent_mean/sent_dispersion: items known in this window")
    half_life_hours: float = Field(6.0, gt=0, description="sent_decayed: an item's weight halves every this many hours")
    dedup_threshold: float = Field(0.7, gt=0, le=1, description="shingle similarity from which a story is a near-duplicate")


class IndicatorEntry(_Section):
    """One entry of ``indicators``: a TA-Lib function (upper case) or a registered user indicator (lower case).

    Checked here as far as the file alone allows; a user indicator's parameters are checked when
    :meth:`ProjectConfig.indicator_specs` resolves it (after the strategy files registered it).
    """

    function: str
    column: str | None = Field(None, description="the column of a single-output function")
    columns: dict[str, str] | None = Field(None, description="output name -> column, for several outputs")
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str | list[str]] | None = Field(None, description="TA-Lib input -> candle column(s), e.g. {price: volume}")
    lookback_bars: int | None = Field(None, ge=1, description="candles of history it needs, if more than the default")

    @model_validator(mode="after")
    def _spec(self) -> IndicatorEntry:
        from quantdag.indicators import IndicatorConfigError, indicator_spec

        try:
            indicator_spec(**self.model_dump(exclude_none=True), resolve=False)
        except IndicatorConfigError as exc:
            raise _indicator_error(exc) from None
        return self


def _indicator_error(exc: Any) -> ValidationError:
    """An IndicatorConfigError as a validation error at its key, so the message names ``indicators[i].params.x``.

    Its message already names the value, so the input is left empty (a mapping is never echoed).
    """
    err = PydanticCustomError("indicator", "{message}", {"message": exc.message})
    return ValidationError.from_exception_data("indicators", [InitErrorDetails(type=err, loc=exc.key, input={})])


def _default_indicators() -> list[IndicatorEntry]:
    from quantdag.features import DEFAULT_INDICATOR_ENTRIES

    return [IndicatorEntry(**e) for e in DEFAULT_INDICATOR_ENTRIES]


class ProjectConfig(_Section):
    """The whole file. ``source`` is where it was read from (None: built-in defaults)."""

    data_dir: Path = Path("data")
    exchange: ExchangeSettings = ExchangeSettings()
    universe: UniverseSettings
    strategy_paths: list[Path] = Field(default_factory=list, description="folders of user strategy files")
    strategies: StrategySettings = StrategySettings()
    backtest: dict[str, Any] = Field(default_factory=dict, description="quantdag.backtest.BacktestSettings fields")
    events: dict[str, Any] = Field(default_factory=dict, description="quantdag.data.EventConfig fields (e.g. peg_references)")
    optimization: OptimizationSettings = OptimizationSettings()
    leaderboard: LeaderboardSettings = LeaderboardSettings()
    paper: PaperSettings = PaperSettings()
    risk: RiskSettings = RiskSettings()
    portfolio: PortfolioSettings = PortfolioSettings()
    alerts: AlertSettings = AlertSettings()
    dashboard: DashboardSettings = DashboardSettings()
    stream: StreamSettings = StreamSettings()
    automation: AutomationSettings = AutomationSettings()
    ml: MlSettings = MlSettings()
    instance: InstanceSettings = InstanceSettings()
    warehouse: WarehouseSettings = WarehouseSettings()
    sentiment: SentimentSettings = SentimentSettings()
    indicators: list[IndicatorEntry] = Field(
        default_factory=_default_indicators, min_length=1, description="the columns of features.indicators"
    )
    source: Path | None = Field(None, exclude=True)

    @field_validator("indicators")
    @classmethod
    def _indicator_columns(cls, v: list[IndicatorEntry]) -> list[IndicatorEntry]:
        from quantdag.features import check_indicator_columns
        from quantdag.indicators import IndicatorConfigError

        try:
            check_indicator_columns([e.model_dump(exclude_none=True) for e in v])
        except IndicatorConfigError as exc:
            raise _indicator_error(exc) from None
        return v

    @field_validator("backtest")
    @classmethod
    def _backtest(cls, v: dict[str, Any]) -> dict[str, Any]:
        from quantdag.backtest import BacktestSettings

        known = {f.name for f in dataclasses.fields(BacktestSettings)} - {"timeframe"}
        unknown = sorted(set(v) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)} (timeframe is set per market)")
        try:
            BacktestSettings(**v)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("events")
    @classmethod
    def _events(cls, v: dict[str, Any]) -> dict[str, Any]:
        from quantdag.data import EventConfig

        known = {f.name for f in dataclasses.fields(EventConfig)}
        unknown = sorted(set(v) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
        _event_config(v)
        return v

    @model_validator(mode="after")
    def _optimization_market(self) -> ProjectConfig:
        if self.optimization.market is not None:
            market_by_key(self.universe.markets_on("check"), self.optimization.market)
        return self

    @model_validator(mode="after")
    def _ml_markets(self) -> ProjectConfig:
        for key in self.ml.markets:
            market_by_key(self.universe.markets_on("check"), key)
        return self

    @model_validator(mode="after")
    def _stream_markets(self) -> ProjectConfig:
        symbols = sorted({m.symbol for m in self.universe.markets_on("check")})
        self.stream.symbols("trades", symbols)
        self.stream.symbols("order_book", symbols)
        return self

    @property
    def stream_symbols(self) -> dict[str, list[str]]:
        """The streamer's markets per channel: ``ohlcv`` every configured market, ``trades`` and ``book`` per ``stream``."""
        symbols = sorted({m.symbol for m in self.markets})
        return {"ohlcv": symbols, "trades": self.stream.symbols("trades", symbols),
                "book": self.stream.symbols("order_book", symbols)}  # fmt: skip

    # ---- what the pipeline asks of it -------------------------------------------------------

    @property
    def venue(self) -> str:
        return self.exchange.venue

    @property
    def markets(self) -> tuple[Market, ...]:
        """The universe on this configuration's venue."""
        return self.universe.markets_on(self.venue)

    @property
    def research_markets(self) -> tuple[Market, ...]:
        return tuple(market_by_key(self.markets, k) for k in self.universe.research_markets)

    @property
    def ml_markets(self) -> tuple[Market, ...]:
        """The markets the model learns from and predicts (``ml.markets``, default the research markets)."""
        return tuple(market_by_key(self.markets, k) for k in self.ml.markets) if self.ml.markets else self.research_markets

    @property
    def optimization_market(self) -> Market:
        key = self.optimization.market
        return market_by_key(self.markets, key) if key else self.research_markets[0]

    def backtest_settings(self) -> Any:
        """The pipeline's :class:`~quantdag.backtest.BacktestSettings` (timeframe set per market)."""
        from quantdag.backtest import BacktestSettings

        return BacktestSettings(**self.backtest)

    def event_config(self) -> Any:
        """The pipeline's :class:`~quantdag.data.EventConfig` (lists in the file become tuples)."""
        return _event_config(self.events)

    def indicator_specs(self) -> tuple[Any, ...]:
        """The :class:`~quantdag.indicators.IndicatorSpec` of each ``indicators`` entry.

        Call after the strategy files are imported, so user indicators they register resolve.

        Raises
        ------
        ConfigurationError
            Naming the entry's key, e.g. ``indicators[3].function``, if one does not resolve.
        """
        from quantdag.features import indicator_specs

        try:
            return indicator_specs(e.model_dump(exclude_none=True) for e in self.indicators)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{self.source or 'configuration'}: {exc}") from None

    def resolve(self, path: Path) -> Path:
        """``path`` made absolute against the file's folder (the working directory without a file)."""
        if path.is_absolute():
            return path
        base = self.source.parent if self.source is not None else Path.cwd()
        return (base / path).resolve()

    @property
    def data_path(self) -> Path:
        """The data directory: ``QUANTDAG_DATA_DIR`` if set, else ``data_dir`` against the file."""
        override = os.environ.get(DATA_DIR_ENV)
        return Path(override).resolve() if override else self.resolve(self.data_dir)

    @property
    def parquet_path(self) -> Path | None:
        """The Parquet folder of the heavy outputs, or None when every table is in DuckDB."""
        if self.warehouse.outputs != "parquet":
            return None
        return self.resolve(self.warehouse.parquet_dir) if self.warehouse.parquet_dir else self.data_path / "parquet"

    @property
    def strategy_folders(self) -> list[Path]:
        return [self.resolve(p) for p in self.strategy_paths]


def _event_config(values: dict[str, Any]) -> Any:
    from quantdag.data import EventConfig

    try:
        return EventConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_config(data: Any, *, source: Path | None = None) -> ProjectConfig:
    """Validate a parsed YAML document.

    Raises
    ------
    ConfigurationError
        Naming the file, every offending key and its value.
    """
    name = str(source) if source else "configuration"
    if not isinstance(data, dict):
        raise ConfigurationError(f"{name}: expected a mapping of settings, got {type(data).__name__}")
    try:
        return ProjectConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _where(err["loc"])
            value = err.get("input")
            shown = "" if err["type"] == "missing" or isinstance(value, (dict, list)) else f" (got {value!r})"
            problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}{shown}")
        raise ConfigurationError(f"{name}: " + "; ".join(problems)) from None
    except ConfigurationError as exc:
        raise ConfigurationError(f"{name}: {exc}") from None


def config_path(path: str | Path | None = None) -> Path:
    """The file to read: ``path``, else ``$QUANTDAG_CONFIG``, else the repository's ``quantdag.yaml``."""
    chosen = path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH
    return Path(chosen).expanduser().resolve()


def load_config(path: str | Path | None = None) -> ProjectConfig:
    """Read and validate the configuration file (see :func:`config_path` for which one).

    Raises
    ------
    ConfigurationError
        If the file is missing, is not YAML, or holds an invalid setting (key and value named).
    """
    p = config_path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigurationError(f"configuration file {p} cannot be read ({exc.strerror}); set {CONFIG_ENV}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{p}: not valid YAML ({exc})") from None
    return parse_config(data if data is not None else {}, source=p)
