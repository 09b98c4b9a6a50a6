"""Every command answers --help; the console script is installed; usage errors exit 2."""

from __future__ import annotations

from click.testing import CliRunner

from quantdag.cli import cli as app


def test_every_command_has_help_and_the_console_script_lists_them(cli):
    runner = CliRunner()
    for name, command in app.commands.items():
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert f"Usage: quantdag {name}" in result.output.replace("Usage: cli", "Usage: quantdag")
        assert command.help, name
    proc = cli("--help")
    assert proc.returncode == 0
    assert all(name in proc.stdout for name in app.commands)
    assert "Exit codes: 0 ok; 1 a check failed" in proc.stdout


def test_usage_errors_exit_two_with_what_to_do():
    runner = CliRunner()
    cases = {
        ("backtest", "sma_cross", "--market", "BTC/USDT:1h", "--param", "fast"): "expected NAME=VALUE",
        ("backtest", "sma_cross", "--market", "BTC/USDT:1h", "--from", "June"): "expected a date YYYY-MM-DD",
        ("backtest", "sma_cross", "--candles", "/no/such.parquet"): "no such file",
        ("backtest", "sma_cross", "--market", "BTCUSDT"): "expected SYMBOL:TF",
        ("new-strategy", "x", "--template", "fancy"): "'fancy' is not one of",
        ("new-strategy", "Bad-Name"): "use snake_case",
        ("frobnicate",): "No such command",
    }
    for args, message in cases.items():
        result = runner.invoke(app, list(args))
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
