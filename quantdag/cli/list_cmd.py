"""``quantdag list``: the registered strategies (built-ins, entry points, the configured folders)."""

from __future__ import annotations

import io

import click

from quantdag.cli.common import load_project, reports_errors


@click.command("list")
@reports_errors
def list_strategies() -> None:
    """List registered strategies with their parameters (default, valid range, search range)."""
    from quantdag.strategies.cli import main as strategies_main

    load_project()
    out = io.StringIO()
    strategies_main(["list"], out)
    click.echo(out.getvalue(), nl=False)
