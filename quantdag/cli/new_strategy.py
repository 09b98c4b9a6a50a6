"""``quantdag new-strategy``: a strategy file and its test in the configured strategy folder.

The folder is the first of the configuration's ``strategy_paths`` (where the pipeline registers
user strategies from), or ``--dir``. Files are never overwritten. The generated strategy passes
``quantdag check`` and its own test as generated.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from quantdag.cli.common import InputError, load_project, reports_errors
from quantdag.cli.templates import TEMPLATES, TEST

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def class_name(name: str) -> str:
    """``my_breakout`` -> ``MyBreakout``."""
    return "".join(part.capitalize() for part in name.split("_") if part)


@click.command("new-strategy")
@click.argument("name")
@click.option("--template", type=click.Choice(sorted(TEMPLATES)), default="minimal", show_default=True,
              help="minimal: close vs its mean; indicator: TA-Lib bands; ml: a numpy model fitted on the past only; "
                   "portfolio: a position fraction (target) for the portfolio engine")  # fmt: skip
@click.option("--dir", "folder", metavar="DIR", help="write here instead of the first configured strategy_paths folder")
@reports_errors
def new_strategy(name: str, template: str, folder: str | None) -> None:
    """Write NAME.py (a strategy named NAME) and test_NAME.py into the strategy folder.

    NAME is snake_case (letters, digits, underscores). The pipeline registers the strategy from
    that folder when definitions load; `quantdag check NAME` and `quantdag backtest NAME` find it too.
    """
    from quantdag.strategies import list_strategies

    if not _NAME.fullmatch(name):
        raise InputError(f"strategy name {name!r}: use snake_case letters, digits and underscores, starting with a letter")
    from quantdag.strategies.loader import load_user_strategies

    config = load_project(register=False)
    for d in config.strategy_folders:  # the configured folders may not exist yet: this command makes them
        d.mkdir(parents=True, exist_ok=True)
    load_user_strategies(config.strategy_folders)
    if folder is None:
        if not config.strategy_folders:
            raise InputError(
                f"no strategy folder: add one to strategy_paths in {config.source} (e.g. strategy_paths: [strategies]) "
                "and create it, or pass --dir DIR"
            )
        target = config.strategy_folders[0]
    else:
        target = Path(folder).expanduser().resolve()
    if name in list_strategies():
        raise InputError(f"a strategy named {name!r} is already registered; pick another NAME")
    target.mkdir(parents=True, exist_ok=True)
    files = {target / f"{name}.py": TEMPLATES[template], target / f"test_{name}.py": TEST}
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise InputError(f"{', '.join(existing)} already exist(s); not overwritten: pick another NAME or remove them")
    values = {"Class": class_name(name), "name": name, "module": name, "test_file": str(target / f"test_{name}.py")}
    for path, text in files.items():
        path.write_text(text.format(**values))
        click.echo(f"wrote {path}")
    listed = "" if config.strategy_folders and target in config.strategy_folders else (
        f" (add {target} to strategy_paths in {config.source} so the pipeline registers it)")
    click.echo(f"next: quantdag check {name} && pytest {target / f'test_{name}.py'}{listed}")
