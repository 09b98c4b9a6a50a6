"""Dagster assets, one module per pipeline stage, built from the configuration.

Each module's ``build`` returns its assets for one :class:`~quantdag.config.ProjectConfig`; the
logic they call lives in ``quantdag.stages``.
"""

from __future__ import annotations

import dagster as dg

from assets import backtests, events, indicators, market_data, ml, optimization, paper, portfolio, sentiment, signals, stream
from assets.partitions import Partitions
from quantdag.config import ProjectConfig
from quantdag.strategies import Strategy


def build_assets(config: ProjectConfig, parts: Partitions, configured: dict[str, Strategy]) -> list[dg.AssetsDefinition]:
    """Every asset of the pipeline, in stage order."""
    return [
        *market_data.build(config, parts),
        *indicators.build(config, parts),
        *events.build(config, parts),
        *sentiment.build(config, parts),
        *ml.build(config, parts),
        *signals.build(config, parts, configured),
        *backtests.build(config, parts),
        *optimization.build(config, parts),
        *paper.build(config, parts),
        *portfolio.build(config, configured),
        *stream.build(config),
    ]
