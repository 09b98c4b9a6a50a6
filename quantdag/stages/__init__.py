"""The pipeline's stages: warehouse in, warehouse out, one module per asset module.

``assets/X.py`` works out its partition's windows and calls ``quantdag/stages/X.py``; a stage reads
its inputs from the warehouse, calls the engine packages, replaces its output slices in one
transaction and returns a :class:`StageReport`. Stages are plain Python (no Dagster), so a
notebook or a command can run one directly:

==================  ===========================================================================
module              writes (and the one call its asset makes)
==================  ===========================================================================
``market_data``     ``raw.candles``, ``market.candles`` + ``market.gaps``, holes included;
                    ``ingest_raw``, ``normalize_candles``, ``check_candles``
``indicators``      ``features.indicators``: ``build_indicators``
``events``          ``market.events``: ``build_events``
``signals``         ``signals.signals``, ``signals.param_sets``, ``signals.lookahead``:
                    ``signal_param_sets`` (a batch; ``build_signals`` for one), ``check_signals``
``backtests``       ``backtest.runs``, ``backtest.trades``, ``backtest.equity``, one tracking run
                    per market: ``backtest_param_sets`` (a batch; ``backtest_param_set`` for one)
``optimization``    ``optimize.sweeps``, ``optimize.results``, the sweep's tracking runs:
                    ``sweep_strategy``
``paper``           ``paper.*`` through the OMS (``paper_step``), ``paper.drift`` (``drift_step``)
==================  ===========================================================================

Tracking and alerts come in as callables or settings (``start_run``, ``webhook_env``), so a
stage never imports Dagster; an asset imports its own stage module and nothing else of ours
beyond the shared vocabulary (``quantdag.config``, ``quantdag.markets``).
"""

from quantdag.stages.common import StageReport, finite_or_none, read_candles

__all__ = ["StageReport", "finite_or_none", "read_candles"]
