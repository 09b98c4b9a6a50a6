"""The ``quantdag`` developer command: the research loop without Dagster.

Installed as a console script by ``make setup`` (``[project.scripts]`` in ``pyproject.toml``).
One small module per command group; each imports its heavy dependencies inside the command, so
``quantdag --help`` answers at once. Exit codes: 0 ok, 1 a check failed or a difference was found,
2 a usage or input error (the message says what to do). See ``quantdag.cli.common``.
"""

from __future__ import annotations

import click

from quantdag.cli.analyze import analyze
from quantdag.cli.backtest import backtest
from quantdag.cli.check import check
from quantdag.cli.env import demo, doctor, download, ui
from quantdag.cli.list_cmd import list_strategies
from quantdag.cli.new_strategy import new_strategy
from quantdag.cli.profile import profile
from quantdag.cli.reproduce import reproduce
from quantdag.cli.sweep import sweep


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="quantdag")
def cli() -> None:
    """quantdag: the research loop without Dagster: scaffold, check, backtest, sweep and profile a
    strategy, analyze a market's data, reproduce a logged run.

    Reads the configuration from $QUANTDAG_CONFIG (default: the repository's quantdag.yaml) and
    the data dir from $QUANTDAG_DATA_DIR (default: the configuration's data_dir).

    Exit codes: 0 ok; 1 a check failed or a difference was found; 2 a usage or input error.
    """


for _command in (analyze, backtest, check, demo, doctor, download, ui, list_strategies, new_strategy, profile, reproduce, sweep):
    cli.add_command(_command)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="quantdag")
