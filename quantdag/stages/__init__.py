"""The pipeline's stages: warehouse in, warehouse out, one module per asset module.

``assets/X.py`` works out its partition's windows and calls ``quantdag/stages/X.py``; a stage reads
its inputs from the warehouse, calls the engine packages, replaces its output slices in one
transaction and returns a :class:`StageReport`. Stages are plain Python (no Dagster), so a
notebook or a command can run one directly:

==================  ===========================================================================
module              writes
==================  ===========================================================================
``market_data``     ``raw.candles``, ``market.candles`` + ``market.gaps`` (and checks them)
``indicators``      ``features.indicators``
``events``          ``market.events``
``signals``         ``signals.signals``, ``signals.param_sets``
``backtests``       ``backtest.runs``, ``backtest.trades``, ``backtest.equity``
``optimization``    ``optimize.sweeps``, ``optimize.results``
``paper``           ``paper.*`` through the OMS, ``paper.drift``
==================  ===========================================================================
"""

from quantdag.stages.common import StageReport, finite_or_none, read_candles

__all__ = ["StageReport", "finite_or_none", "read_candles"]
